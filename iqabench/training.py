"""Training Hyper-IQA: ``fit(cfg) -> RunResult``, one run folder per round.

One round (:func:`fit_round`) runs named phases in order, each a function of its own:

1. :func:`prepare_data`: dataset table, split, labels, decoded image cache, training batches
   (then :func:`write_run_files`: config.yaml, split.csv, skipped.csv);
2. :func:`build`: model, loss, optimiser, lr schedule, gradient scaler;
3. :func:`restore` (resume only): the state of ``last.pt``, after checking the run's
   settings still fit;
4. :func:`run_epoch` per epoch: train on every crop once, then validate;
5. :func:`track_best` and :func:`save_epoch`: best-so-far, ``best.pt``/``last.pt``, log;
6. :func:`score_test_sets`: the test split and ``tests`` datasets, scored once with ``best.pt``.

The files of a run folder are described in :mod:`iqabench.runfolder`; multi-round runs
add round_XX/ folders and summary.csv. A run that fails before its first epoch is saved
(offline weights, unknown backbone, bad dataset) removes the files it created, so the
same command can simply be run again.

Defaults are sized for a CPU (1 random crop per image per epoch, a 3x3 test grid);
``--recipe original`` or ``--crops-per-image 25 --eval-crops 25`` give the paper's
protocol on a GPU.

Honest protocol
---------------
* The epoch is chosen on a validation slice carved from the training part (validation
  SRCC), never on the test set; the test sets are scored once, with ``best.pt``.
* Labels are normalised to [0, 1] by the dataset's MOS range by default
  (``label_scale="unit"``); the ranking margin is in those units (see
  :mod:`iqabench.losses`). Predictions are written back in each dataset's MOS units.

``--recipe original``
---------------------
The Hyper-IQA code's own recipe (train_test_IQA.py / HyerIQASolver.py): ResNet-50 with
torchvision's ImageNet weights (timm's ``resnet50.tv_in1k``; a bare ``resnet50`` is
timm's ``resnet50.a1_in1k``, other weights), 25 random 224 crops per training image per
epoch with horizontal flips, batch 96, Adam with lr 2e-5 for the backbone and 10x for
the heads, weight decay 5e-4, 16 epochs, L1 on raw MOS, the original (Kaiming)
initialisation, 25 test crops; the head lr divided by 10 every 6 epochs and the 10x
ratio dropped after epoch 10, the backbone lr constant. Changed on
purpose, because they are defects of the original code:

* the original rebuilt Adam every epoch from a one-shot ``filter`` iterator, so the heads
  were trained in epoch 1 only; here one optimiser with two parameter groups trains the
  heads every epoch (its Adam moments are also kept, not reset);
* the original reported the best *test* epoch; here validation selects the epoch;
* the 25 test crops form a deterministic 5x5 grid instead of random crops;
* seeds, checkpoints and resume exist.

Resume and determinism
----------------------
``last.pt`` is written atomically at the end of every epoch and holds the model,
optimiser, scheduler, epoch, RNG states and best-so-far (:mod:`iqabench.checkpoint`),
next to ``split.csv``; a run killed mid-epoch loses that epoch only. Crops are a pure
function of (seed, epoch) (:class:`iqabench.data.loader.TrainBatches`), the model's
initial weights of the seed, and CPU runs use deterministic kernels, so on CPU a resumed
run ends with the same metrics as an uninterrupted one.

Multi-GPU
---------
Under ``torchrun --nproc_per_node K`` (RANK/WORLD_SIZE/LOCAL_RANK set) the model is
wrapped in DistributedDataParallel (nccl on CUDA, gloo on CPU); every rank trains on
its own stride of each epoch's crops (:func:`train_batches`), rank 0 alone validates,
scores the test sets and writes files while the others wait. ``batch_size`` is per
process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from iqabench import runfolder
from iqabench.checkpoint import (
    Progress as TrainProgress,
    check_resumable,
    load_state_checked,
    read_checkpoint,
    restore_training_state,
    save_checkpoint,
    scoring_state,
    training_state,
)
from iqabench.config import TrainConfig
from iqabench.data import load_dataset
from iqabench.data.cache import ImageCache
from iqabench.data.check import check_dataset, skip_bad, write_problems
from iqabench.data.loader import TrainBatches
from iqabench.data.splits import (
    Split,
    check_split,
    make_splits,
    official_split,
    read_split,
    write_split,
)
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError
from iqabench.evaluation import ScoreSettings, label_to_unit, predict, score_images, unit_to_mos
from iqabench.losses import IQALoss
from iqabench.metrics import compute_metrics
from iqabench.models.hyperiqa import HyperIQA
from iqabench.runtime import (
    DistContext,
    autocast,
    init_distributed,
    resolve_amp,
    resolve_device,
    seed_everything,
    set_backend_flags,
)
from iqabench.tracking import environment, open_tracker

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced; files are in ``run_dir``."""

    run_dir: Path
    test_metrics: pd.DataFrame  # one row per test set (and round)
    summary: pd.DataFrame | None = None  # over rounds (multi-round runs)
    best_epoch: int | None = None
    best_val_srcc: float | None = None
    epochs_run: int = 0
    rounds: list["RunResult"] = field(default_factory=list)


