"""Experiment tracking: TensorBoard event files and the environment a round ran in.

:func:`open_tracker` gives a round's :class:`Tracker`. With ``tensorboard`` installed
(``pip install "iqabench[tb]"``) and ``TrainConfig.tensorboard`` on (``--tensorboard``,
the default), it writes event files to ``ROUND/tensorboard/`` through
``torch.utils.tensorboard.SummaryWriter``; otherwise it does nothing. ``tensorboard
--logdir RUN`` then shows every round of a run:

====================================  ==============================================
tag                                   what, at which step
====================================  ==============================================
``train/loss`` (``train/l1``,         each optimiser step's training loss (and its
``train/rank``)                       parts), at its global step (steps.csv's ``step``)
``lr/backbone``, ``lr/heads``         the learning rates that step trained with
``val/srcc``, ``val/plcc``,           each epoch's validation metrics (MOS units) and
``val/krcc``, ``val/rmse``,           mean training loss, at the global step that ends
``train/epoch_loss``, ``epoch``       the epoch (``epoch`` maps steps to epochs)
``curves`` (image)                    at the end of training: loss per step (raw and
                                      smoothed) and validation SRCC/PLCC per epoch,
                                      x-axis in epochs
====================================  ==============================================

Every scalar is on the global-step axis, so a resumed round (``purge_step``) hides what
the killed run logged past its last checkpoint, as log.csv and steps.csv drop it.

:func:`environment` describes the machine and software for the run folder's
environment.json (:func:`iqabench.runfolder.write_environment`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import timm
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from iqabench import runfolder
from iqabench.provenance import cpu_model, git_commit

log = logging.getLogger(__name__)

#: steps.csv columns and the tags they are logged under.
STEP_TAGS = {"loss": "train/loss", "l1": "train/l1", "rank": "train/rank",
             "lr": "lr/backbone", "head_lr": "lr/heads"}
#: log.csv columns and the tags they are logged under.
EPOCH_TAGS = {"val_srcc": "val/srcc", "val_plcc": "val/plcc", "val_krcc": "val/krcc",
              "val_rmse": "val/rmse", "train_loss": "train/epoch_loss", "epoch": "epoch"}


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package is installed."""
    return importlib.util.find_spec("tensorboard") is not None


class Tracker:
    """A round's tracker that records nothing (tensorboard absent or turned off).

    Use as a context manager; :class:`TensorBoardTracker` records the same calls.
    """

    active = False

    def log_steps(self, rows: list[dict]) -> None:
        """One epoch's steps.csv rows (``step`` the global step)."""

    def log_epoch(self, row: dict, step: int) -> None:
        """One log.csv row, at the global ``step`` that ended its epoch."""

    def log_curves(self, log_frame: pd.DataFrame | None, steps: pd.DataFrame | None,
                   step: int) -> None:
        """The training curves figure (:func:`curves_figure`) at ``step``."""

    def close(self) -> None:
        """Flush and close the event file."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TensorBoardTracker(Tracker):
    """Writes a round's scalars and curves into ``folder/tensorboard/``."""

    active = True

    def __init__(self, folder: str | Path, purge_step: int | None = None):
        """``purge_step``: resuming, hide events at this global step and later that an
        earlier, killed run of the round wrote."""
        from torch.utils.tensorboard import SummaryWriter  # needs tensorboard

        self.folder = Path(folder) / runfolder.TENSORBOARD
        self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=purge_step)

    def log_steps(self, rows: list[dict]) -> None:
        for row in rows:
            for key, tag in STEP_TAGS.items():
                value = row.get(key)
                if value is not None and np.isfinite(value):
                    self.writer.add_scalar(tag, float(value), int(row["step"]))

    def log_epoch(self, row: dict, step: int) -> None:
        for key, tag in EPOCH_TAGS.items():
            value = row.get(key)
            if value is not None and np.isfinite(value):
                self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()

    def log_curves(self, log_frame: pd.DataFrame | None, steps: pd.DataFrame | None,
                   step: int) -> None:
        if log_frame is None or log_frame.empty:
            return
        self.writer.add_image("curves", figure_pixels(curves_figure(log_frame, steps)), step,
                              dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def open_tracker(folder: str | Path, enabled: bool = True,
                 purge_step: int | None = None) -> Tracker:
    """A :class:`TensorBoardTracker` for round folder ``folder`` when ``enabled`` and
    tensorboard is installed, else a :class:`Tracker` that records nothing."""
    if not enabled:
        return Tracker()
    if not tensorboard_available():
        log.info("tensorboard is not installed: no event files (pip install 'iqabench[tb]')")
        return Tracker()
    return TensorBoardTracker(folder, purge_step=purge_step)


# ------------------------------------------------------------------------ figure

def curves_figure(log_frame: pd.DataFrame, steps: pd.DataFrame | None = None) -> Figure:
    """Training loss per step (raw, faint; smoothed) and validation SRCC/PLCC per epoch,
    both over epochs (integer ticks), legends below the axes."""
    fig = Figure(figsize=(9, 3.6), dpi=100, layout="constrained")
    loss_ax, val_ax = fig.subplots(1, 2)
    if steps is not None and len(steps):
        per_epoch = steps.groupby("epoch")["step"].count()
        first = steps.groupby("epoch")["step"].transform("min")
        x = steps["epoch"] - 1 + (steps["step"] - first + 1) / steps["epoch"].map(per_epoch)
        loss = steps["loss"].to_numpy(dtype=float)
        span = max(1, len(loss) // 20)
        loss_ax.plot(x, loss, color="C0", alpha=0.25, linewidth=0.8, label="per step")
        loss_ax.plot(x, pd.Series(loss).ewm(span=span).mean(), color="C0",
                     label=f"smoothed (EMA, span {span})")
    else:
        loss_ax.plot(log_frame["epoch"], log_frame["train_loss"], "o-", color="C0",
                     label="epoch mean")
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    for column, name, color in (("val_srcc", "SRCC", "C1"), ("val_plcc", "PLCC", "C2")):
        if column in log_frame:
            val_ax.plot(log_frame["epoch"], log_frame[column], "o-", color=color, label=name)
    val_ax.set(xlabel="epoch", ylabel="correlation", title="Validation")
    for ax in (loss_ax, val_ax):
        ax.set_xlim(left=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    return fig


def figure_pixels(fig: Figure) -> np.ndarray:
    """The figure drawn to an (H, W, 3) uint8 array (Agg canvas, no pyplot)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


# ------------------------------------------------------------------- environment

def environment(device: torch.device | str, world_size: int = 1) -> dict:
    """Where and with what a round runs: the time (UTC), iqabench version and git
    commit, Python, torch, timm (and tensorboard) versions, the device, the CPU model
    and core count, torch's thread count, and on CUDA the GPU model, CUDA and cuDNN."""
    device = torch.device(device)
    cuda = device.type == "cuda" and torch.cuda.is_available()
    return {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "iqabench": _version("iqabench"),
        "commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": np.__version__,
        "tensorboard": _version("tensorboard"),
        "device": str(device),
        "world_size": world_size,
        "dist_backend": (torch.distributed.get_backend() if torch.distributed.is_available()
                         and torch.distributed.is_initialized() else None),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


__all__ = ["EPOCH_TAGS", "STEP_TAGS", "TensorBoardTracker", "Tracker", "curves_figure",
           "environment", "figure_pixels", "open_tracker", "tensorboard_available"]
