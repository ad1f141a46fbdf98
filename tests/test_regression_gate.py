"""CI's regression gate: the synthetic smoke runs against the committed baseline.

The two runs are the ones behind ``results/ci_baseline/`` (same commands, same seed);
``iqabench compare --baseline results/ci_baseline/metrics.csv --max-drop TOL`` must pass.
TOL is three times the largest standard deviation of the runs' test SRCC/PLCC over
training seeds (``results/ci_baseline/spread/``, written by ``benchmarks.gate_spread``):
on another CPU than the baseline's the from-scratch runs take another path, and their
metrics move by about that much with no change to the code. A change that stops the
smoke model from learning fails CI here; a model that does not train is shown to fail it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from benchmarks.gate_spread import SMOKE, VARIANTS, gate_tolerance
from iqabench.cli.app import app

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "results" / "ci_baseline" / "metrics.csv"
SPREAD = REPO / "results" / "ci_baseline" / "spread" / "spread.csv"


def _iqabench(*args: str):
    """The command in this process (the CLI's own code path, without a fresh interpreter
    importing torch for each of the three calls)."""
    return CliRunner().invoke(app, list(args))


def _tolerance() -> str:
    assert SPREAD.is_file(), f"missing {SPREAD}"
    return f"{gate_tolerance(pd.read_csv(SPREAD)):.2f}"


@pytest.mark.slow
def test_smoke_runs_pass_the_gate_against_the_committed_baseline(tmp_path):
    assert BASELINE.is_file(), f"missing baseline {BASELINE}"
    for name, extra in VARIANTS.items():
        done = _iqabench("train", *SMOKE, *extra, "--out", str(tmp_path / name))
        assert done.exit_code == 0, done.output[-2000:]
    gate = _iqabench("compare", str(tmp_path / "A"), str(tmp_path / "B"),
                     "--baseline", str(BASELINE), "--max-drop", _tolerance())
    assert gate.exit_code == 0, gate.output[-2000:]


@pytest.mark.slow
def test_the_gate_fails_a_model_that_does_not_learn(tmp_path):
    """Both smoke runs with every learning rate at 1e-12 (a model that stays as
    initialised): the gate, at the tolerance the seed spread allows, must call that a
    regression."""
    for name, extra in VARIANTS.items():
        flags = [*SMOKE, *extra]
        flags[flags.index("--lr") + 1] = "1e-12"
        done = _iqabench("train", *flags, "--out", str(tmp_path / name))
        assert done.exit_code == 0, done.output[-2000:]
    gate = _iqabench("compare", str(tmp_path / "A"), str(tmp_path / "B"),
                     "--baseline", str(BASELINE), "--max-drop", _tolerance())
    assert gate.exit_code == 1, gate.output[-2000:]
    assert "regression gate failed" in str(gate.exception)  # main() prints it as one line


def test_tolerance_is_three_of_the_widest_spread_rounded_up():
    table = pd.DataFrame({"std": [0.012, 0.031, 0.02]})
    assert gate_tolerance(table) == pytest.approx(0.10)  # 3 x 0.031 = 0.093 -> 0.10
    assert gate_tolerance(pd.DataFrame({"std": [0.01]})) == pytest.approx(0.03)