# ----------------------------------------------------------------------- the API

def fit(cfg: TrainConfig, *, resume: bool = False, force: bool = False,
        progress: bool | None = None) -> RunResult:
    """Train as ``cfg`` says: one round into ``cfg.out``, or ``rounds`` rounds into
    ``out/round_XX/`` plus a summary, or round ``cfg.round`` only.

    ``resume`` continues from the run folder's ``last.pt`` files (finished rounds are
    kept); ``force`` replaces an existing run; ``progress`` None shows a bar on a TTY.
    """
    if not cfg.out:
        raise IqabenchError("no run folder: pass --out RUN_DIR")
    out = Path(cfg.out)
    ctx = init_distributed(cfg.device)
    if progress is None:
        progress = sys.stderr.isatty()
    progress = progress and ctx.main
    try:
        if cfg.rounds == 1 and cfg.round is None:
            return fit_round(cfg, 0, out, ctx, resume=resume, force=force, progress=progress)
        return _fit_rounds(cfg, out, ctx, resume=resume, force=force, progress=progress)
    finally:
        ctx.close()


def _fit_rounds(cfg: TrainConfig, out: Path, ctx: DistContext, *, resume: bool, force: bool,
                progress: bool) -> RunResult:
    """``rounds`` rounds (or round ``cfg.round`` only) into ``out/round_XX/``."""
    rounds = [cfg.round] if cfg.round is not None else list(range(cfg.rounds))
    # --round K: other array tasks write into the same folder at the same time, so only
    # this round's own folder is cleaned after a failed start (by fit_round)
    with _clean_failed_start(out, ctx, keep=resume or cfg.round is not None):
        _prepare_folder(out, ctx, resume=resume, force=force, keep_rounds=cfg.round is not None)
        if ctx.main:
            runfolder.write_config(cfg.replace(round=None), out)
        results = []
        for k in rounds:
            round_dir = out / runfolder.round_name(k)
            if resume and (round_dir / runfolder.TEST_METRICS).is_file():
                log.info("round %d already finished: %s", k, round_dir)
                results.append(RunResult(round_dir, runfolder.read_test_metrics(round_dir)))
                continue
            results.append(fit_round(cfg.replace(round=k), k, round_dir, ctx,
                                     resume=resume and round_dir.is_dir(), force=force,
                                     progress=progress))
    summary = runfolder.summarize(out) if ctx.main else None
    metrics = runfolder.read_test_metrics(out) if ctx.main else pd.DataFrame()
    return RunResult(out, metrics, summary=summary, rounds=results)


# --------------------------------------------------------------------- one round

def fit_round(cfg: TrainConfig, round_: int, run_dir: Path, ctx: DistContext = DistContext(),
              *, resume: bool = False, force: bool = False, progress: bool = False) -> RunResult:
    """Train one split into ``run_dir`` and score the test sets with its best epoch."""
    last_path = run_dir / runfolder.LAST
    if resume and not last_path.is_file():
        if any(run_dir.glob("*")) and not (run_dir / runfolder.CONFIG).is_file():
            raise IqabenchError(f"--resume {run_dir}: not a run folder (no config.yaml)")
        resume, force = False, True  # killed before its first checkpoint: start over
    with _clean_failed_start(run_dir, ctx, keep=resume):
        _prepare_folder(run_dir, ctx, resume=resume, force=force)
        with _round_logging(run_dir, ctx), _backend_for(cfg, ctx) as device:
            amp_dtype = resolve_amp(cfg.amp, device)
            seed_everything(cfg.seed + round_)
            data = prepare_data(cfg, round_, ctx, split_from=run_dir if resume else None,
                                progress=progress)
            if ctx.main:
                write_run_files(cfg, run_dir, data)
            parts = build(cfg, data, device, amp_dtype)
            state = TrainProgress()
            if resume:
                state = restore(cfg, parts, last_path)
                if ctx.main:
                    runfolder.truncate_log(run_dir, state.epoch)
                log.info("resuming %s after epoch %d (best val SRCC %.4f)", run_dir,
                         state.epoch, state.best_val)
            train_model = wrap_for_training(cfg, parts.model, device, ctx)
            if ctx.main:
                runfolder.write_environment(run_dir, {**environment(device, ctx.world_size),
                                                      "start_epoch": state.epoch})
                _log_header(cfg, data.table, data.split, parts.model, parts.criterion, device,
                            amp_dtype, ctx, output_start(cfg, data.labels, data.split.train))
            score = score_settings(cfg, device, amp_dtype, data.table.mos_range)
            state = train_epochs(cfg, round_, run_dir, parts, train_model, data, device,
                                 amp_dtype, dataclasses.replace(score, n_crops=cfg.val_crops),
                                 state, ctx, progress=progress)
            if not ctx.main:
                ctx.barrier()
                return RunResult(run_dir, pd.DataFrame(), epochs_run=cfg.epochs)
            best_epoch = load_best(parts.model, run_dir) or state.best_epoch
            predictions, test_metrics = score_test_sets(cfg, parts.model, data, score, round_,
                                                        best_epoch, progress=progress)
            runfolder.write_predictions(run_dir, predictions)
            runfolder.write_test_metrics(run_dir, test_metrics)
            ctx.barrier()
            return RunResult(run_dir, test_metrics, best_epoch=best_epoch,
                             best_val_srcc=state.best_val if np.isfinite(state.best_val)
                             else None, epochs_run=cfg.epochs)


