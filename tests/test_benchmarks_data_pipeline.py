"""benchmarks.data_pipeline on a few synthetic images: both pipelines deliver every patch,
the table holds positive rates with the reference as the unit of the ratios."""

from __future__ import annotations


import pandas as pd
import pytest

from iqabench.errors import IqabenchError



@pytest.fixture(scope="module")
def pipeline(import_benchmark):
    return import_benchmark("data_pipeline")


def test_data_pipeline_table(pipeline, tmp_path, one_thread):
    out = pipeline.main(["--dataset", "synthetic", "--root", str(tmp_path / "data"), "--limit", "6",
                         "--epochs", "1", "--workers", "0", "--batch-size", "4", "--crops-per-image", "3",
                         "--input-size", "32", "--out", str(tmp_path / "out")])
    table = pd.read_csv(out / "data_pipeline.csv")
    assert len(table) == 7 and table["pipeline"].iloc[0].startswith("reference")
    assert table["count"].tolist()[:4] == [18, 6, 18, 18]  # 6 images x 3 crops; decode counts images
    assert (table["seconds"] >= 0).all() and (table["per_second"] > 0).all()  # seconds: 2 decimals
    assert table["ratio_vs_reference"].iloc[0] == 1.0 and pd.isna(table["ratio_vs_reference"].iloc[1])
    readme = (out / "README.md").read_text()
    assert "python -m benchmarks.data_pipeline --dataset synthetic" in readme
    assert "| reference (original Hyper-IQA loader), per epoch" in readme and "$" not in readme


def test_data_pipeline_rejects_bad_flags(pipeline):
    with pytest.raises(IqabenchError, match="--input-size 8"):
        pipeline.parse_args(["--input-size", "8"])
