"""CI's regression gate: the synthetic smoke runs against the committed baseline.

The two runs are the ones behind ``results/ci_baseline/`` (same commands, same seed);
``iqabench compare --baseline results/ci_baseline/metrics.csv --max-drop 0.01`` must
pass. A change that makes the smoke model learn worse fails CI here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from iqabench.cli.app import app

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "results" / "ci_baseline" / "metrics.csv"
SMOKE = ["--dataset", "synthetic", "--backbone", "test_resnet", "--no-pretrained",
         "--input-size", "64", "--epochs", "3", "--crops-per-image", "2", "--lr", "2e-3",
         "--head-lr-ratio", "1", "--eval-crops", "4", "--val-crops", "1", "--n-boot", "0",
         "--quiet"]
VARIANTS = {"A": ["--loss", "l1"], "B": ["--loss", "l1+rank", "--alpha", "0.5"]}


def _iqabench(*args: str):
    """The command in this process (the CLI's own code path, without a fresh interpreter
    importing torch for each of the three calls)."""
    return CliRunner().invoke(app, list(args))


@pytest.mark.slow
def test_smoke_runs_pass_the_gate_against_the_committed_baseline(tmp_path):
    assert BASELINE.is_file(), f"missing baseline {BASELINE}"
    for name, extra in VARIANTS.items():
        done = _iqabench("train", *SMOKE, *extra, "--out", str(tmp_path / name))
        assert done.exit_code == 0, done.output[-2000:]
    gate = _iqabench("compare", str(tmp_path / "A"), str(tmp_path / "B"),
                     "--baseline", str(BASELINE), "--max-drop", "0.01")
    assert gate.exit_code == 0, gate.output[-2000:]
