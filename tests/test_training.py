"""Training end to end on the synthetic set with a tiny backbone: the run folder, model
selection on validation, resume after SIGKILL, rounds, DDP, failures."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from iqabench.config import TrainConfig, resolve_train_config
from iqabench.errors import IqabenchError
from iqabench.runfolder import summarize
from iqabench.training import fit, lr_factors

TINY = {"dataset": "synthetic", "limit": 40, "epochs": 2, "crops_per_image": 1,
        "batch_size": 12, "eval_crops": 1, "val_crops": 1, "eval_batch_size": 16,
        "pretrained": False, "n_boot": 50, "workers": 1, "lr": 3e-4,
        "model": {"backbone": "test_resnet", "input_size": 32}}
TINY_FLAGS = ["--dataset", "synthetic", "--limit", "40", "--crops-per-image", "1",
              "--batch-size", "12", "--eval-crops", "1", "--val-crops", "1",
              "--eval-batch-size", "16", "--no-pretrained", "--n-boot", "50",
              "--workers", "1", "--lr", "3e-4", "--backbone", "test_resnet",
              "--input-size", "32", "--quiet"]


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    from iqabench.data import load_dataset

    root = tmp_path_factory.mktemp("synthetic")
    load_dataset("synthetic", root)  # generate once for this module
    return root


def tiny(synthetic: Path, out: Path, **changes) -> TrainConfig:
    """The tiny config on the synthetic set; ``changes`` override (also dataset/root)."""
    data = {**TINY, "root": str(synthetic), "out": str(out), **changes}
    return resolve_train_config(None, data)


def run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "iqabench.cli.app", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_fit_writes_the_run_folder(synthetic_root, tmp_path):
    out = tmp_path / "run"
    result = fit(tiny(synthetic_root, out, epochs=3), progress=False)
    for name in ("config.yaml", "split.csv", "log.csv", "best.pt", "last.pt", "predictions.csv",
                 "test_metrics.csv", "train.log"):
        assert (out / name).is_file(), name
    log = pd.read_csv(out / "log.csv")
    assert list(log["epoch"]) == [1, 2, 3]
    for column in ("train_loss", "val_srcc", "val_plcc", "val_krcc", "val_rmse", "lr", "seconds"):
        assert column in log and log[column].notna().all(), column
    # best.pt is the epoch with the best validation SRCC, and test never chose it
    assert result.best_epoch == int(log.loc[log["val_srcc"].idxmax(), "epoch"])
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["best_epoch"] == result.best_epoch and best["label_range"] == [0.0, 100.0]
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 3
    split = pd.read_csv(out / "split.csv")
    assert set(split["subset"]) == {"train", "val", "test"} and len(split) == 40
    metrics = pd.read_csv(out / "test_metrics.csv")
    assert list(metrics.columns[:11]) == ["dataset", "round", "n", "srcc", "plcc", "krcc", "rmse",
                                          "plcc_logistic", "srcc_ci_low", "srcc_ci_high",
                                          "checkpoint"]
    row = metrics.iloc[0]
    assert row["dataset"] == "synthetic" and row["n"] == (split["subset"] == "test").sum()
    assert row["srcc_ci_low"] <= row["srcc"] <= row["srcc_ci_high"]
    preds = pd.read_csv(out / "predictions.csv")
    assert list(preds.columns[:6]) == ["dataset", "subset", "name", "mos", "pred", "content_id"]
    assert set(preds["name"]) == set(split.loc[split["subset"] == "test", "name"])
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["model"]["backbone"] == "test_resnet" and saved["epochs"] == 3
    assert "labels normalised to [0, 1]" in (out / "train.log").read_text()


def test_skip_bad_and_cross_dataset_test(synthetic_root, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append({"path": f"{i}.png", "mos": float(i)})
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    rows.append({"path": "broken.png", "mos": 3.0})
    csv = tmp_path / "scores.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    base = dict(dataset="csv", root=str(csv), epochs=1, tests=[{"dataset": "synthetic",
                                                             "root": str(synthetic_root)}])
    with pytest.raises(IqabenchError, match="broken.png"):
        fit(tiny(synthetic_root, tmp_path / "strict", **base), progress=False)
    out = tmp_path / "run"
    fit(tiny(synthetic_root, out, skip_bad=True, **base), progress=False)
    skipped = pd.read_csv(out / "skipped.csv")
    assert len(skipped) == 1 and skipped["file"].iloc[0].endswith("broken.png")
    assert "broken.png" not in set(pd.read_csv(out / "split.csv")["name"])
    metrics = pd.read_csv(out / "test_metrics.csv").set_index("dataset")
    assert list(metrics.index) == ["csv", "synthetic"]
    assert metrics.loc["synthetic", "n"] == 40  # the whole (limited) other dataset
    preds = pd.read_csv(out / "predictions.csv")
    assert set(preds.loc[preds["dataset"] == "synthetic", "subset"]) == {"all"}


def test_refuses_to_overwrite_and_force_replaces(synthetic_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(IqabenchError, match="--resume"):
        fit(tiny(synthetic_root, out, epochs=1), progress=False)
    fit(tiny(synthetic_root, out, epochs=1), force=True, progress=False)
    assert (out / "best.pt").is_file() and (out / "notes.txt").read_text() == "mine"


def test_rounds_write_round_folders_and_summary(synthetic_root, tmp_path):
    out = tmp_path / "rounds"
    result = fit(tiny(synthetic_root, out, epochs=1, rounds=2), progress=False)
    assert (out / "round_00" / "best.pt").is_file() and (out / "round_01" / "best.pt").is_file()
    splits = [pd.read_csv(out / f"round_{k:02d}" / "split.csv") for k in (0, 1)]
    assert not splits[0].equals(splits[1])  # two different seeded splits
    metrics = pd.read_csv(out / "test_metrics.csv")
    assert sorted(metrics["round"]) == [0, 1]
    summary = pd.read_csv(out / "summary.csv")
    row = summary.set_index("dataset").loc["synthetic"]
    assert row["rounds"] == 2 and row["srcc"] == pytest.approx(metrics["srcc"].median())
    assert row["srcc_std"] == pytest.approx(metrics["srcc"].std(ddof=1))
    assert result.summary is not None
    # --round K (a SLURM array task) adds one round to the same folder
    fit(tiny(synthetic_root, out, epochs=1, rounds=3, round=2), progress=False)
    assert (out / "round_02" / "test_metrics.csv").is_file()
    assert summarize(out).set_index("dataset").loc["synthetic", "rounds"] == 3


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(synthetic_root, tmp_path,
                                                                 monkeypatch):
    import iqabench.training as training

    class Exploding(training.IQALoss):
        calls = 0

        def forward(self, pred, target):
            Exploding.calls += 1
            loss, parts = super().forward(pred, target)
            if Exploding.calls > 3:  # epoch 1 has 3 steps; blow up in epoch 2
                loss = loss * float("nan")
            return loss, parts

    monkeypatch.setattr(training, "IQALoss", Exploding)
    out = tmp_path / "run"
    with pytest.raises(IqabenchError) as err:
        fit(tiny(synthetic_root, out, epochs=3), progress=False)
    message = str(err.value)
    assert "nan" in message and "epoch 2" in message and "last.pt" in message
    assert "\n" not in message
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["model"].values()
                                      if v.is_floating_point())


def test_resume_refuses_a_changed_architecture(synthetic_root, tmp_path):
    out = tmp_path / "run"
    fit(tiny(synthetic_root, out, epochs=1), progress=False)
    changed = tiny(synthetic_root, out, epochs=2, model={"backbone": "test_resnet",
                                                         "input_size": 32,
                                                         "hyper_input": "multiscale"})
    with pytest.raises(IqabenchError, match="model.hyper_input"):
        fit(changed, resume=True, progress=False)


def test_schedules():
    cfg = TrainConfig(dataset="synthetic", epochs=16, schedule="original", head_lr_ratio=10.0)
    backbone, heads = lr_factors(cfg, steps_per_epoch=5)
    # head lr per epoch in the original: 10x for epochs 1-7, /10 from 8, ratio 1 from 11, /100 from 14
    per_epoch = [heads(5 * e) * 10 for e in range(16)]
    assert per_epoch == pytest.approx([10] * 7 + [1] * 3 + [0.1] * 3 + [0.01] * 3)
    assert all(backbone(s) == 1.0 for s in range(80))
    cosine = lr_factors(TrainConfig(dataset="synthetic", epochs=2, schedule="cosine"), 10)[0]
    assert cosine(0) == 1.0 and cosine(10) == pytest.approx(0.5) and cosine(20) == pytest.approx(0)


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(synthetic_root, tmp_path):
    args = [*TINY_FLAGS, "--root", str(synthetic_root), "--epochs", "5", "--limit", "60"]
    whole = run_cli(["train", *args, "--out", str(tmp_path / "whole")])
    killed_dir = tmp_path / "killed"
    killed = run_cli(["train", *args, "--out", str(killed_dir)])
    deadline = time.time() + 300
    while not (killed_dir / "last.pt").is_file() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, killed.communicate()[0][-2000:]
    done = torch.load(killed_dir / "last.pt", weights_only=True)["epoch"]
    assert 1 <= done < 5 and not (killed_dir / "test_metrics.csv").exists()
    resumed = run_cli(["train", "--resume", str(killed_dir), "--quiet"])
    resumed_out = resumed.communicate()[0]
    whole_out = whole.communicate()[0]
    assert resumed.returncode == 0, resumed_out
    assert whole.returncode == 0, whole_out
    a = pd.read_csv(tmp_path / "whole" / "test_metrics.csv")
    b = pd.read_csv(killed_dir / "test_metrics.csv")
    for metric in ("srcc", "plcc", "krcc", "rmse"):
        assert b[metric].item() == pytest.approx(a[metric].item(), abs=1e-6), metric
    np.testing.assert_allclose(pd.read_csv(killed_dir / "predictions.csv")["pred"],
                               pd.read_csv(tmp_path / "whole" / "predictions.csv")["pred"], atol=1e-5)
    log_a, log_b = (pd.read_csv(d / "log.csv") for d in (tmp_path / "whole", killed_dir))
    assert list(log_b["epoch"]) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(log_b["val_srcc"], log_a["val_srcc"], atol=1e-6)


def test_ddp_two_processes_on_cpu(synthetic_root, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "iqabench.cli.app", "train", *TINY_FLAGS, "--root", str(synthetic_root),
         "--epochs", "1", "--device", "cpu", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = pd.read_csv(out / "log.csv")
    assert list(log["epoch"]) == [1] and math.isfinite(log["train_loss"].item())
    train = (pd.read_csv(out / "split.csv")["subset"] == "train").sum()
    # both processes trained: the epoch covered every training crop once (padded to 2 ranks)
    assert log["patches_per_s"].item() > 0
    assert int(torch.load(out / "last.pt", weights_only=True)["epoch"]) == 1
    assert pd.read_csv(out / "test_metrics.csv")["n"].item() > 1
    assert "2 processes" in (out / "train.log").read_text() and train > 0


def test_prefetch_keeps_order_and_raises():
    from iqabench.training import prefetch

    data = [(torch.full((2,), i), torch.tensor([i])) for i in range(7)]
    assert [int(c[0]) for c, _ in prefetch(data, depth=2)] == list(range(7))

    def broken():
        yield data[0]
        raise ValueError("decode failed")

    with pytest.raises(ValueError, match="decode failed"):
        list(prefetch(broken()))


def test_bf16_autocast_on_cpu(synthetic_root, tmp_path):
    result = fit(tiny(synthetic_root, tmp_path / "run", epochs=1, amp="bf16"), progress=False)
    assert np.isfinite(result.test_metrics["srcc"].item())
    assert "amp bfloat16" in (tmp_path / "run" / "train.log").read_text()


def test_recipe_original_trains_on_raw_labels(synthetic_root, tmp_path):
    out = tmp_path / "run"
    cfg = resolve_train_config(None, {**TINY, "recipe": "original", "root": str(synthetic_root),
                                      "out": str(out), "epochs": 1, "crops_per_image": 1,
                                      "batch_size": 12, "eval_crops": 1, "val_crops": 1})
    assert cfg.label_scale == "raw" and cfg.model.init == "original" and cfg.schedule == "original"
    fit(cfg, progress=False)
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["label_scale"] == "raw" and best["config"]["recipe"] == "original"
    assert best["optimizer"]["param_groups"][1]["lr"] == pytest.approx(10 * cfg.lr)
    assert "raw MOS labels" in (out / "train.log").read_text()
    preds = pd.read_csv(out / "predictions.csv")
    assert np.isfinite(preds["pred"]).all()
