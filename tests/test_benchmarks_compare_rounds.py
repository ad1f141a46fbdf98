"""benchmarks.compare_rounds: two rounds' splits, metrics, curves and predictions compared."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmarks.compare_rounds import compare


def _round(folder: Path, cpu: str, srcc: float, preds: list[float], val: list[float]) -> Path:
    folder.mkdir()
    (folder / "environment.json").write_text(json.dumps([{
        "started": "2026-12-04T00:00:00+00:00", "commit": "abc", "cpu": cpu, "cpu_count": 2,
        "torch": "2.14.1"}]))
    pd.DataFrame({"name": ["a.jpg", "b.jpg", "c.jpg"], "subset": ["train", "val", "test"]}).to_csv(
        folder / "split.csv", index=False)
    pd.DataFrame([{"srcc": srcc, "plcc": 0.9, "krcc": 0.7, "rmse": 0.4}]).to_csv(
        folder / "test_metrics.csv", index=False)
    pd.DataFrame({"epoch": [1, 2], "train_loss": [0.1, 0.05], "val_srcc": val}).to_csv(
        folder / "log.csv", index=False)
    pd.DataFrame({"name": ["x", "y", "z"], "pred": preds}).to_csv(folder / "predictions.csv",
                                                                 index=False)
    return folder


def test_compare_reports_differences(tmp_path):
    a = _round(tmp_path / "a", "AMD EPYC", 0.80, [1.0, 2.0, 3.0], [0.7, 0.75])
    b = _round(tmp_path / "b", "Intel Xeon", 0.81, [1.1, 2.0, 3.5], [0.72, 0.74])
    lines = compare(a, b)
    assert "AMD EPYC (2 cores)" in lines[0] and "Intel Xeon (2 cores)" in lines[1]
    assert "split.csv: identical" in lines
    assert "test srcc: A 0.8000  B 0.8100  B-A +0.0100" in lines
    assert "epoch 2: train_loss A 0.05000 B 0.05000; val SRCC A 0.7500 B 0.7400" in lines
    assert lines[-1].startswith("predictions: 3 test images, same names in the same order: True; "
                                "|B-A| median 0.1000, max 0.5000")
    pd.DataFrame({"name": ["a.jpg"], "subset": ["test"]}).to_csv(b / "split.csv", index=False)
    assert "split.csv: DIFFERS" in compare(a, b)
