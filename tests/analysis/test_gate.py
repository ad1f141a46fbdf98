"""analysis.gate: the regression gate against a metrics.csv of an earlier compare."""

from __future__ import annotations

import pandas as pd
import pytest

from iqabench.analysis.gate import check_gate, gate_message
from iqabench.errors import IqabenchError


def _summary(label="test_resnet/last/l1", srcc=0.9, plcc=0.88):
    return pd.DataFrame({"run": [label], "dataset": ["synthetic"], "srcc": [srcc], "plcc": [plcc]})


def test_gate_passes_on_equal_baseline_and_names_the_metric_when_worse(tmp_path):
    summary = _summary()
    summary.to_csv(tmp_path / "equal.csv", index=False)
    ok = check_gate(summary, tmp_path / "equal.csv", ("srcc", "plcc"), 0.01)
    assert (ok["status"] == "ok").all() and len(ok) == 2
    _summary(srcc=0.95).to_csv(tmp_path / "higher.csv", index=False)
    gate = check_gate(summary, tmp_path / "higher.csv", ("srcc", "plcc"), 0.01)
    failed = gate[gate["status"] != "ok"]
    assert list(failed["metric"]) == ["srcc"]
    msg = gate_message(failed)
    assert "srcc of test_resnet/last/l1 on synthetic" in msg and "0.0500 below" in msg
    # within tolerance: 0.005 below passes
    _summary(srcc=0.905).to_csv(tmp_path / "close.csv", index=False)
    assert (check_gate(summary, tmp_path / "close.csv", ("srcc",), 0.01)["status"] == "ok").all()


def test_gate_fails_on_missing_run_and_rejects_bad_files(tmp_path):
    _summary(label="other").to_csv(tmp_path / "b.csv", index=False)
    gate = check_gate(_summary(), tmp_path / "b.csv", ("srcc",), 0.01)
    assert list(gate["status"]) == ["missing"]
    pd.DataFrame({"run": ["x"], "dataset": ["y"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(IqabenchError, match="lacks column"):
        check_gate(_summary(), tmp_path / "bad.csv", ("srcc",), 0.01)
