"""benchmarks.eval_precision on a tiny trained run: fp32 is the reference (zero change),
bf16 moves predictions a little but keeps them finite and rank-correlated."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from iqabench.config import resolve_train_config
from iqabench.data import load_dataset
from iqabench.errors import IqabenchError
from iqabench.training import fit



@pytest.fixture(scope="module")
def precision(import_benchmark):
    return import_benchmark("eval_precision")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    load_dataset("synthetic", root)
    out = tmp_path_factory.mktemp("run") / "run"
    cfg = resolve_train_config(None, {
        "dataset": "synthetic", "root": str(root), "out": str(out), "limit": 40, "epochs": 1,
        "crops_per_image": 1, "batch_size": 12, "eval_crops": 1, "val_crops": 1,
        "pretrained": False, "n_boot": 0, "workers": 1,
        "model": {"backbone": "test_resnet", "input_size": 32}})
    fit(cfg, progress=False)
    return root, out


def test_precision_table(precision, tiny_run, tmp_path):
    root, run = tiny_run
    modes = ["fp32", "bf16"] + (["bf16+compile"] if shutil.which("g++") or shutil.which("clang++")
                                else [])
    out = precision.main(["--checkpoint", str(run / "best.pt"), "--dataset", "synthetic",
                          "--root", str(root), "--eval-crops", "4", "--eval-batch-size", "5",
                          "--modes", *modes, "--out", str(tmp_path / "p")])
    table = pd.read_csv(out / "precision.csv")
    assert table["mode"].tolist() == modes
    fp32 = table.iloc[0]
    assert fp32["max_abs_pred_change"] == 0 and fp32["srcc_vs_fp32"] == pytest.approx(1.0)
    test_images = len(pd.read_csv(run / "split.csv").query("subset == 'test'"))
    assert (table["n"] == test_images).all() and (table["seconds"] > 0).all()
    assert (table["max_abs_pred_change"].iloc[1:] > 0).all()  # bf16 does change the arithmetic
    assert (table["srcc_vs_fp32"] > 0.9).all()
    if "bf16+compile" in modes:
        assert table.iloc[2]["compile_s"] > 0
    readme = (out / "README.md").read_text()
    assert "python -m benchmarks.eval_precision --checkpoint" in readme and "commit:" in readme
    assert "| bf16 " in readme and "$" not in readme  # the table, every template field filled
    with pytest.raises(IqabenchError, match="--force"):
        precision.main(["--checkpoint", str(run / "best.pt"), "--dataset", "synthetic",
                        "--root", str(root), "--out", str(out)])
