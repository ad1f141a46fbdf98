"""`iqabench train` wiring: flags over file over recipe, resume, errors as one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import iqabench.training as training
from iqabench.cli.app import app
from iqabench.config import TestSet, save_config, resolve_train_config
from iqabench.errors import IqabenchError
from iqabench.training import RunResult

runner = CliRunner()


@pytest.fixture
def calls(monkeypatch, tmp_path):
    """Replace fit with a recorder returning one fake test row."""
    seen = []

    def fake_fit(cfg, *, resume=False, force=False, progress=None):
        seen.append({"cfg": cfg, "resume": resume, "force": force, "progress": progress})
        metrics = pd.DataFrame([{"dataset": cfg.dataset, "n": 10, "srcc": 0.9, "plcc": 0.8,
                                 "srcc_ci_low": 0.85, "srcc_ci_high": 0.95}])
        return RunResult(tmp_path, metrics, best_epoch=1)

    monkeypatch.setattr(training, "fit", fake_fit)
    return seen


def test_flags_map_onto_the_config(calls, tmp_path):
    result = runner.invoke(app, [
        "train", "--dataset", "agiqa3k", "--root", "/data/agiqa", "--test", "livec:/data/livec",
        "--test", "synthetic", "--backbone", "tf_efficientnet_lite0", "--hyper-input",
        "multiscale", "--weights", "/w/lite0.pth", "--loss", "l1+rank", "--alpha", "0.5",
        "--margin", "0.2", "--optimizer", "adamw", "--lr", "3e-5", "--head-lr-ratio", "5",
        "--schedule", "step", "--epochs", "2", "--rounds", "3", "--split-kind", "random",
        "--amp", "bf16", "--no-channels-last", "--limit", "100", "--skip-bad",
        "--input-size", "96", "--eval-crops", "16", "--eval-crop-mode", "grid",
        "--eval-batch-size", "8", "--n-boot", "20", "--no-flip", "--gamma", "0.5",
        "--out", str(tmp_path / "run"), "--quiet", "--force"])
    assert result.exit_code == 0, result.output
    call = calls[0]
    cfg = call["cfg"]
    assert (cfg.dataset, cfg.root) == ("agiqa3k", "/data/agiqa")
    assert cfg.tests == (TestSet("livec", "/data/livec"), TestSet("synthetic", None))
    assert cfg.model.backbone == "tf_efficientnet_lite0" and cfg.model.hyper_input == "multiscale"
    assert (cfg.loss, cfg.alpha, cfg.margin, cfg.optimizer, cfg.lr) == ("l1+rank", 0.5, 0.2, "adamw", 3e-5)
    assert (cfg.head_lr_ratio, cfg.schedule, cfg.epochs, cfg.rounds) == (5, "step", 2, 3)
    assert (cfg.amp, cfg.channels_last, cfg.limit, cfg.skip_bad) == ("bf16", False, 100, True)
    assert cfg.weights == "/w/lite0.pth" and cfg.model.input_size == 96
    assert (cfg.eval_crops, cfg.eval_crop_mode, cfg.eval_batch_size, cfg.n_boot) == (16, "grid",
                                                                                    8, 20)
    assert (cfg.flip, cfg.gamma) == (False, 0.5)
    assert call["force"] and not call["resume"] and call["progress"] is False
    assert "0.9000" in result.output  # the test SRCC is printed


def test_left_out_flags_keep_the_file_values_not_the_defaults(calls, tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text("dataset: livec\nn_boot: 10\nchannels_last: false\ncompile: true\n"
                    "model:\n  input_size: 96\n")
    result = runner.invoke(app, ["train", "--config", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    cfg = calls[0]["cfg"]
    assert (cfg.n_boot, cfg.channels_last, cfg.compile, cfg.model.input_size) == (10, False,
                                                                                 True, 96)
    result = runner.invoke(app, ["train", "--config", str(path), "--channels-last",
                                 "--input-size", "224", "--n-boot", "1000",
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output  # typed defaults do override the file
    cfg = calls[1]["cfg"]
    assert (cfg.n_boot, cfg.channels_last, cfg.model.input_size) == (1000, True, 224)


def test_dataset_is_required(calls, tmp_path):
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, IqabenchError) and "--dataset" in str(result.exception)
    assert not calls


def test_flags_override_the_config_file(calls, tmp_path):
    path = tmp_path / "base.toml"
    path.write_text('dataset = "livec"\nepochs = 8\nlr = 1e-5\n[model]\nbackbone = "resnet50"\n')
    result = runner.invoke(app, ["train", "--config", str(path), "--epochs", "3",
                                 "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    cfg = calls[0]["cfg"]
    assert (cfg.dataset, cfg.epochs, cfg.lr, cfg.model.backbone) == ("livec", 3, 1e-5, "resnet50")


def test_recipe_original(calls, tmp_path):
    result = runner.invoke(app, ["train", "--dataset", "livec", "--recipe", "original", "--epochs", "2",
                                 "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    cfg = calls[0]["cfg"]
    assert (cfg.crops_per_image, cfg.batch_size, cfg.epochs, cfg.label_scale) == (25, 96, 2, "raw")


def test_resume_reads_the_run_config(calls, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_config(resolve_train_config(None, {"dataset": "livec", "epochs": 4, "out": str(run)}),
                run / "config.yaml")
    result = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "6"])
    assert result.exit_code == 0, result.output
    call = calls[0]
    assert call["resume"] and call["cfg"].dataset == "livec" and call["cfg"].epochs == 6
    assert call["cfg"].out == str(run)
    result = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert isinstance(result.exception, IqabenchError)


def test_unknown_config_key_and_missing_out(calls, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"epochs": 2, "lr_backbone": 1e-4}))
    result = runner.invoke(app, ["train", "--config", str(path), "--out", str(tmp_path / "r")])
    assert isinstance(result.exception, IqabenchError) and "lr_backbone" in str(result.exception)
    result = runner.invoke(app, ["train", "--dataset", "synthetic"])
    assert isinstance(result.exception, IqabenchError) and "--out" in str(result.exception)
    assert not calls


def test_user_errors_print_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("IQABENCH_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "iqabench.cli.app", "train", "--dataset",
                           "konig10k", "--root", str(tmp_path), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "koniq10k" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_summary_command(tmp_path):
    for k, srcc in enumerate((0.7, 0.8, 0.9)):
        folder = tmp_path / f"round_{k:02d}"
        folder.mkdir()
        pd.DataFrame([{"dataset": "livec", "round": k, "n": 10, "srcc": srcc, "plcc": srcc,
                       "krcc": 0.5, "rmse": 1.0}]).to_csv(folder / "test_metrics.csv", index=False)
    result = runner.invoke(app, ["summary", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "summary.csv")
    row = summary.set_index("dataset").loc["livec"]
    assert row["rounds"] == 3 and row["srcc"] == pytest.approx(0.8)
    assert row["srcc_mean"] == pytest.approx(0.8) and row["srcc_std"] == pytest.approx(0.1)
    assert len(pd.read_csv(tmp_path / "test_metrics.csv")) == 3