def train_epochs(cfg: TrainConfig, round_: int, run_dir: Path, parts: TrainParts,
                 train_model: nn.Module, data: RoundData, device: torch.device,
                 amp_dtype: torch.dtype | None, val_settings: ScoreSettings,
                 state: TrainProgress, ctx: DistContext = DistContext(), *,
                 progress: bool = False) -> TrainProgress:
    """Epochs ``state.epoch + 1`` to ``cfg.epochs``: :func:`run_epoch`, then (rank 0)
    :func:`track_best` and :func:`save_epoch`, steps.csv and the TensorBoard scalars
    (:mod:`iqabench.tracking`; its curves figure once the last epoch is done); returns
    the final best-so-far."""
    last_path = run_dir / runfolder.LAST
    per_epoch = len(data.batches)
    bar = _Progress(progress, cfg.epochs, per_epoch, state.epoch)
    tracker = open_tracker(run_dir, cfg.tensorboard and ctx.main,
                           purge_step=state.epoch * per_epoch + 1 if state.epoch else None)
    try:
        for epoch in range(state.epoch, cfg.epochs):
            steps: list[dict] = []
            row = run_epoch(cfg, epoch, parts, train_model, data, device, amp_dtype,
                            val_settings, ctx, on_step=bar.step,
                            last_good=_last_good(last_path, epoch), step_log=steps)
            if ctx.main:
                runfolder.append_steps(run_dir, steps)  # before last.pt, as the log row
                tracker.log_steps(steps)
                tracker.log_epoch(row, step=(epoch + 1) * per_epoch)
                state, improved = track_best(state, row, has_val=len(data.split.val) >= 2)
                save_epoch(run_dir, training_state(
                    cfg, parts.model, parts.optimizer, parts.scheduler, parts.scaler,
                    epoch=epoch + 1, best_val=state.best_val, best_epoch=state.best_epoch,
                    label_range=data.table.mos_range, round_=round_,
                    resize=data.table.resize), row, improved)
                bar.epoch_done(row["val_srcc"])
                _log_epoch(cfg, row, improved)
                if epoch + 1 == cfg.epochs:
                    tracker.log_curves(runfolder.read_log(run_dir),
                                       runfolder.read_steps(run_dir), step=cfg.epochs * per_epoch)
            ctx.barrier()
    finally:
        bar.close()
        tracker.close()
    return state


# ---------------------------------------------------------------- phase: data

@dataclass
class RoundData:
    """What one round trains, validates and tests on."""

    table: DatasetTable
    split: Split
    mos: pd.Series  # MOS by image name
    labels: pd.Series  # training labels by image name (label_scale units)
    cache: ImageCache  # decoded pixels of every image this process needs
    batches: TrainBatches  # this rank's training crops
    skipped: list | None = None  # problem files left out (skip_bad)


def prepare_data(cfg: TrainConfig, round_: int, ctx: DistContext = DistContext(), *,
                 split_from: Path | None = None, progress: bool = False) -> RoundData:
    """The dataset table, the round's split (``split_from``'s split.csv when resuming),
    labels, the image cache and this rank's training batches."""
    table, skipped = load_table(cfg.dataset, cfg.root, cfg)
    split = resolve_split(cfg, table, round_, split_from)
    lo, hi = table.mos_range
    frame = table.frame.set_index(table.frame["name"].astype(str))
    mos = frame["mos"].astype(float)
    labels = (mos - lo) / (hi - lo) if cfg.label_scale == "unit" else mos
    needed = list(split.train + split.val + split.test) if ctx.main else list(split.train)
    cache = ImageCache.build(table, names=needed, progress=progress,
                             min_size=cfg.model.input_size, cache_dir=cfg.cache_dir,
                             **_threads(cfg.workers))
    batches = train_batches(cfg, cache, split.train, labels, cfg.seed + round_, ctx)
    return RoundData(table, split, mos, labels, cache, batches, skipped)


