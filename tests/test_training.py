"""Training end to end on the synthetic set with a tiny backbone: the run folder, model
selection on validation, resume after SIGKILL, rounds, DDP, failures."""

from __future__ import annotations

import dataclasses
import importlib.util
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
from collections import Counter

from iqabench import runfolder
from iqabench.checkpoint import Progress, read_checkpoint, training_state
from iqabench.data import load_dataset
from iqabench.runfolder import summarize
from iqabench.runtime import DistContext, seed_everything
from iqabench.training import (
    build,
    fit,
    lr_factors,
    output_start,
    prefetch,
    prepare_data,
    restore,
    run_epoch,
    save_epoch,
    score_settings,
    score_test_sets,
    track_best,
    train_batches,
    wrap_for_training,
    write_run_files,
)

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
    # one steps.csv row per optimiser step, the rates each step used, every crop counted
    steps = runfolder.read_steps(out)
    per_epoch = -(-(split["subset"] == "train").sum() // 12)  # batch 12, one crop per image
    assert steps["step"].tolist() == list(range(1, 3 * per_epoch + 1))
    assert steps["epoch"].tolist() == [e for e in (1, 2, 3) for _ in range(per_epoch)]
    assert steps.groupby("epoch")["crops"].sum().tolist() == log["train_crops"].tolist()
    assert np.allclose(steps.groupby("epoch")["loss"].mean(), log["train_loss"])
    assert steps.loc[0, "lr"] == 3e-4 and steps.loc[0, "head_lr"] == pytest.approx(3e-3)
    assert steps["lr"].iloc[-1] < steps["lr"].iloc[0]  # the cosine schedule, step by step


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
    # the killed epoch's steps were dropped on resume: the same steps as the whole run
    a, b = runfolder.read_steps(tmp_path / "whole"), runfolder.read_steps(killed_dir)
    assert b["step"].tolist() == a["step"].tolist() == list(range(1, len(a) + 1))
    np.testing.assert_allclose(b["loss"], a["loss"], atol=1e-5)
    if importlib.util.find_spec("tensorboard"):  # TensorBoard hides the killed epoch's steps
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(killed_dir / runfolder.TENSORBOARD), {"scalars": 0})
        acc.Reload()
        logged = acc.Scalars("train/loss")
        assert [e.step for e in logged] == a["step"].tolist()
        np.testing.assert_allclose([e.value for e in logged], a["loss"], atol=1e-5)
    log_a, log_b = (pd.read_csv(d / "log.csv") for d in (tmp_path / "whole", killed_dir))
    assert list(log_b["epoch"]) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(log_b["val_srcc"], log_a["val_srcc"], atol=1e-6)


@pytest.mark.slow
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
    # the two ranks together trained on every training crop once (an odd count is padded
    # by one crop so both ranks take equally many; which crops: test_rank_strides_...)
    assert log["train_crops"].item() == train + train % 2
    assert log["patches_per_s"].item() > 0
    assert int(torch.load(out / "last.pt", weights_only=True)["epoch"]) == 1
    assert pd.read_csv(out / "test_metrics.csv")["n"].item() > 1
    assert "2 processes" in (out / "train.log").read_text() and train > 0


def test_prefetch_keeps_order_and_raises():
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
    last = torch.load(out / "last.pt", weights_only=True)  # best.pt holds no optimiser
    assert last["optimizer"]["param_groups"][1]["lr"] == pytest.approx(10 * cfg.lr)
    assert "raw MOS labels" in (out / "train.log").read_text()
    preds = pd.read_csv(out / "predictions.csv")
    assert np.isfinite(preds["pred"]).all()


# ------------------------------------------------------------------ the phases


@pytest.fixture(scope="module")
def phase(synthetic_root, tmp_path_factory):
    """A tiny round prepared and built once: (cfg, data, parts)."""
    cfg = tiny(synthetic_root, tmp_path_factory.mktemp("phase") / "run", epochs=2)
    seed_everything(cfg.seed)
    data = prepare_data(cfg, 0)
    return cfg, data, build(cfg, data, torch.device("cpu"))


