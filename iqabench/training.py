"""Training Hyper-IQA: ``fit(cfg) -> RunResult``, one run folder per round.

``fit`` reads top to bottom: data and split, image cache, model, loss, optimiser and
schedule, then ``train_one_epoch`` and validation per epoch, then the test sets scored
with the best checkpoint. A run folder holds config.yaml (the resolved config),
split.csv, log.csv (+ log.jsonl, train.log), best.pt, last.pt, predictions.csv and
test_metrics.csv; multi-round runs add round_XX/ folders and summary.csv.

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
The Hyper-IQA code's own recipe (train_test_IQA.py / HyerIQASolver.py): 25 random 224
crops per training image per epoch with horizontal flips, batch 96, Adam with lr 2e-5
for the backbone and 10x for the heads, weight decay 5e-4, 16 epochs, L1 on raw MOS,
the original (Kaiming) initialisation, 25 test crops; the head lr divided by 10 every 6
epochs and the 10x ratio dropped after epoch 10, the backbone lr constant. Changed on
purpose, because they are defects (DESIGN.md section 2):

* the original rebuilt Adam every epoch from a one-shot ``filter`` iterator, so the heads
  were trained in epoch 1 only (its issue #32); here one optimiser with two parameter
  groups trains the heads every epoch (its Adam moments are also kept, not reset);
* the original reported the best *test* epoch; here validation selects the epoch;
* the 25 test crops form a deterministic 5x5 grid instead of random crops (issue #31);
* seeds, checkpoints and resume exist.

Resume and determinism
----------------------
``last.pt`` is written atomically at the end of every epoch and holds the model,
optimiser, scheduler, epoch, RNG states and best-so-far, next to ``split.csv``; a run
killed mid-epoch loses that epoch only. Crops are a pure function of (seed, epoch)
(:class:`iqabench.data.loader.TrainBatches`), the model's initial weights of the seed,
and CPU runs use deterministic kernels, so on CPU a resumed run ends with the same
metrics as an uninterrupted one.

Multi-GPU
---------
Under ``torchrun --nproc_per_node K`` (RANK/WORLD_SIZE/LOCAL_RANK set) the model is
wrapped in DistributedDataParallel (nccl on CUDA, gloo on CPU); every rank trains on
its own stride of each epoch's crops, rank 0 alone validates, scores the test sets and
writes files while the others wait. ``batch_size`` is per process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn

from iqabench import runfolder
from iqabench.config import TrainConfig, save_config
from iqabench.errors import IqabenchError
from iqabench.evaluation import (
    ScoreSettings,
    autocast,
    load_state_checked,
    read_checkpoint,
    resolve_amp,
    resolve_device,
    save_checkpoint,
    score_images,
)
from iqabench.losses import IQALoss
from iqabench.metrics import compute_metrics
from iqabench.models.hyperiqa import HyperIQA

log = logging.getLogger(__name__)

#: Run settings that may change when resuming; anything else must match the run.
RESUMABLE = {"epochs", "device", "amp", "compile", "workers", "tests", "n_boot", "cache_dir",
             "channels_last", "out", "eval_batch_size"}


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


# ---------------------------------------------------------------------- processes

@dataclass(frozen=True)
class DistContext:
    """This process's place in a torchrun job (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def init_distributed(device_name: str) -> DistContext:
    """Read RANK/WORLD_SIZE/LOCAL_RANK (torchrun) and join the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    ctx = DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        cuda = device_name != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    return ctx


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": _numpy_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state() -> list:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss]


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


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
    multi = cfg.rounds > 1 or cfg.round is not None
    try:
        if not multi:
            return fit_round(cfg, 0, out, ctx, resume=resume, force=force, progress=progress)
        rounds = [cfg.round] if cfg.round is not None else list(range(cfg.rounds))
        _prepare_folder(out, ctx, resume=resume, force=force,
                        keep_rounds=cfg.round is not None)
        if ctx.main:
            save_config(cfg.replace(round=None), out / "config.yaml")
        results = []
        for k in rounds:
            round_dir = out / f"round_{k:02d}"
            done = round_dir / "test_metrics.csv"
            if resume and done.is_file():
                log.info("round %d already finished: %s", k, done)
                results.append(RunResult(round_dir, pd.read_csv(done)))
                continue
            results.append(fit_round(cfg.replace(round=k), k, round_dir, ctx,
                                     resume=resume and round_dir.is_dir(), force=force,
                                     progress=progress))
        summary = runfolder.summarize(out) if ctx.main else None
        metrics = (pd.read_csv(out / "test_metrics.csv") if ctx.main
                   else pd.DataFrame())
        return RunResult(out, metrics, summary=summary, rounds=results)
    finally:
        if ctx.active and dist.is_initialized():
            dist.destroy_process_group()


# --------------------------------------------------------------------- one round

def fit_round(cfg: TrainConfig, round_: int, run_dir: Path, ctx: DistContext = DistContext(),
              *, resume: bool = False, force: bool = False, progress: bool = False) -> RunResult:
    """Train one split into ``run_dir`` and score the test sets with its best epoch."""
    from iqabench.data.cache import ImageCache
    from iqabench.data.loader import TrainBatches
    from iqabench.data.splits import write_split

    last_path = run_dir / "last.pt"
    if resume and not last_path.is_file():
        if any(run_dir.glob("*")) and not (run_dir / "config.yaml").is_file():
            raise IqabenchError(f"--resume {run_dir}: not a run folder (no config.yaml)")
        resume, force = False, True  # killed before its first checkpoint: start over
    _prepare_folder(run_dir, ctx, resume=resume, force=force)
    handler, old_level = _log_to_file(run_dir / "train.log") if ctx.main else (None, None)
    restore_backends: Callable[[], None] = lambda: None
    try:
        device = resolve_device(cfg.device)
        if device.type == "cuda" and ctx.active:
            device = torch.device("cuda", ctx.local_rank)
        amp_dtype = resolve_amp(cfg.amp, device)
        restore_backends = set_backend_flags(device)
        seed = cfg.seed + round_
        seed_everything(seed)

        # --- data: table, split, labels, decoded pixels
        table, skipped = load_table(cfg.dataset, cfg.root, cfg)
        split = resolve_split(cfg, table, round_, run_dir if resume else None)
        lo, hi = table.mos_range
        frame = table.frame.set_index(table.frame["name"].astype(str))
        mos = frame["mos"].astype(float)
        labels = (mos - lo) / (hi - lo) if cfg.label_scale == "unit" else mos
        if ctx.main:
            save_config(cfg, run_dir / "config.yaml")
            write_split(split, run_dir / "split.csv", overwrite=True)
            if skipped is not None:
                from iqabench.data.check import write_problems

                write_problems(skipped, run_dir / "skipped.csv")
        crop = cfg.model.input_size
        needed = list(split.train + split.val + split.test) if ctx.main else list(split.train)
        cache = ImageCache.build(table, names=needed, progress=progress, min_size=crop,
                                 cache_dir=cfg.cache_dir, **_threads(cfg.workers))
        train_labels = labels.loc[list(split.train)].to_numpy(np.float32)
        per_rank = -(-len(split.train) * cfg.crops_per_image // ctx.world_size)
        batches = TrainBatches(cache, split.train, train_labels, cfg.crops_per_image,
                               cfg.batch_size, crop_size=crop, seed=seed, flip=cfg.flip,
                               rank=ctx.rank, world_size=ctx.world_size,
                               drop_last=per_rank % cfg.batch_size == 1 and per_rank > 1)

        # --- model, loss, optimiser, schedule
        model = build_train_model(cfg).to(device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        criterion = IQALoss(cfg.loss, cfg.alpha, cfg.margin, cfg.label_scale, (lo, hi))
        optimizer = build_optimizer(cfg, model)
        scheduler = build_scheduler(cfg, optimizer, len(batches))
        scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

        start_epoch, best_val, best_epoch = 0, -math.inf, None
        if resume and last_path.is_file():
            ckpt = read_checkpoint(last_path)
            _check_resumable(cfg, ckpt.get("config", {}), last_path)
            load_state_checked(model, ckpt["model"], f"checkpoint {last_path}")
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            if scaler is not None and ckpt.get("scaler"):
                scaler.load_state_dict(ckpt["scaler"])
            set_rng_state(ckpt["rng"])
            start_epoch = int(ckpt["epoch"])
            best_val = float(ckpt.get("best_val_srcc", -math.inf))
            best_epoch = ckpt.get("best_epoch")
            if ctx.main:
                runfolder.truncate_log(run_dir, start_epoch)
            log.info("resuming %s after epoch %d (best val SRCC %.4f)", run_dir, start_epoch,
                     best_val)

        train_model: nn.Module = model
        if ctx.active:
            train_model = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        if cfg.compile:
            train_model = torch.compile(train_model)

        if ctx.main:
            _log_header(cfg, table, split, model, criterion, device, amp_dtype, ctx)
        score = ScoreSettings(cfg.eval_crop_mode, cfg.eval_crops, crop, cfg.eval_batch_size,
                              str(device), amp_dtype, cfg.channels_last, cfg.label_scale,
                              (lo, hi))
        val_score = dataclasses.replace(score, n_crops=cfg.val_crops)
        val_names = list(split.val)
        val_mos = mos.loc[val_names].to_numpy() if val_names else None

        # --- epochs
        bar = _Progress(progress, cfg.epochs, len(batches), start_epoch)
        try:
            for epoch in range(start_epoch, cfg.epochs):
                batches.set_epoch(epoch)
                started = time.perf_counter()
                lrs = [g["lr"] for g in optimizer.param_groups]  # as trained this epoch
                stats = train_one_epoch(
                    train_model, criterion, optimizer, batches, device, epoch=epoch,
                    scheduler=scheduler, scaler=scaler, amp_dtype=amp_dtype,
                    channels_last=cfg.channels_last, ctx=ctx,
                    on_step=bar.step, last_good=_last_good(last_path, epoch))
                val = {}
                if ctx.main and len(val_names) >= 2:
                    val_pred = _predict_mos(model, cache, val_names, val_score, table)
                    val = compute_metrics(val_pred, val_mos)
                    model.train()
                row = {"epoch": epoch + 1, "train_loss": stats["loss"],
                       **{f"val_{k}": val.get(k, float("nan"))
                          for k in ("srcc", "plcc", "krcc", "rmse")},
                       "lr": lrs[0], "head_lr": lrs[1],
                       "seconds": time.perf_counter() - started,
                       "patches_per_s": stats["patches_per_s"]}
                row.update({f"train_{k}": v for k, v in stats.items() if k in ("l1", "rank")})
                if ctx.main:
                    val_srcc = val.get("srcc", float("nan"))
                    if len(val_names) >= 2 and not np.isfinite(val_srcc):
                        log.warning("validation SRCC is undefined (constant predictions?)")
                    improved = (best_epoch is None or len(val_names) < 2
                                or (np.isfinite(val_srcc) and val_srcc > best_val))
                    if improved:
                        best_val = val_srcc if np.isfinite(val_srcc) else best_val
                        best_epoch = epoch + 1
                    state = _checkpoint(cfg, model, optimizer, scheduler, scaler, epoch + 1,
                                        best_val, best_epoch, (lo, hi), round_)
                    if improved:
                        save_checkpoint(state, run_dir / "best.pt")
                    runfolder.append_log(run_dir, row)
                    save_checkpoint(state, last_path)
                    bar.epoch_done(val_srcc)
                    log.info("epoch %d/%d  loss %.4f  val SRCC %.4f PLCC %.4f  %.0f patches/s  "
                             "%.0f s%s", epoch + 1, cfg.epochs, stats["loss"], val_srcc,
                             val.get("plcc", float("nan")), stats["patches_per_s"],
                             row["seconds"], "  *best*" if improved else "")
                ctx.barrier()
        finally:
            bar.close()

        # --- test sets, scored once with the best epoch
        if not ctx.main:
            ctx.barrier()
            return RunResult(run_dir, pd.DataFrame(), epochs_run=cfg.epochs)
        best = read_checkpoint(run_dir / "best.pt")
        load_state_checked(model, best["model"], f"checkpoint {run_dir / 'best.pt'}")
        best_epoch = best.get("best_epoch", best_epoch)
        frames, rows = [], []
        tests = [(table, list(split.test), "test", cache)]
        for test in cfg.tests:
            other, _ = load_table(test.dataset, test.root, cfg)
            names = sorted(other.frame["name"].astype(str))
            other_cache = ImageCache.build(other, names=names, progress=progress, min_size=crop,
                                           cache_dir=cfg.cache_dir, **_threads(cfg.workers))
            tests.append((other, names, "all", other_cache))
        for test_table, names, subset, test_cache in tests:
            if len(names) < 2:
                log.warning("%s: %d %s image(s), not scored", test_table.name, len(names), subset)
                continue
            pred_frame, metrics = score_images(model, test_table, names, test_cache, score,
                                               subset=subset, logistic=5, n_boot=cfg.n_boot)
            frames.append(pred_frame)
            rows.append({"dataset": test_table.name, "round": round_, **metrics,
                         "checkpoint": "best.pt", "best_epoch": best_epoch})
            log.info("test %-10s n=%-5d SRCC %.4f  PLCC %.4f  (SRCC 95%% CI %.3f-%.3f)",
                     test_table.name, metrics["n"], metrics["srcc"], metrics["plcc"],
                     metrics["srcc_ci_low"], metrics["srcc_ci_high"])
        predictions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        predictions.to_csv(run_dir / "predictions.csv", index=False)
        test_metrics = runfolder.metric_frame(rows) if rows else pd.DataFrame()
        test_metrics.to_csv(run_dir / "test_metrics.csv", index=False)
        ctx.barrier()
        return RunResult(run_dir, test_metrics, best_epoch=best_epoch,
                         best_val_srcc=best_val if np.isfinite(best_val) else None,
                         epochs_run=cfg.epochs)
    finally:
        if handler is not None:
            logger = logging.getLogger("iqabench")
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            handler.close()
        restore_backends()


@contextlib.contextmanager
def backend_flags(device: torch.device):
    """:func:`set_backend_flags` for the duration of a ``with`` block."""
    restore = set_backend_flags(device)
    try:
        yield
    finally:
        restore()


def set_backend_flags(device: torch.device) -> Callable[[], None]:
    """Set torch's global switches for a run; returns the function that restores them.

    CPU: deterministic kernels (so a resumed run reproduces an uninterrupted one).
    CUDA: cuDNN autotuning and TF32 matmuls (speed; fixed crop shapes make autotuning pay).
    """
    saved = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    def restore() -> None:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = saved[2:]

    return restore


def train_one_epoch(model: nn.Module, criterion: IQALoss, optimizer: torch.optim.Optimizer,
                    batches, device: torch.device, *, epoch: int,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                    scaler: torch.amp.GradScaler | None = None,
                    amp_dtype: torch.dtype | None = None, channels_last: bool = True,
                    ctx: DistContext = DistContext(),
                    on_step: Callable[[float, int], None] | None = None,
                    last_good: str = "") -> dict[str, float]:
    """One pass over ``batches``; returns mean ``loss`` (and its parts), ``patches``,
    ``patches_per_s``. A non-finite loss stops training with a one-line error."""
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
        values = torch.stack([loss.detach(), *(p.detach() for p in parts.values())])
        if ctx.active:  # every rank sees the same mean (and the same stop decision)
            dist.all_reduce(values)
            values /= ctx.world_size
        values = values.tolist()
        if not math.isfinite(values[0]):
            raise IqabenchError(
                f"training loss is {values[0]} at epoch {epoch + 1}, step {step + 1}: stopped. "
                f"{last_good} Try a lower --lr, --amp none, or check the labels.")
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
        patches += crops.shape[0] * ctx.world_size
        if on_step is not None:
            on_step(values[0], crops.shape[0] * ctx.world_size)
    seconds = time.perf_counter() - started
    out = {k: v / max(steps, 1) for k, v in sums.items()}
    out.update(patches=patches, patches_per_s=patches / max(seconds, 1e-9))
    return out


def prefetch(batches, depth: int = 3, pin: bool = False):
    """Cut the next batches in a background thread while the GPU works on this one
    (crop copies release the GIL); order, and so the run, is unchanged."""
    import queue
    import threading

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

def build_train_model(cfg: TrainConfig) -> HyperIQA:
    """Hyper-IQA as configured, backbone weights from ``weights`` or the hub."""
    if cfg.weights:
        return HyperIQA(cfg.model, pretrained=False, weights=cfg.weights)
    return HyperIQA(cfg.model, pretrained=cfg.pretrained)


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
    from iqabench.data import load_dataset

    table = load_dataset(name, root)
    skipped = None
    if cfg.skip_bad:
        from iqabench.data.check import check_dataset, skip_bad

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
    from iqabench.data.splits import check_split, make_splits, official_split, read_split

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
                elif p.is_dir() and p.name.startswith("round_"):
                    shutil.rmtree(p)
        run_dir.mkdir(parents=True, exist_ok=True)
    ctx.barrier()


def _check_resumable(cfg: TrainConfig, saved: dict, path: Path) -> None:
    """Refuse to resume a checkpoint under a different recipe or architecture."""
    now = cfg.to_dict()
    diffs = []
    for key, value in saved.items():
        if key in RESUMABLE or key == "round":
            continue
        if key == "model":
            for mk, mv in value.items():
                cur = now["model"].get(mk)
                if _norm(cur) != _norm(mv):
                    diffs.append(f"model.{mk}: run {mv!r}, now {cur!r}")
        elif _norm(now.get(key)) != _norm(value):
            diffs.append(f"{key}: run {value!r}, now {now.get(key)!r}")
    if diffs:
        raise IqabenchError(f"cannot resume {path} with changed settings: " + "; ".join(diffs))


def _norm(value):
    return json.dumps(value, sort_keys=True, default=list)


def _checkpoint(cfg, model, optimizer, scheduler, scaler, epoch, best_val, best_epoch,
                label_range, round_) -> dict:
    return {
        "model": model.state_dict(),
        "model_config": model.config.to_dict(),
        "config": cfg.to_dict(),
        "epoch": epoch,
        "round": round_,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "best_val_srcc": best_val,
        "best_epoch": best_epoch,
        "label_range": [float(label_range[0]), float(label_range[1])],
        "label_scale": cfg.label_scale,
    }


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


def _log_header(cfg, table, split, model, criterion, device, amp_dtype, ctx) -> None:
    counts = split.counts()
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    log.info("dataset %s: %d images (train %d, val %d, test %d; %s split, round %d)",
             table.name, len(table), counts["train"], counts["val"], counts["test"], split.kind,
             split.round)
    log.info("model: Hyper-IQA over %s (%s hyper input, init %s), %.2f M params",
             cfg.model.backbone, cfg.model.hyper_input, cfg.model.init, params_m)
    log.info("%s; MOS range %s", criterion.describe(), list(table.mos_range))
    log.info("%s lr %.2g (heads x%g), wd %.2g, %s schedule, %d epochs x %d crops/image, "
             "batch %d%s, device %s, amp %s", cfg.optimizer, cfg.lr, cfg.head_lr_ratio,
             cfg.weight_decay, cfg.schedule, cfg.epochs, cfg.crops_per_image, cfg.batch_size,
             f" x {ctx.world_size} processes" if ctx.active else "", device,
             str(amp_dtype).replace("torch.", "") if amp_dtype else "none")


def _predict_mos(model, cache, names, settings: ScoreSettings, table) -> np.ndarray:
    from iqabench.evaluation import label_to_unit, predict, unit_to_mos

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
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from rich.console import Console

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


__all__ = ["RunResult", "build_optimizer", "build_scheduler", "build_train_model",
           "fit", "fit_round", "load_table", "resolve_split", "train_one_epoch"]