def train_batches(cfg: TrainConfig, cache: ImageCache, names, labels: pd.Series, seed: int,
                  ctx: DistContext = DistContext()) -> TrainBatches:
    """This rank's share of every epoch: ``crops_per_image`` crops of each of ``names``,
    shuffled as a function of (seed, epoch), rank ``r`` taking every ``world_size``-th
    crop from ``r`` (the epoch padded by wrapping to a multiple of ``world_size``).
    A final batch of a single crop is dropped (BatchNorm cannot train on one)."""
    names = list(names)
    per_rank = -(-len(names) * cfg.crops_per_image // ctx.world_size)
    return TrainBatches(cache, names, labels.loc[names].to_numpy(np.float32),
                        cfg.crops_per_image, cfg.batch_size, crop_size=cfg.model.input_size,
                        seed=seed, flip=cfg.flip, rank=ctx.rank, world_size=ctx.world_size,
                        drop_last=per_rank % cfg.batch_size == 1 and per_rank > 1)


def write_run_files(cfg: TrainConfig, run_dir: Path, data: RoundData) -> None:
    """config.yaml, split.csv and (with skip_bad) skipped.csv of a starting round."""
    runfolder.write_config(cfg, run_dir)
    write_split(data.split, run_dir / runfolder.SPLIT, overwrite=True)
    if data.skipped is not None:
        write_problems(data.skipped, run_dir / runfolder.SKIPPED)


# --------------------------------------------------------------- phase: build

@dataclass
class TrainParts:
    """The model and what trains it."""

    model: HyperIQA
    criterion: IQALoss
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None = None


def build(cfg: TrainConfig, data: RoundData, device: torch.device,
          amp_dtype: torch.dtype | None = None) -> TrainParts:
    """Model on ``device``, loss in the dataset's label units, optimiser, per-step
    schedule over ``len(data.batches)`` steps per epoch, and a gradient scaler for fp16."""
    model = build_train_model(cfg, output_start(cfg, data.labels, data.split.train)).to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    criterion = IQALoss(cfg.loss, cfg.alpha, cfg.margin, cfg.label_scale, data.table.mos_range)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer, len(data.batches))
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    return TrainParts(model, criterion, optimizer, scheduler, scaler)


def wrap_for_training(cfg: TrainConfig, model: nn.Module, device: torch.device,
                      ctx: DistContext = DistContext()) -> nn.Module:
    """The module the training steps call: DDP under torchrun, compiled with ``compile``.
    Checkpoints always save the unwrapped ``model``."""
    train_model = model
    if ctx.active:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        train_model = torch.compile(train_model)
    return train_model


# ------------------------------------------------------------- phase: restore

def restore(cfg: TrainConfig, parts: TrainParts, last_path: Path) -> TrainProgress:
    """Continue from ``last_path``: refuse changed settings, load the training state."""
    ckpt = read_checkpoint(last_path)
    check_resumable(cfg, ckpt.get("config", {}), last_path)
    return restore_training_state(ckpt, parts.model, parts.optimizer, parts.scheduler,
                                  parts.scaler, what=f"checkpoint {last_path}")


# --------------------------------------------------------------- phase: epoch

def run_epoch(cfg: TrainConfig, epoch: int, parts: TrainParts, train_model: nn.Module,
              data: RoundData, device: torch.device, amp_dtype: torch.dtype | None,
              val_settings: ScoreSettings, ctx: DistContext = DistContext(), *,
              on_step: Callable[[float, int], None] | None = None,
              last_good: str = "", step_log: list[dict] | None = None) -> dict:
    """Train epoch ``epoch`` (0-based) on every crop once, then validate (rank 0);
    returns the epoch's log row (``epoch`` 1-based, LOG_COLUMNS and more). ``step_log``
    receives one steps.csv row per optimiser step (``runfolder.STEP_COLUMNS``)."""
    data.batches.set_epoch(epoch)
    started = time.perf_counter()
    lrs = [g["lr"] for g in parts.optimizer.param_groups]  # as trained this epoch
    steps: list[dict] | None = [] if step_log is not None else None
    stats = train_one_epoch(train_model, parts.criterion, parts.optimizer, data.batches, device,
                            epoch=epoch, scheduler=parts.scheduler, scaler=parts.scaler,
                            amp_dtype=amp_dtype, channels_last=cfg.channels_last, ctx=ctx,
                            on_step=on_step, last_good=last_good, step_log=steps)
    if step_log is not None:
        first = epoch * len(data.batches)
        step_log.extend({"epoch": epoch + 1, "step": first + i + 1, **s}
                        for i, s in enumerate(steps))
    val = validate(parts.model, data, val_settings) if ctx.main else {}
    row = {"epoch": epoch + 1, "train_loss": stats["loss"],
           **{f"val_{k}": val.get(k, float("nan")) for k in ("srcc", "plcc", "krcc", "rmse")},
           "lr": lrs[0], "head_lr": lrs[1], "seconds": time.perf_counter() - started,
           "patches_per_s": stats["patches_per_s"], "train_crops": stats["patches"]}
    row.update({f"train_{k}": v for k, v in stats.items() if k in ("l1", "rank")})
    return row


def validate(model: nn.Module, data: RoundData, settings: ScoreSettings) -> dict:
    """Metrics of the validation images in MOS units ({} with fewer than 2); leaves the
    model in training mode."""
    names = list(data.split.val)
    if len(names) < 2:
        return {}
    pred = _predict_mos(model, data.cache, names, settings, data.table)
    model.train()
    metrics = compute_metrics(pred, data.mos.loc[names].to_numpy())
    if not np.isfinite(metrics.get("srcc", float("nan"))):
        log.warning("validation SRCC is undefined (constant predictions?)")
    return metrics