def test_prepare_data_splits_labels_and_caches(phase):
    cfg, data, _ = phase
    split = data.split
    names = set(data.table.frame["name"].astype(str))
    assert len(names) == 40  # limit
    parts = [set(split.train), set(split.val), set(split.test)]
    assert set().union(*parts) == names and sum(map(len, parts)) == 40  # disjoint, complete
    lo, hi = data.table.mos_range
    assert data.labels.loc[list(split.train)].to_numpy() == pytest.approx(
        (data.mos.loc[list(split.train)].to_numpy() - lo) / (hi - lo))
    assert all(name in data.cache for name in names)
    assert len(data.batches) == -(-len(split.train) // cfg.batch_size)


def test_prepare_data_reuses_the_split_of_the_run_it_resumes(phase, tmp_path):
    cfg, data, _ = phase
    write_run_files(cfg, tmp_path, data)
    assert runfolder.read_config(tmp_path) == cfg
    other_seed = cfg.replace(test_fraction=0.4)  # would draw another split
    assert prepare_data(other_seed, 0).split.test != data.split.test
    again = prepare_data(other_seed, 0, split_from=tmp_path)
    assert (again.split.train, again.split.val, again.split.test) == (
        data.split.train, data.split.val, data.split.test)


def test_build_makes_two_lr_groups_and_a_schedule_over_the_epoch(phase):
    cfg, data, parts = phase
    assert [g["name"] for g in parts.optimizer.param_groups] == ["backbone", "heads"]
    assert [g["lr"] for g in parts.optimizer.param_groups] == pytest.approx(
        [cfg.lr, cfg.lr * cfg.head_lr_ratio])
    assert parts.scaler is None and parts.criterion.kind == cfg.loss
    assert next(parts.model.parameters()).device.type == "cpu"


@pytest.mark.parametrize("label_scale", ["unit", "raw"])
def test_centered_init_starts_at_the_mean_training_label(phase, label_scale):
    cfg, data, _ = phase
    cfg = cfg.replace(label_scale=label_scale)
    lo, hi = data.table.mos_range
    mos = data.mos.loc[list(data.split.train)]
    labels = mos if label_scale == "raw" else (data.mos - lo) / (hi - lo)
    mean = float(labels.loc[list(data.split.train)].mean())
    assert output_start(cfg, labels, data.split.train) == pytest.approx(mean)
    assert 40 < float(mos.mean()) < 70  # synthetic MOS sit around 50 on 0-100
    seed_everything(0)
    parts = build(cfg, dataclasses.replace(data, labels=labels), torch.device("cpu"))
    assert parts.model.bias_fcs[-1].bias.item() == pytest.approx(mean, rel=1e-6)
    crops, _ = next(iter(data.batches))
    with torch.no_grad():
        first = parts.model.eval()(crops)
    # the output starts at the label mean in the units trained on (not at a fixed 0.5)
    assert abs(first.mean().item() - mean) < 0.1 * (hi - lo if label_scale == "raw" else 1)
    assert (first - mean).abs().max().item() < 0.5
    # an explicit score_init wins; init original leaves the output where Kaiming puts it
    assert output_start(cfg.replace(model={**cfg.model.to_dict(), "score_init": 0.3}),
                        labels, data.split.train) == 0.3
    assert output_start(cfg.replace(model={**cfg.model.to_dict(), "init": "original"}),
                        labels, data.split.train) is None


def test_run_epoch_trains_validates_and_restore_continues_from_it(phase, tmp_path):
    cfg, data, _ = phase
    cpu = torch.device("cpu")
    seed_everything(1)
    parts = build(cfg, data, cpu)
    before = {k: v.clone() for k, v in parts.model.state_dict().items()}
    settings = score_settings(cfg, cpu, None, data.table.mos_range)
    row = run_epoch(cfg, 0, parts, wrap_for_training(cfg, parts.model, cpu), data, cpu, None,
                    settings)
    assert set(runfolder.LOG_COLUMNS) <= set(row) and row["epoch"] == 1
    assert math.isfinite(row["train_loss"]) and -1 <= row["val_srcc"] <= 1
    assert row["train_crops"] == len(data.split.train) * cfg.crops_per_image
    assert parts.model.training  # validation hands the model back in training mode
    assert any(not torch.equal(before[k], v) for k, v in parts.model.state_dict().items())
    state, improved = track_best(Progress(), row)
    save_epoch(tmp_path, training_state(cfg, parts.model, parts.optimizer, parts.scheduler,
                                        None, epoch=1, best_val=state.best_val,
                                        best_epoch=state.best_epoch,
                                        label_range=data.table.mos_range, round_=0),
               row, improved)
    fresh = build(cfg, data, cpu)
    progress = restore(cfg, fresh, tmp_path / runfolder.LAST)
    assert (progress.epoch, progress.best_epoch) == (1, 1)
    assert progress.best_val == pytest.approx(row["val_srcc"])
    for key, value in parts.model.state_dict().items():
        assert torch.equal(fresh.model.state_dict()[key], value), key
    assert fresh.scheduler.last_epoch == parts.scheduler.last_epoch == len(data.batches)
    with pytest.raises(IqabenchError, match="lr: run"):
        restore(cfg.replace(lr=1.0), build(cfg, data, cpu), tmp_path / runfolder.LAST)


def test_track_best_keeps_the_highest_finite_validation_srcc():
    state = Progress()
    seen = []
    for epoch, val in enumerate([float("nan"), 0.5, 0.7, 0.6, float("nan"), 0.71], 1):
        state, improved = track_best(state, {"epoch": epoch, "val_srcc": val})
        seen.append(improved)
        assert state.epoch == epoch
    # the first epoch is best until a defined SRCC beats it; NaN never wins afterwards
    assert seen == [True, True, True, False, False, True]
    assert (state.best_epoch, state.best_val) == (6, 0.71)
    # without a validation set the latest epoch is the best
    state, improved = track_best(Progress(1, 0.9, 1), {"epoch": 2, "val_srcc": float("nan")},
                                 has_val=False)
    assert improved and state.best_epoch == 2


def test_save_epoch_writes_best_only_when_improved(tmp_path):
    save_epoch(tmp_path, {"model": {}, "model_config": {}, "epoch": 1}, {"epoch": 1}, True)
    save_epoch(tmp_path, {"model": {}, "model_config": {}, "epoch": 2}, {"epoch": 2}, False)
    assert read_checkpoint(tmp_path / runfolder.BEST)["epoch"] == 1
    assert read_checkpoint(tmp_path / runfolder.LAST)["epoch"] == 2
    assert runfolder.read_log(tmp_path)["epoch"].tolist() == [1, 2]  # every epoch logged


def test_score_test_sets_scores_the_test_split_and_whole_other_sets(phase, synthetic_root):
    cfg, data, parts = phase
    cfg = cfg.replace(tests=[{"dataset": "synthetic", "root": str(synthetic_root)}])
    settings = score_settings(cfg, torch.device("cpu"), None, data.table.mos_range)
    predictions, metrics = score_test_sets(cfg, parts.model, data, settings, 3, best_epoch=2)
    assert metrics["dataset"].tolist() == ["synthetic", "synthetic"]
    assert metrics["n"].tolist() == [len(data.split.test), 40]
    assert metrics["round"].tolist() == [3, 3] and metrics["best_epoch"].tolist() == [2, 2]
    assert list(metrics.columns[:3]) == ["dataset", "round", "n"]
    test = predictions[predictions["subset"] == "test"]
    assert set(test["name"]) == set(data.split.test)
    assert (predictions["subset"] == "all").sum() == 40


def _crops(batches, epoch: int) -> Counter:
    batches.set_epoch(epoch)
    return Counter((crop.numpy().tobytes(), float(label))
                   for crops, labels in batches for crop, label in zip(crops, labels))


@pytest.mark.parametrize("n_images", [12, 15])  # no final batch of one crop (dropped)
def test_rank_strides_together_cover_every_training_crop_once(phase, n_images):
    """What each DDP rank trains on: the two ranks' crops of an epoch, together, are the
    crops of the same epoch in one process, each exactly once; an odd count adds one
    wrapped-around crop so that both ranks take equally many."""
    cfg, data, _ = phase
    cfg = cfg.replace(crops_per_image=1, batch_size=4)
    names = list(data.split.train)[:n_images]
    whole = _crops(train_batches(cfg, data.cache, names, data.labels, 7), epoch=3)
    assert sum(whole.values()) == n_images and max(whole.values()) == 1
    ranks = [_crops(train_batches(cfg, data.cache, names, data.labels, 7, DistContext(r, 2)), 3)
             for r in (0, 1)]
    together = ranks[0] + ranks[1]
    assert sum(ranks[0].values()) == sum(ranks[1].values()) == -(-n_images // 2)
    assert together - whole == Counter() or sum((together - whole).values()) == n_images % 2
    assert whole - together == Counter()  # no crop is left out
    if n_images % 2 == 0:
        assert together == whole  # exactly once each
    assert not (set(ranks[0]) & set(ranks[1])) or n_images % 2 == 1


def test_a_failed_start_leaves_nothing_and_the_same_call_then_works(synthetic_root, tmp_path):
    out = tmp_path / "run"
    bad = tiny(synthetic_root, out, epochs=1, model={"backbone": "no_such_net", "input_size": 32})
    with pytest.raises(IqabenchError, match="no_such_net"):
        fit(bad, progress=False)
    assert not out.exists()
    out.mkdir()  # a folder that was there (empty) stays, and stays empty
    with pytest.raises(IqabenchError, match="no_such_net"):
        fit(bad, progress=False)
    assert out.is_dir() and not any(out.iterdir())
    multi = tmp_path / "multi"
    with pytest.raises(IqabenchError, match="no_such_net"):
        fit(bad.replace(out=str(multi), rounds=2), progress=False)
    assert not multi.exists()
    fit(tiny(synthetic_root, out, epochs=1), progress=False)  # the same call, no --force
    assert (out / runfolder.TEST_METRICS).is_file()
