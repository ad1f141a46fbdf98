"""Experiment tracking: TensorBoard event files of a synthetic run (read back with
tensorboard's EventAccumulator), the no-op tracker, resume purging, environment.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm
import torch

from iqabench import runfolder, tracking
from iqabench.config import resolve_train_config
from iqabench.data import load_dataset
from iqabench.provenance import cpu_model
from iqabench.runtime import DistContext
from iqabench.training import _prepare_folder, fit

TINY = {"dataset": "synthetic", "limit": 40, "epochs": 2, "crops_per_image": 1,
        "batch_size": 12, "eval_crops": 1, "val_crops": 1, "eval_batch_size": 16,
        "pretrained": False, "n_boot": 20, "workers": 1, "lr": 3e-4,
        "model": {"backbone": "test_resnet", "input_size": 32}}


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    load_dataset("synthetic", root)
    return root


def events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def scalars(acc, tag: str) -> tuple[list[int], list[float]]:
    found = acc.Scalars(tag)
    return [e.step for e in found], [e.value for e in found]


def test_a_run_logs_loss_rates_and_validation_to_tensorboard(synthetic_root, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    fit(resolve_train_config(None, {**TINY, "root": str(synthetic_root), "out": str(out)}),
        progress=False)
    steps, log = runfolder.read_steps(out), runfolder.read_log(out)
    per_epoch = len(steps) // 2
    acc = events(out / runfolder.TENSORBOARD)
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "lr/backbone", "lr/heads", "val/srcc", "val/plcc", "val/krcc",
            "val/rmse", "train/epoch_loss", "epoch"} <= tags
    # the loss of every optimiser step, at its global step, as steps.csv has it
    step_ids, losses = scalars(acc, "train/loss")
    assert step_ids == steps["step"].tolist() == list(range(1, 2 * per_epoch + 1))
    np.testing.assert_allclose(losses, steps["loss"], rtol=1e-6)
    assert scalars(acc, "lr/heads")[1] == pytest.approx(steps["head_lr"].tolist(), rel=1e-6)
    # validation once per epoch, at the step that ends it, as log.csv has it
    val_steps, srcc = scalars(acc, "val/srcc")
    assert val_steps == [per_epoch, 2 * per_epoch]
    np.testing.assert_allclose(srcc, log["val_srcc"], rtol=1e-6)
    assert scalars(acc, "epoch") == ([per_epoch, 2 * per_epoch], [1.0, 2.0])
    # the curves figure once, at the end
    images = acc.Images("curves")
    assert [i.step for i in images] == [2 * per_epoch] and images[0].width > 400
    # the environment the round ran in
    (env,) = runfolder.read_environment(out)
    assert env["device"] == "cpu" and env["gpu"] is None and env["start_epoch"] == 0
    assert (env["torch"], env["timm"]) == (torch.__version__, timm.__version__)
    assert env["cpu"] == cpu_model() and env["iqabench"] and env["commit"]
    assert env["tensorboard"] and env["python"].count(".") == 2
    # --force removes the event files with the rest of the run
    (out / "extra.txt").write_text("kept")
    _prepare_folder(out, DistContext(), resume=False, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["extra.txt"]


def test_no_tensorboard_writes_no_event_files(synthetic_root, tmp_path):
    out = tmp_path / "run"
    cfg = resolve_train_config(None, {**TINY, "epochs": 1, "root": str(synthetic_root),
                                      "out": str(out), "tensorboard": False})
    fit(cfg, progress=False)
    assert not (out / runfolder.TENSORBOARD).exists()
    assert runfolder.read_steps(out) is not None and runfolder.read_environment(out)


def test_without_tensorboard_the_tracker_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(tracking, "tensorboard_available", lambda: False)
    tracker = tracking.open_tracker(tmp_path)
    assert type(tracker) is tracking.Tracker and not tracker.active
    with tracker:
        tracker.log_steps([{"epoch": 1, "step": 1, "loss": 0.5, "lr": 1e-4}])
        tracker.log_epoch({"epoch": 1, "val_srcc": 0.5}, step=1)
        tracker.log_curves(pd.DataFrame({"epoch": [1], "train_loss": [0.5]}), None, step=1)
    assert list(tmp_path.iterdir()) == []
    assert type(tracking.open_tracker(tmp_path, enabled=False)) is tracking.Tracker


def test_a_resumed_round_hides_what_the_killed_run_logged_past_its_checkpoint(tmp_path):
    pytest.importorskip("tensorboard")

    def epoch(tracker, e: int, loss: float) -> None:
        tracker.log_steps([{"epoch": e, "step": 2 * (e - 1) + s, "loss": loss, "lr": 1e-4,
                            "head_lr": 1e-3} for s in (1, 2)])
        tracker.log_epoch({"epoch": e, "val_srcc": loss}, step=2 * e)

    with tracking.open_tracker(tmp_path) as killed:  # 3 epochs logged, 2 checkpointed
        for e in (1, 2, 3):
            epoch(killed, e, loss=1.0)
    with tracking.open_tracker(tmp_path, purge_step=2 * 2 + 1) as resumed:
        epoch(resumed, 3, loss=0.5)
    acc = events(tmp_path / runfolder.TENSORBOARD)
    assert scalars(acc, "train/loss") == ([1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 0.5, 0.5])
    assert scalars(acc, "val/srcc") == ([2, 4, 6], [1, 1, 0.5])


def test_curves_figure_has_integer_epoch_ticks_and_legends_below():
    steps = pd.DataFrame({"epoch": np.repeat([1, 2, 3], 10), "step": np.arange(1, 31),
                          "loss": np.linspace(1, 0.2, 30)})
    log = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.8, 0.5, 0.3],
                        "val_srcc": [0.5, 0.6, 0.7], "val_plcc": [0.55, 0.65, 0.7]})
    fig = tracking.curves_figure(log, steps)
    pixels = tracking.figure_pixels(fig)
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
        legend = ax.get_legend().get_window_extent()
        assert legend.y1 <= ax.get_window_extent().y0  # below the axes, not over the data
    loss_line = fig.axes[0].get_lines()[0]
    assert loss_line.get_xdata().max() == pytest.approx(3.0)  # step 30 ends epoch 3


def test_environment_names_software_and_machine():
    env = tracking.environment("cpu", world_size=2)
    assert env["world_size"] == 2 and env["device"] == "cpu" and env["cuda"] is None
    assert env["torch"] == torch.__version__ and env["numpy"] == np.__version__
    assert env["cpu_count"] >= 1 and env["torch_threads"] >= 1
    assert env["started"].endswith("+00:00")