# ----------------------------------------------------------- phase: best/last

def track_best(state: TrainProgress, row: dict, has_val: bool = True
               ) -> tuple[TrainProgress, bool]:
    """The best-so-far after the epoch of ``row``, and whether this epoch is the new best.

    The best epoch has the highest finite validation SRCC; without a validation set
    (fewer than 2 images) the latest epoch is the best; an undefined SRCC never wins
    (except the first epoch, so best.pt always exists).
    """
    val = row.get("val_srcc", float("nan"))
    improved = (state.best_epoch is None or not has_val
                or (np.isfinite(val) and val > state.best_val))
    if not improved:
        return dataclasses.replace(state, epoch=row["epoch"]), False
    best_val = float(val) if np.isfinite(val) else state.best_val
    return TrainProgress(epoch=row["epoch"], best_val=best_val, best_epoch=row["epoch"]), True


def save_epoch(run_dir: Path, state: dict, row: dict, improved: bool) -> None:
    """best.pt (when ``improved``: the weights and what scoring needs, no optimiser or
    RNG state), the log row, then last.pt (the whole state, for resuming): an epoch counts
    as done once last.pt holds it (a resumed run drops log rows past it)."""
    if improved:
        save_checkpoint(scoring_state(state), run_dir / runfolder.BEST)
    runfolder.append_log(run_dir, row)
    save_checkpoint(state, run_dir / runfolder.LAST)


def load_best(model: nn.Module, run_dir: Path) -> int | None:
    """Load ``best.pt``'s weights into ``model``; its best epoch."""
    path = run_dir / runfolder.BEST
    best = read_checkpoint(path)
    load_state_checked(model, best["model"], f"checkpoint {path}")
    return best.get("best_epoch")


# ----------------------------------------------------------- phase: test sets

def score_settings(cfg: TrainConfig, device: torch.device, amp_dtype: torch.dtype | None,
                   label_range: tuple[float, float]) -> ScoreSettings:
    """How this run scores test images (validation: the same with ``val_crops``)."""
    return ScoreSettings(cfg.eval_crop_mode, cfg.eval_crops, cfg.model.input_size,
                         cfg.eval_batch_size, str(device), amp_dtype, cfg.channels_last,
                         cfg.label_scale, tuple(label_range))


