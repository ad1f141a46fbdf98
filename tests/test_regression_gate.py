"""CI's regression gate: the synthetic smoke runs against the committed baseline.

The two runs are the ones behind ``results/ci_baseline/`` (same commands, same seed);
``iqabench compare --baseline results/ci_baseline/metrics.csv --max-drop 0.01`` must
pass. A change that makes the smoke model learn worse fails CI here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "results" / "ci_baseline" / "metrics.csv"
SMOKE = ["--dataset", "synthetic", "--backbone", "test_resnet", "--no-pretrained",
         "--input-size", "64", "--epochs", "3", "--crops-per-image", "2", "--lr", "2e-3",
         "--head-lr-ratio", "1", "--eval-crops", "4", "--val-crops", "1", "--n-boot", "0",
         "--quiet"]
VARIANTS = {"A": ["--loss", "l1"], "B": ["--loss", "l1+rank", "--alpha", "0.5"]}


def _iqabench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "iqabench.cli.app", *args], env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_smoke_runs_pass_the_gate_against_the_committed_baseline(tmp_path):
    assert BASELINE.is_file(), f"missing baseline {BASELINE}"
    for name, extra in VARIANTS.items():
        done = _iqabench("train", *SMOKE, *extra, "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr[-2000:]
    gate = _iqabench("compare", str(tmp_path / "A"), str(tmp_path / "B"),
                     "--baseline", str(BASELINE), "--max-drop", "0.01")
    assert gate.returncode == 0, gate.stdout[-2000:] + gate.stderr[-2000:]
