"""`iqabench eval` reproduces a run's test numbers from best.pt and split.csv."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from iqabench.cli.app import app
from iqabench.config import resolve_train_config
from iqabench.errors import IqabenchError
from iqabench.training import fit

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    from iqabench.data import load_dataset

    root = tmp_path_factory.mktemp("synthetic")
    load_dataset("synthetic", root)
    out = tmp_path_factory.mktemp("runs") / "run"
    cfg = resolve_train_config(None, {
        "dataset": "synthetic", "root": str(root), "limit": 40, "epochs": 1,
        "crops_per_image": 1, "batch_size": 12, "eval_crops": 4, "val_crops": 1,
        "eval_batch_size": 6, "pretrained": False, "n_boot": 50, "workers": 1, "out": str(out),
        "model": {"backbone": "test_resnet", "input_size": 32}})
    fit(cfg, progress=False)
    return root, out


def test_eval_reproduces_the_training_test_numbers(run, tmp_path):
    root, out = run
    # the README's command: dataset, folder and crops come from the run
    result = runner.invoke(app, ["eval", "--checkpoint", str(out / "best.pt"), "--split",
                                 str(out), "--n-boot", "50", "--logistic", "4",
                                 "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    trained = pd.read_csv(out / "test_metrics.csv").iloc[0]
    scored = pd.read_csv(tmp_path / "eval" / "metrics.csv").iloc[0]
    assert scored["n"] == trained["n"]
    for metric in ("srcc", "plcc", "krcc", "rmse"):
        assert scored[metric] == pytest.approx(trained[metric], abs=1e-6), metric
    assert scored["srcc_ci_low"] <= scored["srcc"] <= scored["srcc_ci_high"]
    assert 0 < scored["plcc_logistic"] <= 1
    preds = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    train_preds = pd.read_csv(out / "predictions.csv")
    assert list(preds["name"]) == list(train_preds["name"])
    assert (preds["pred"] - train_preds["pred"]).abs().max() < 1e-4
    assert f"{trained['srcc']:.4f}" in result.output

def test_eval_out_records_where_and_how_it_scored(run, tmp_path):
    root, out = run
    args = ["eval", "--checkpoint", str(out / "best.pt"), "--split", str(out), "--n-boot", "0",
            "--out", str(tmp_path / "eval")]
    for crops in ("4", "1"):  # scoring twice into one folder: the record is the last scoring's
        result = runner.invoke(app, [*args, "--eval-crops", crops])
        assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "eval" / "environment.json").read_text())
    assert len(records) == 1
    record = records[0]
    for key in ("started", "commit", "cpu", "torch", "device"):
        assert record[key], key
    assert record["device"] == "cpu"
    assert record["settings"]["checkpoint"] == str(out / "best.pt")
    assert record["settings"]["eval_crops"] == 1


def test_eval_compile_gives_the_training_test_numbers(run, tmp_path):
    import shutil

    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        pytest.skip("no C++ compiler for TorchInductor on CPU")
    root, out = run
    result = runner.invoke(app, ["eval", "--checkpoint", str(out / "best.pt"), "--dataset",
                                 "synthetic", "--root", str(root), "--split", str(out),
                                 "--n-boot", "0", "--compile", "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    train_preds = pd.read_csv(out / "predictions.csv")
    assert list(preds["name"]) == list(train_preds["name"])
    assert (preds["pred"] - train_preds["pred"]).abs().max() < 1e-3  # MOS units, 0-100 scale


def test_eval_whole_dataset_and_other_crops(run, tmp_path):
    root, out = run
    result = runner.invoke(app, ["eval", "--checkpoint", str(out / "best.pt"), "--dataset",
                                 "synthetic", "--root", str(root), "--limit", "12",
                                 "--eval-crop-mode", "center", "--n-boot", "0",
                                 "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert len(preds) == 12 and set(preds["subset"]) == {"all"}
    assert preds["pred"].between(-50, 150).all()  # MOS units of the 0-100 synthetic scale
    assert "warning:" in result.output and "ALL" in result.output  # training images too
    # --limit is a subset drawn with --seed (as in training), not the first N
    again = runner.invoke(app, ["eval", "--checkpoint", str(out / "best.pt"), "--dataset",
                                "synthetic", "--root", str(root), "--limit", "12", "--seed", "1",
                                "--eval-crop-mode", "center", "--n-boot", "0",
                                "--out", str(tmp_path / "eval1")])
    assert again.exit_code == 0, again.output
    other = pd.read_csv(tmp_path / "eval1" / "predictions.csv")
    assert len(other) == 12 and list(other["name"]) != list(preds["name"])
    from iqabench.data import load_dataset

    everything = sorted(load_dataset("synthetic", root).frame["name"].astype(str))
    assert list(preds["name"]) != everything[:12]


def test_eval_errors(run, tmp_path):
    root, out = run
    result = runner.invoke(app, ["eval", "--checkpoint", str(tmp_path / "none.pt"),
                                 "--dataset", "synthetic", "--root", str(root)])
    assert isinstance(result.exception, IqabenchError) and "not found" in str(result.exception)
    bad_split = tmp_path / "split.csv"
    bad_split.write_text("name,subset\nnot_there.png,test\nimages/x.png,test\n")
    result = runner.invoke(app, ["eval", "--checkpoint", str(out / "best.pt"), "--dataset",
                                 "synthetic", "--root", str(root), "--split", str(bad_split)])
    assert isinstance(result.exception, IqabenchError) and "not in the dataset" in str(result.exception)


def test_eval_of_a_csv_without_mos_is_one_line_saying_to_predict(run, tmp_path, monkeypatch,
                                                                 capsys):
    import sys

    from iqabench.cli.app import main

    _, out = run
    (tmp_path / "images.csv").write_text("path\na.png\n")
    monkeypatch.delenv("IQABENCH_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["iqabench", "eval", "--checkpoint", str(out / "best.pt"),
                                      "--dataset", "csv", "--root", str(tmp_path / "images.csv")])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no 'mos' column" in lines[0] and "iqabench predict" in lines[0]


def test_eval_on_another_scale_prints_the_note_and_no_rmse(run, tmp_path):
    from iqabench.data import load_dataset

    root, out = run
    frame = load_dataset("synthetic", root).frame.head(12)
    pd.DataFrame({"path": frame["path"], "mos": frame["mos"] / 20}).to_csv(tmp_path / "s.csv",
                                                                          index=False)
    result = runner.invoke(app, ["eval", "--checkpoint", str(out / "best.pt"), "--dataset", "csv",
                                 "--root", str(tmp_path / "s.csv"), "--n-boot", "0",
                                 "--out", str(tmp_path / "eval")], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "RMSE needs a common scale" in text and "n/a (needs a common scale)" in text
    preds = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    trained = pd.read_csv(out / "predictions.csv")["pred"]  # the 0-100 synthetic scale
    assert preds["pred"].mean() == pytest.approx(trained.mean(), rel=0.5)
    metrics = pd.read_csv(tmp_path / "eval" / "metrics.csv").iloc[0]
    assert np.isnan(metrics["rmse"]) and np.isfinite(metrics["srcc"])