def score_test_sets(cfg: TrainConfig, model: nn.Module, data: RoundData, score: ScoreSettings,
                    round_: int, best_epoch: int | None, *, progress: bool = False
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the test split and every ``cfg.tests`` dataset (whole) with ``model``;
    returns (predictions, test_metrics) frames in run-folder columns."""
    tests = [(data.table, list(data.split.test), "test", data.cache)]
    for test in cfg.tests:
        other, _ = load_table(test.dataset, test.root, cfg)
        names = sorted(other.frame["name"].astype(str))
        other_cache = ImageCache.build(other, names=names, progress=progress,
                                       min_size=cfg.model.input_size, cache_dir=cfg.cache_dir,
                                       **_threads(cfg.workers))
        tests.append((other, names, "all", other_cache))
    frames, rows = [], []
    for table, names, subset, cache in tests:
        if len(names) < 2:
            log.warning("%s: %d %s image(s), not scored", table.name, len(names), subset)
            continue
        pred_frame, metrics = score_images(model, table, names, cache, score, subset=subset,
                                           logistic=5, n_boot=cfg.n_boot)
        frames.append(pred_frame)
        rows.append({"dataset": table.name, "round": round_, **metrics,
                     "checkpoint": runfolder.BEST, "best_epoch": best_epoch})
        log.info("test %-10s n=%-5d SRCC %.4f  PLCC %.4f  (SRCC 95%% CI %.3f-%.3f)",
                 table.name, metrics["n"], metrics["srcc"], metrics["plcc"],
                 metrics["srcc_ci_low"], metrics["srcc_ci_high"])
    predictions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return predictions, runfolder.metric_frame(rows) if rows else pd.DataFrame()


# ------------------------------------------------------------------- the steps

def train_one_epoch(model: nn.Module, criterion: IQALoss, optimizer: torch.optim.Optimizer,
                    batches, device: torch.device, *, epoch: int,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                    scaler: torch.amp.GradScaler | None = None,
                    amp_dtype: torch.dtype | None = None, channels_last: bool = True,
                    ctx: DistContext = DistContext(),
                    on_step: Callable[[float, int], None] | None = None,
                    last_good: str = "", step_log: list[dict] | None = None
                    ) -> dict[str, float]:
    """One pass over ``batches``; returns mean ``loss`` (and its parts), ``patches``
    (crops trained, all ranks together) and ``patches_per_s``. A non-finite loss stops
    training with a one-line error. ``step_log`` receives per step: ``loss``, the
    learning rates the step used (``lr`` of the first parameter group, ``head_lr`` of
    the second), ``crops`` (all ranks) and the loss parts."""
    model.train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    sums: dict[str, float] = {}
    steps, patches = 0, 0
    started = time.perf_counter()
    source = prefetch(batches, pin=True) if device.type == "cuda" else batches
    for step, (crops, labels) in enumerate(source):
        crops = crops.to(device, non_blocking=True).contiguous(memory_format=fmt)  # uint8
        labels = labels.to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            pred = model(crops)
        loss, parts = criterion(pred.float(), labels)
        count = torch.tensor(float(crops.shape[0]), device=loss.device)
        values = torch.stack([loss.detach(), *(p.detach() for p in parts.values()), count])
        if ctx.active:  # every rank sees the same mean (and the same stop decision)
            dist.all_reduce(values)
            values /= ctx.world_size
        *values, count = values.tolist()
        count = round(count * ctx.world_size)  # crops of this step, all ranks together
        if not math.isfinite(values[0]):
            raise IqabenchError(
                f"training loss is {values[0]} at epoch {epoch + 1}, step {step + 1}: stopped. "
                f"{last_good} Try a lower --lr, --amp none, or check the labels.")
        if step_log is not None:  # the rates this step trains with (before the schedule)
            rates = [g["lr"] for g in optimizer.param_groups]
            step_log.append({"loss": values[0], "lr": rates[0],
                             "head_lr": rates[1] if len(rates) > 1 else math.nan,
                             "crops": count, **dict(zip(parts, values[1:]))})
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        for key, value in zip(["loss", *parts], values):
            sums[key] = sums.get(key, 0.0) + value
        steps += 1
        patches += count
        if on_step is not None:
            on_step(values[0], count)
    seconds = time.perf_counter() - started
    out = {k: v / max(steps, 1) for k, v in sums.items()}
    out.update(patches=patches, patches_per_s=patches / max(seconds, 1e-9))
    return out


def prefetch(batches, depth: int = 3, pin: bool = False):
    """Cut the next batches in a background thread while the GPU works on this one
    (crop copies release the GIL); order, and so the run, is unchanged."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            for crops, labels in batches:
                if stop.is_set():
                    return
                q.put((crops.pin_memory(), labels.pin_memory()) if pin else (crops, labels))
            q.put(done)
        except BaseException as err:  # hand the error to the consumer
            q.put(err)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


# ------------------------------------------------------------------- components

def build_train_model(cfg: TrainConfig, label_mean: float | None = None) -> HyperIQA:
    """Hyper-IQA as configured, backbone weights from ``weights`` or the hub. With
    ``init="centered"`` and no ``score_init`` set, the output starts at ``label_mean``
    (the mean training label, in the units trained on)."""
    if cfg.weights:
        model = HyperIQA(cfg.model, pretrained=False, weights=cfg.weights)
    else:
        model = HyperIQA(cfg.model, pretrained=cfg.pretrained)
    if cfg.model.init == "centered" and cfg.model.score_init is None and label_mean is not None:
        model.set_output_bias(label_mean)
    return model


def output_start(cfg: TrainConfig, labels: pd.Series, names) -> float | None:
    """Where ``init="centered"`` starts the output: ``score_init`` when set, else the
    mean of the training labels ``labels[names]``; None for ``init="original"``."""
    if cfg.model.init != "centered":
        return None
    if cfg.model.score_init is not None:
        return float(cfg.model.score_init)
    return float(labels.loc[list(names)].mean())


def build_optimizer(cfg: TrainConfig, model: HyperIQA) -> torch.optim.Optimizer:
    """Two groups, built once: the backbone at ``lr``, the heads at ``lr * head_lr_ratio``
    (the original rebuilt its optimiser each epoch and lost the heads after epoch 1)."""
    heads = model.head_parameters()
    groups = [{"params": list(model.backbone.parameters()), "lr": cfg.lr, "name": "backbone"},
              {"params": heads, "lr": cfg.lr * cfg.head_lr_ratio, "name": "heads"}]
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.optimizer]
    return kind(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factors(cfg: TrainConfig, steps_per_epoch: int) -> list[Callable[[int], float]]:
    """Per-step lr multipliers for (backbone, heads)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    spe = max(1, steps_per_epoch)

    def constant(step: int) -> float:
        return 1.0

    def cosine(step: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

    def step_decay(step: int) -> float:
        return cfg.gamma ** ((step // spe) // cfg.step_epochs)

    def original_heads(step: int) -> float:
        # HyerIQASolver after epoch t sets the head lr to lr * ratio_t / 10**(t // 6),
        # ratio_t = 10 until t > 8 then 1; epoch e trains with t = e - 1
        epoch = step // spe
        if epoch == 0:
            return 1.0
        t = epoch - 1
        ratio = cfg.head_lr_ratio if t <= 8 else 1.0
        return ratio / cfg.head_lr_ratio / 10 ** (t // 6)

    return {"none": [constant, constant], "cosine": [cosine, cosine],
            "step": [step_decay, step_decay], "original": [constant, original_heads]
            }[cfg.schedule]


def build_scheduler(cfg: TrainConfig, optimizer, steps_per_epoch: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factors(cfg, steps_per_epoch))


def load_table(name: str, root: str | None, cfg: TrainConfig):
    """The dataset table, bad files left out (``skip_bad``) and cut to ``limit`` images
    (a seeded random subset). Returns (table, skipped problems or None)."""
    table = load_dataset(name, root)
    skipped = None
    if cfg.skip_bad:
        table, skipped = skip_bad(table, check_dataset(table, workers=cfg.workers or None))
        if skipped:
            log.warning("skipping %d problem file(s) of %s, e.g. %s (%s)", len(skipped),
                        table.name, skipped[0].file, skipped[0].kind)
    if cfg.limit and cfg.limit < len(table):
        frame = table.frame.sample(n=cfg.limit, random_state=cfg.seed).sort_index()
        table = dataclasses.replace(table, frame=frame.reset_index(drop=True))
    return table, skipped


def resolve_split(cfg: TrainConfig, table, round_: int, run_dir: Path | None):
    """The split of this round: the run's own (resume), a saved file, the official
    split, or random round ``round_`` of ``seed``."""
    names = table.frame["name"].astype(str).tolist()
    if run_dir is not None and (run_dir / "split.csv").is_file():
        path = run_dir / "split.csv"
        split = read_split(path)
    elif cfg.split:
        path = Path(cfg.split)
        if path.is_dir():
            candidates = [path / f"round_{round_:02d}" / "split.csv", path / "split.csv"]
            path = next((c for c in candidates if c.is_file()), candidates[-1])
        split = read_split(path)
    elif cfg.split_kind == "official":
        path, split = "official split", official_split(table)
    else:
        path = "random split"
        split = make_splits(table, rounds=round_ + 1, seed=cfg.seed,
                            test_fraction=cfg.test_fraction, val_fraction=cfg.val_fraction,
                            by_content=True)[round_]
    check_split(split, names, source=str(path))
    if len(split.train) < 2:
        raise IqabenchError(f"{path}: {len(split.train)} training image(s); need at least 2")
    return split


def _threads(workers: int) -> dict:
    return {"threads": workers} if workers else {}


# ------------------------------------------------------------------ run folder

def _prepare_folder(run_dir: Path, ctx: DistContext, *, resume: bool, force: bool,
                    keep_rounds: bool = False) -> None:
    """Refuse to overwrite a run unless resuming or forced; every rank checks before
    rank 0 touches anything. ``force`` removes only files a run writes."""
    if run_dir.exists() and not run_dir.is_dir():
        raise IqabenchError(f"run folder {run_dir} is a file")
    existing = list(run_dir.iterdir()) if run_dir.is_dir() else []
    if keep_rounds:  # --round K: other array tasks' rounds are no conflict
        existing = [p for p in existing if not p.name.startswith("round_")
                    and p.name not in ("config.yaml", "test_metrics.csv", "summary.csv")]
    if existing and not resume and not force:
        raise IqabenchError(f"run folder {run_dir} exists and is not empty: pass "
                            f"--resume {run_dir} to continue it or --force to replace it")
    ctx.barrier()
    if ctx.main:
        if force and not resume:
            for p in existing:
                if p.name in runfolder.RUN_FILES and p.is_file():
                    p.unlink()
                elif p.is_dir() and (p.name.startswith("round_")
                                     or p.name in runfolder.RUN_DIRS):
                    shutil.rmtree(p)
        run_dir.mkdir(parents=True, exist_ok=True)
    ctx.barrier()



@contextlib.contextmanager
def _clean_failed_start(run_dir: Path, ctx: DistContext, keep: bool) -> Iterator[None]:
    """Remove what a run created in ``run_dir`` when it fails before any epoch was saved
    (no new last.pt in it or its round folders), and the folder itself when this run
    created it; files that were there before stay. ``keep``: never remove (resuming)."""
    created = not run_dir.exists()
    before = set(os.listdir(run_dir)) if run_dir.is_dir() else set()
    try:
        yield
    except BaseException:
        if ctx.main and not keep and run_dir.is_dir():
            new = [run_dir / name for name in os.listdir(run_dir) if name not in before]
            saved = any((p / runfolder.LAST).is_file() if p.is_dir() else p.name == runfolder.LAST
                        for p in new)
            if not saved:
                for p in new:
                    if p.is_dir() and (runfolder.round_index(p) is not None
                                       or p.name in runfolder.RUN_DIRS):
                        shutil.rmtree(p, ignore_errors=True)
                    elif p.name in runfolder.RUN_FILES or p.name.endswith(".tmp"):
                        p.unlink(missing_ok=True)
                if created and not any(run_dir.iterdir()):
                    run_dir.rmdir()
        raise


@contextlib.contextmanager
def _round_logging(run_dir: Path, ctx: DistContext) -> Iterator[None]:
    """Copy iqabench's messages into the round's train.log (rank 0) while the block runs."""
    if not ctx.main:
        yield
        return
    handler, old_level = _log_to_file(run_dir / runfolder.TRAIN_LOG)
    try:
        yield
    finally:
        logger = logging.getLogger("iqabench")
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


@contextlib.contextmanager
def _backend_for(cfg: TrainConfig, ctx: DistContext) -> Iterator[torch.device]:
    """The device of this rank, with the backend switches for it set while the block runs."""
    device = ctx.device(resolve_device(cfg.device))
    restore_backends = set_backend_flags(device)
    try:
        yield device
    finally:
        restore_backends()


def _log_epoch(cfg: TrainConfig, row: dict, improved: bool) -> None:
    log.info("epoch %d/%d  loss %.4f  val SRCC %.4f PLCC %.4f  %.0f patches/s  %.0f s%s",
             row["epoch"], cfg.epochs, row["train_loss"], row["val_srcc"], row["val_plcc"],
             row["patches_per_s"], row["seconds"], "  *best*" if improved else "")

def _last_good(last_path: Path, epoch: int) -> str:
    if epoch > 0:
        return f"The last good checkpoint is {last_path} (epoch {epoch})."
    return "No checkpoint was written."


def _log_to_file(path: Path) -> tuple[logging.Handler, int]:
    """Copy iqabench's messages into the run folder's train.log (INFO and up)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("iqabench")
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler, old_level


def _log_header(cfg, table, split, model, criterion, device, amp_dtype, ctx,
                start: float | None = None) -> None:
    counts = split.counts()
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    log.info("dataset %s: %d images (train %d, val %d, test %d; %s split, round %d)",
             table.name, len(table), counts["train"], counts["val"], counts["test"], split.kind,
             split.round)
    init = cfg.model.init
    if start is not None:
        init += f", output bias {start:.4g}"
    log.info("model: Hyper-IQA over %s (%s hyper input, init %s), %.2f M params",
             cfg.model.backbone, cfg.model.hyper_input, init, params_m)
    log.info("%s; MOS range %s", criterion.describe(), list(table.mos_range))
    log.info("%s lr %.2g (heads x%g), wd %.2g, %s schedule, %d epochs x %d crops/image, "
             "batch %d%s, device %s, amp %s", cfg.optimizer, cfg.lr, cfg.head_lr_ratio,
             cfg.weight_decay, cfg.schedule, cfg.epochs, cfg.crops_per_image, cfg.batch_size,
             f" x {ctx.world_size} processes" if ctx.active else "", device,
             str(amp_dtype).replace("torch.", "") if amp_dtype else "none")


def _predict_mos(model, cache, names, settings: ScoreSettings, table) -> np.ndarray:
    raw = predict(model, cache, names, settings.crop_mode, settings.n_crops, settings.crop_size,
                  settings.batch_size, device=settings.device, amp_dtype=settings.amp_dtype,
                  channels_last=settings.channels_last)
    return unit_to_mos(label_to_unit(raw, settings.label_scale, settings.label_range),
                       table.mos_range)


class _Progress:
    """A rich bar over the whole run: epoch, loss, patches/s, ETA, last val SRCC."""

    def __init__(self, enabled: bool, epochs: int, steps_per_epoch: int, start_epoch: int):
        self.bar = None
        self.epoch = start_epoch
        self.epochs = epochs
        if not enabled:
            return
        self.bar = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[speed]:.0f} patches/s"), TimeRemainingColumn(),
            TextColumn("val SRCC {task.fields[val]}"), console=Console(stderr=True))
        self.bar.start()
        # log lines go through rich's redirected stderr, above the bar, not across it
        self.handlers = [(h, h.stream) for h in logging.getLogger().handlers
                         if type(h) is logging.StreamHandler
                         and h.stream in (sys.__stderr__, sys.__stdout__)]
        for handler, _ in self.handlers:
            handler.setStream(sys.stderr)
        self.task = self.bar.add_task("train", total=epochs * steps_per_epoch,
                                      completed=start_epoch * steps_per_epoch,
                                      epoch=start_epoch + 1, epochs=epochs, loss=float("nan"),
                                      speed=0.0, val="-")
        self.last = time.perf_counter()

    def step(self, loss: float, patches: int) -> None:
        if self.bar is None:
            return
        now = time.perf_counter()
        speed = patches / max(now - self.last, 1e-9)
        self.last = now
        self.bar.update(self.task, advance=1, loss=loss, speed=speed)

    def epoch_done(self, val_srcc: float) -> None:
        self.epoch += 1
        if self.bar is None:
            return
        self.bar.update(self.task, epoch=min(self.epoch + 1, self.epochs),
                        val=f"{val_srcc:.4f}" if np.isfinite(val_srcc) else "-")
        self.last = time.perf_counter()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            for handler, stream in self.handlers:
                handler.setStream(stream)
            self.bar = None


__all__ = ["RoundData", "RunResult", "TrainParts", "build", "build_optimizer", "build_scheduler",
           "build_train_model", "fit", "fit_round", "load_best", "load_table", "output_start",
           "prepare_data", "restore", "resolve_split", "run_epoch", "save_epoch",
           "score_settings", "score_test_sets", "track_best", "train_batches", "train_epochs",
           "train_one_epoch", "validate", "wrap_for_training", "write_run_files"]
