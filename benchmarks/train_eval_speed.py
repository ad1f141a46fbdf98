"""Training and 25-crop evaluation throughput: iqabench vs the original Hyper-IQA code path.

Both sides run the same Hyper-IQA module (identical architecture and FLOPs, the reference
starts from a copy of iqabench's initial weights) on the same images, in the same process,
on the same machine, with the same number of patches and the same batch size.

- reference: the original code path of :mod:`benchmarks.original_hyperiqa` (per-sample
  PIL decoding, NCHW fp32, L1 on raw MOS with Adam; test at batch 1, a forward and
  ``.item()`` per crop), ``num_workers=0`` as in the original (``--ref-workers``).
- iqabench: ``ImageCache`` (each image decoded once, timed apart), ``TrainBatches``
  (uint8 crops cut from memory) and ``training.train_one_epoch`` with the
  ``--recipe original`` optimiser, scheduler and loss, channels_last, uint8 in and
  normalised inside the model; evaluation with ``evaluation.predict``: a deterministic
  5x5 crop grid, crops batched across images, ``torch.inference_mode``. AMP bf16 on CUDA
  (``--amp auto``), fp32 on CPU; with ``--compile-eval`` the model first goes through
  ``runtime.compile_for_inference`` (as ``iqabench eval --compile``), its one-off compile
  time reported apart like decoding.

Training throughput is patches over whole epochs' wall time (loader included); the
epochs of the two sides alternate (ABBA) so both see the same machine load.
Evaluation throughput is images per second over a whole 25-crop pass. Every pass is
timed by :func:`iqabench.profiling.timed` (device synchronised before and after).

Run from the repository root (defaults: 32 training images = 800 patches per epoch per
side, 16 evaluation images = 400 crops per side, both models, CPU):
    python -m benchmarks.train_eval_speed
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # started as `python benchmarks/train_eval_speed.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from benchmarks import readme  # noqa: E402
from benchmarks.original_hyperiqa import (original_loader, original_model,  # noqa: E402
                                          original_optimizer, original_test,
                                          original_train_epoch)
from iqabench.config import TrainConfig, resolve_train_config  # noqa: E402
from iqabench.data import load_dataset  # noqa: E402
from iqabench.data.cache import ImageCache  # noqa: E402
from iqabench.data.loader import TrainBatches  # noqa: E402
from iqabench.data.table import DatasetTable  # noqa: E402
from iqabench.errors import IqabenchError  # noqa: E402
from iqabench.evaluation import predict  # noqa: E402
from iqabench.losses import IQALoss  # noqa: E402
from iqabench.models.hyperiqa import HyperIQA  # noqa: E402
from iqabench.profiling import Timing, synchronize, timed  # noqa: E402
from iqabench.runtime import (backend_flags, compile_for_inference, resolve_amp,  # noqa: E402
                              resolve_device)
from iqabench.training import (build_optimizer, build_scheduler, build_train_model,  # noqa: E402
                               train_one_epoch)

DEFAULT_MODELS = ("resnet50", "tf_efficientnet_lite0")
SIDES = ("reference", "iqabench")
COLUMNS = ("model", "phase", "side", "device", "dtype", "memory_format", "batch_size", "images",
           "crops_per_image", "patches", "passes", "seconds", "loader_wait_s", "decode_s",
           "decode_in_rate", "compile_s", "per_s", "unit", "patches_per_s", "per_s_with_setup",
           "ratio", "ratio_with_setup", "peak_mem_mb", "how")


# ------------------------------------------------------------------------ timing

class Waited:
    """Wraps a loader and adds up how long its consumer waits for each next batch
    (iterator start-up, e.g. DataLoader workers, included)."""

    def __init__(self, loader: Iterable):
        self.loader = loader
        self.wait_s = 0.0

    def __iter__(self):
        started = time.perf_counter()
        it = iter(self.loader)
        while True:
            try:
                item = next(it)
            except StopIteration:
                self.wait_s += time.perf_counter() - started
                return
            self.wait_s += time.perf_counter() - started
            yield item
            started = time.perf_counter()


def pass_timer(device: torch.device):
    """:func:`iqabench.profiling.timed` for one pass; peak memory on CUDA only (on CPU the
    process RSS would mix in the other side's decoded images)."""
    return timed(device, peak_memory=device.type == "cuda")


def warm_up(model: HyperIQA, sizes: Sequence[int], crop: int, device: torch.device, *, train: bool,
            uint8: bool, channels_last: bool, amp_dtype) -> None:
    """Untimed passes at each batch size (allocator, oneDNN/cuDNN set-up); no optimiser step."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for b in sizes:
        x = (torch.randint(0, 256, (b, 3, crop, crop), dtype=torch.uint8) if uint8
             else torch.randn(b, 3, crop, crop)).to(device).contiguous(memory_format=fmt)
        model.train(train)
        ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        if train:
            with ctx:
                out = model(x)
            out.float().sum().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode(), ctx:
                model(x)
    synchronize(device)


def batch_sizes(count: int, batch: int, drop_last: bool, device: torch.device) -> list[int]:
    """Shapes to warm up: every batch shape of the pass on CUDA (cuDNN autotunes per
    shape); on CPU one small batch suffices (no autotuning) and keeps the run short."""
    if device.type != "cuda":
        return [min(2, batch)]
    sizes = {min(batch, count)}
    if count % batch and not (drop_last and count % batch == 1):
        sizes.add(count % batch)
    return sorted(sizes)


@dataclass
class Timings:
    """Timed passes of one side in one phase."""

    seconds: list[float] = field(default_factory=list)
    wait_s: list[float] = field(default_factory=list)  # NaN where not measured
    peak_mb: float = float("nan")  # CUDA only

    def add(self, timing: Timing, wait_s: float) -> None:
        self.seconds.append(timing.seconds)
        self.wait_s.append(wait_s)
        if timing.peak_mb is not None:
            self.peak_mb = float(np.nanmax([self.peak_mb, timing.peak_mb]))


@dataclass
class Phase:
    """One phase (train or eval) of one model: what was counted and both sides' timings."""

    name: str  # "train" or "eval"
    per_pass: int  # patches (train) or images (eval) per pass
    unit: str
    images: int
    patches: int  # per pass
    decode_s: float  # iqabench's one-time decode (the reference decodes inside its loader)
    batch: dict[str, int]
    how: dict[str, str]
    compile_s: float = 0.0  # iqabench's one-time compile (--compile-eval), timed apart
    timings: dict[str, Timings] = field(default_factory=lambda: {s: Timings() for s in SIDES})

    def rate(self, side: str) -> float:
        t = self.timings[side]
        return self.per_pass * len(t.seconds) / sum(t.seconds)


# ------------------------------------------------------------------- one model

def speed_config(backbone: str, args) -> TrainConfig:
    """``--recipe original`` with this benchmark's model, sizes and device."""
    return resolve_train_config(overrides={
        "recipe": "original", "dataset": args.dataset, "root": str(args.root) if args.root else None,
        "pretrained": False, "batch_size": args.batch_size, "crops_per_image": args.crops,
        "eval_crops": args.crops, "eval_batch_size": args.eval_batch_size,
        "device": args.device, "amp": args.amp, "seed": args.seed,
        "model": {"backbone": backbone, "input_size": args.input_size},
    })


def bench_model(backbone: str, table: DatasetTable, train_names: list[str], eval_names: list[str],
                args) -> tuple[TrainConfig, torch.device, list[Phase]]:
    """Train ``args.train_epochs`` epochs on each side, then ``args.eval_passes`` evaluation
    passes on each side, the sides alternating."""
    cfg = speed_config(backbone, args)
    device = resolve_device(cfg.device)
    amp_dtype = resolve_amp(cfg.amp, device)
    crop, k = cfg.model.input_size, cfg.crops_per_image
    frame = table.frame.set_index(table.frame["name"].astype(str))
    train_paths = frame.loc[train_names, "path"].astype(str).tolist()
    train_mos = frame.loc[train_names, "mos"].to_numpy(np.float32)  # raw MOS, as the original
    eval_paths = frame.loc[eval_names, "path"].astype(str).tolist()
    eval_mos = frame.loc[eval_names, "mos"].to_numpy(np.float32)
    patches = len(train_names) * k
    drop_last = patches % cfg.batch_size == 1 and patches > 1  # as training: no batch of one
    trained = patches - (1 if drop_last else 0)

    torch.manual_seed(cfg.seed)
    model = build_train_model(cfg).to(device)
    reference = original_model(model, device)
    model.to(memory_format=torch.channels_last)
    mean, std = model.spec.mean, model.spec.std

    # --- training: iqabench decodes once (timed apart), then cuts crops from memory
    with timed(device) as decode:
        train_cache = ImageCache.build(table, names=train_names, min_size=crop)
    batches = TrainBatches(train_cache, train_names, train_mos, k, cfg.batch_size, crop_size=crop,
                           seed=cfg.seed, flip=cfg.flip, drop_last=drop_last)
    criterion = IQALoss(cfg.loss, cfg.alpha, cfg.margin, cfg.label_scale, table.mos_range)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer, len(batches))
    ref_loader = original_loader(train_paths, train_mos, k, crop, True, cfg.batch_size,
                                 args.ref_workers, mean, std, drop_last)
    ref_optimizer = original_optimizer(reference, cfg.lr, cfg.head_lr_ratio, cfg.weight_decay)
    print(f"[{backbone}] {len(train_names)} training images, {patches} patches per epoch, batch "
          f"{cfg.batch_size}; iqabench decode {decode.seconds:.2f} s", flush=True)
    sizes = batch_sizes(patches, cfg.batch_size, drop_last, device)
    warm_up(reference, sizes, crop, device, train=True, uint8=False, channels_last=False, amp_dtype=None)
    with backend_flags(device):  # the switches a training run sets; the reference runs without
        warm_up(model, sizes, crop, device, train=True, uint8=True, channels_last=True,
                amp_dtype=amp_dtype)

    train = Phase("train", trained, "patches/s", len(train_names), trained, decode.seconds,
                  batch={"reference": cfg.batch_size, "iqabench": cfg.batch_size},
                  how={"reference": f"original: PIL decode + flip + RandomCrop + ToTensor + Normalize per "
                                    f"patch, DataLoader(shuffle, workers {args.ref_workers}), NCHW fp32, "
                                    "train mode, L1 on raw MOS, Adam",
                       "iqabench": "ImageCache + TrainBatches + training.train_one_epoch (recipe original), "
                                   "channels_last, uint8 in"})

    def ref_epoch(epoch: int) -> None:
        loader = Waited(ref_loader)
        with pass_timer(device) as timing:
            n = original_train_epoch(reference, ref_optimizer, loader, device)
        train.timings["reference"].add(timing, loader.wait_s)
        check_count(n, trained, "reference")
        report(backbone, train, "reference", epoch)

    def iqa_epoch(epoch: int) -> None:
        batches.set_epoch(epoch)
        loader = Waited(batches)
        with backend_flags(device), pass_timer(device) as timing:
            stats = train_one_epoch(model, criterion, optimizer, loader, device, epoch=epoch,
                                    scheduler=scheduler, amp_dtype=amp_dtype, channels_last=True)
        train.timings["iqabench"].add(timing, loader.wait_s)
        check_count(stats["patches"], trained, "iqabench")
        report(backbone, train, "iqabench", epoch)

    alternate(args.train_epochs, ref_epoch, iqa_epoch)

    # --- evaluation: k crops per image
    with timed(device) as decode:
        eval_cache = ImageCache.build(table, names=eval_names, min_size=crop)
    ref_test = original_loader(eval_paths, eval_mos, k, crop, False, 1, args.ref_workers, mean, std)
    warm_up(reference, [1], crop, device, train=False, uint8=False, channels_last=False, amp_dtype=None)
    compile_s = 0.0
    with backend_flags(device):
        if args.compile_eval:  # compiled once for the full batch; predict pads the last one
            with timed(device) as compiling:
                model = compile_for_inference(model)
                # through predict itself: its inference-mode uint8 batches are what the graph
                # is specialised on (a tensor made outside inference mode would compile another)
                predict(model, eval_cache, eval_names[:1], cfg.eval_crop_mode, k, crop,
                        cfg.eval_batch_size, device=device, amp_dtype=amp_dtype, channels_last=True)
            compile_s = compiling.seconds
            print(f"[{backbone}] eval iqabench compiled in {compile_s:.1f} s", flush=True)
        else:
            warm_up(model, batch_sizes(len(eval_names) * k, cfg.eval_batch_size, False, device),
                    crop, device, train=False, uint8=True, channels_last=True, amp_dtype=amp_dtype)
    grad = "autograd on, as the original test()" if args.ref_eval_autograd else "torch.no_grad"
    evaluation = Phase("eval", len(eval_names), "images/s", len(eval_names), len(eval_names) * k,
                       decode.seconds, batch={"reference": 1, "iqabench": cfg.eval_batch_size},
                       compile_s=compile_s,
                       how={"reference": f"original: PIL decode + RandomCrop + ToTensor + Normalize per crop, "
                                         f"DataLoader(batch 1, workers {args.ref_workers}), NCHW fp32, "
                                         f"random crops, a forward and .item() per crop, {grad}",
                            "iqabench": f"ImageCache + evaluation.predict ({cfg.eval_crop_mode} of {k}, "
                                        "crops batched across images), inference_mode, channels_last, uint8 in"
                                        + (", compile_for_inference (TorchInductor, frozen weights)"
                                           if args.compile_eval else "")})

    def ref_pass(i: int) -> None:
        loader = Waited(ref_test)
        with pass_timer(device) as timing:
            scores = original_test(reference, loader, device, k, args.ref_eval_autograd)
        evaluation.timings["reference"].add(timing, loader.wait_s)
        check_scores(scores, len(eval_names), "reference")
        report(backbone, evaluation, "reference", i)

    def iqa_pass(i: int) -> None:
        with backend_flags(device), pass_timer(device) as timing:
            scores = predict(model, eval_cache, eval_names, cfg.eval_crop_mode, k, crop,
                             cfg.eval_batch_size, device=device, amp_dtype=amp_dtype,
                             channels_last=True)
        evaluation.timings["iqabench"].add(timing, float("nan"))
        check_scores(scores, len(eval_names), "iqabench")
        report(backbone, evaluation, "iqabench", i)

    alternate(args.eval_passes, ref_pass, iqa_pass)
    return cfg, device, [train, evaluation]


def alternate(n: int, reference: Callable[[int], None], ours: Callable[[int], None]) -> None:
    """Run n passes of each side, ABBA (reference first on even passes)."""
    for i in range(n):
        for run in ((reference, ours) if i % 2 == 0 else (ours, reference)):
            run(i)


def check_count(n: int, expected: int, side: str) -> None:
    if n != expected:
        raise RuntimeError(f"{side} trained on {n} patches, expected {expected}")


def check_scores(scores: np.ndarray, n: int, side: str) -> None:
    if len(scores) != n or not np.all(np.isfinite(scores)):
        raise RuntimeError(f"{side} evaluation gave {len(scores)} scores for {n} images (or non-finite)")


def report(model: str, phase: Phase, side: str, i: int) -> None:
    t = phase.timings[side]
    noun = phase.unit.split("/")[0]
    wait = f"{t.wait_s[-1]:.2f} s" if math.isfinite(t.wait_s[-1]) else "not measured"
    print(f"[{model}] {phase.name} {side} pass {i}: {phase.per_pass} {noun} in {t.seconds[-1]:.2f} s "
          f"({phase.per_pass / t.seconds[-1]:.2f} {phase.unit}; loader wait {wait})", flush=True)


# ------------------------------------------------------------------------ tables

def rows_for(backbone: str, cfg: TrainConfig, device: torch.device, phases: list[Phase]) -> list[dict]:
    """CSV rows: per phase, the reference then iqabench."""
    amp = resolve_amp(cfg.amp, device)
    ours_dtype = f"{str(amp).replace('torch.', '')} autocast (heads fp32)" if amp else "fp32"
    rows = []
    for phase in phases:
        base = phase.rate("reference")
        for side in SIDES:
            t = phase.timings[side]
            seconds = float(sum(t.seconds))
            rate = phase.rate(side)
            if side == "reference":
                decode, compiled, with_setup = float("nan"), float("nan"), rate
                decode_in = "yes: every patch/crop, inside seconds (loader_wait_s)"
            else:
                decode, compiled = phase.decode_s, phase.compile_s
                with_setup = phase.per_pass * len(t.seconds) / (seconds + decode + compiled)
                decode_in = "no: one-time decode_s; per_s_with_setup includes it"
            waits = [w for w in t.wait_s if math.isfinite(w)]
            rows.append({
                "model": backbone, "phase": phase.name, "side": side, "device": str(device),
                "dtype": "fp32" if side == "reference" else ours_dtype,
                "memory_format": "NCHW" if side == "reference" else "channels_last",
                "batch_size": phase.batch[side], "images": phase.images,
                "crops_per_image": cfg.crops_per_image, "patches": phase.patches,
                "passes": len(t.seconds), "seconds": round(seconds, 3),
                "loader_wait_s": _r(sum(waits)) if waits else "", "decode_s": _r(decode),
                "decode_in_rate": decode_in, "compile_s": _r(compiled), "per_s": _r(rate),
                "unit": phase.unit,
                "patches_per_s": _r(rate * phase.patches / phase.per_pass),
                "per_s_with_setup": _r(with_setup), "ratio": _r(rate / base),
                "ratio_with_setup": _r(with_setup / base), "peak_mem_mb": _r(t.peak_mb, 0),
                "how": phase.how[side],
            })
    return rows


def _r(value: float, digits: int = 3):
    return "" if value is None or not math.isfinite(value) else round(float(value), digits)


README = """\
# Training and ${crops}-crop evaluation throughput: iqabench vs the original Hyper-IQA code

$intro

$summary

${busy}Targets: evaluation >= 3x and training >= 2x the reference. Measured here:
$targets

## Details

$details

## Accounting

$accounting

## Run

$run
"""


def summary_table(rows: pd.DataFrame) -> str:
    """Per model and phase: both sides' rates and iqabench's ratios."""
    ours = rows[rows["side"] == "iqabench"].set_index(["model", "phase"])
    ref = rows[rows["side"] == "reference"].set_index(["model", "phase"])["per_s"]
    table = pd.DataFrame({
        "model": ours.index.get_level_values("model"),
        "phase": [f"{p} ({u})" for p, u in zip(ours.index.get_level_values("phase"), ours["unit"])],
        "reference": ref.loc[ours.index].to_numpy(),
        "iqabench": ours["per_s"].to_numpy(),
        "x reference": ours["ratio"].to_numpy(),
        "iqabench incl. one-off costs": ours["per_s_with_setup"].to_numpy(),
        "x incl. one-off costs": ours["ratio_with_setup"].to_numpy(),
    })
    return table.to_markdown(index=False)


def details_table(rows: pd.DataFrame) -> str:
    table = rows[["model", "phase", "side", "passes", "seconds", "loader_wait_s", "decode_s",
                  "compile_s", "per_s", "patches_per_s"]].copy()
    table["dtype"] = rows["dtype"] + " " + rows["memory_format"]
    table["batch"] = rows["batch_size"]
    table.columns = ["model", "phase", "side", "passes", "seconds", "loader wait s", "decode s",
                     "compile s", "per s", "patches/s", "dtype", "batch"]
    return table.to_markdown(index=False)


def accounting(args, device: torch.device) -> list[str]:
    """How each number was obtained, for this run's settings."""
    grid = math.isqrt(args.crops)
    return [
        "Training rate: patches over the wall time of whole epochs, data loading included (the "
        "loop waits for each batch: `loader wait s`, part of `seconds`). Both sides train on the same "
        "number of patches with the same batch size; their epochs alternate (reference, iqabench, "
        "iqabench, reference, ...) so both see the same machine load. Each side first ran untimed "
        "warm-up passes without an optimiser step"
        + (" at every batch shape (cuDNN autotuning)." if device.type == "cuda"
           else " on a batch of 2 (allocator and oneDNN set-up)."),
        f"Decoding: the reference decodes the JPEG for every patch and every test crop ({args.crops} "
        "times per image per epoch or pass), inside its loader time. iqabench decodes each image once "
        "(`decode s`, not in `seconds`); `incl. one-off costs` adds it, and the compile time "
        "(`compile s`, with `--compile-eval`: TorchInductor with frozen weights, compiled once before "
        "the timed passes), to the measured passes once.",
        f"Evaluation rate: images over the wall time of whole passes of {args.crops} crops per image. "
        "The reference runs the original test loop (batch 1, random crops, a forward and `.item()` per "
        "crop, "
        + ("autograd on, exactly as the original `test()`" if args.ref_eval_autograd else
           "under `torch.no_grad`; the original `test()` has no `no_grad` and builds a graph it never "
           "uses, so this reference is if anything faster than the original")
        + f"); iqabench runs `evaluation.predict` on a deterministic {grid}x{grid} grid, "
        f"{args.eval_batch_size} crops per forward pass.",
        f"The reference uses `num_workers={args.ref_workers}` "
        + ("(the original's setting)." if args.ref_workers == 0 else "(the original used 0).")
        + " iqabench's TrainBatches cuts crops in 2 background threads; on CUDA train_one_epoch "
        "also prefetches in a thread, so its loader wait is time spent in that thread, overlapped.",
        "The reference's Adam updates heads and backbone every epoch (the original's first epoch; "
        "its later epochs dropped the heads through a spent iterator, a negligible saving). "
        "It normalises in the loader (ToTensor + Normalize with the backbone's mean/std), so the "
        "model's in-graph normalisation is set to identity; iqabench feeds uint8 and normalises in "
        "the model.",
        "Timing: `iqabench.profiling.timed` around each whole pass (the device synchronised before "
        "and after); `peak_mem_mb` in speed.csv is CUDA memory above the pass's start, empty on CPU.",
        "Weights are random (`pretrained=False`): speed does not depend on them.",
        "Machine load matters: with other jobs running, torch's intra-op threads are oversubscribed "
        "and every small operation waits for a time slice, which hurts the reference's one-crop "
        "forward passes far more than iqabench's batches. The load averages below should be well "
        "under the core count.",
    ]


def write_readme(path: Path, rows: list[dict], meta: dict, args) -> Path:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    ours = frame[frame["side"] == "iqabench"].set_index(["model", "phase"])["ratio"]
    targets = [f"{m}: training {ours[(m, 'train')]}x ({'met' if ours[(m, 'train')] >= 2 else 'not met'}), "
               f"evaluation {ours[(m, 'eval')]}x ({'met' if ours[(m, 'eval')] >= 3 else 'not met'})."
               for m in dict.fromkeys(frame["model"])]
    # The benchmark itself keeps about `threads` cores busy; load beyond that is other jobs.
    busiest, cores = max(meta["loads"]), readme.cores()
    others = busiest - torch.get_num_threads()
    busy = "" if others <= 0.5 * cores else (
        f"**The machine was busy (1-minute load average up to {busiest:.1f} on {cores} cores, "
        f"about {others:.1f} above this benchmark's own threads): other jobs oversubscribe "
        "torch's threads, which slows the reference's batch-1 passes far more than batched "
        "ones. Do not trust these ratios; rerun on a quiet machine.**\n\n")
    intro = (f"Same Hyper-IQA module (same architecture, FLOPs and initial weights) on both sides, "
             f"{meta['train_images']} {meta['dataset']} images for training ({meta['patches']} patches "
             f"per epoch per side, batch {args.batch_size}), {meta['eval_images']} for evaluation "
             f"({args.crops} crops each), {args.input_size} px crops, device `{meta['device']}`.")
    return readme.write(
        path, README, crops=args.crops, intro=intro, summary=summary_table(frame), busy=busy, targets=readme.bullets(targets),
        details=details_table(frame), accounting=readme.bullets(accounting(args, meta["device"])),
        run=readme.bullets(meta["run"]))


# -------------------------------------------------------------------------- main

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="agiqa3k", help="a dataset name of iqabench.data")
    parser.add_argument("--root", type=Path, default=None,
                        help="dataset folder (default for agiqa3k: ../shared/data/agiqa3k)")
    parser.add_argument("--images", type=int, default=32, help="training images (seeded random subset)")
    parser.add_argument("--eval-images", type=int, default=None,
                        help="evaluation images, taken from the training subset (default: half of --images)")
    parser.add_argument("--train-epochs", type=int, default=1, help="timed training epochs per side")
    parser.add_argument("--eval-passes", type=int, default=1, help="timed evaluation passes per side")
    parser.add_argument("--batch-size", type=int, default=96, help="training batch, both sides")
    parser.add_argument("--eval-batch-size", type=int, default=32,
                        help="iqabench crops per forward pass (the reference: 1)")
    parser.add_argument("--crops", type=int, default=25,
                        help="patches per image per epoch and test crops per image (a square)")
    parser.add_argument("--input-size", type=int, default=224, help="crop (model input) side in pixels")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="timm backbones")
    parser.add_argument("--device", default="cpu", help="auto, cpu or cuda")
    parser.add_argument("--amp", default="auto", choices=["auto", "none", "bf16", "fp16"],
                        help="iqabench side only (auto: bf16 on CUDA, none on CPU)")
    parser.add_argument("--compile-eval", action="store_true",
                        help="iqabench evaluation through compile_for_inference (iqabench eval --compile)")
    parser.add_argument("--ref-workers", type=int, default=0,
                        help="DataLoader workers of the reference (original: 0)")
    parser.add_argument("--ref-eval-autograd", action="store_true",
                        help="reference test loop without torch.no_grad, as the original test()")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads, both sides (default: torch's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="default: results/speed/<device>")
    parser.add_argument("--force", action="store_true", help="replace an existing speed.csv")
    args = parser.parse_args(argv)
    if args.root is None and args.dataset == "agiqa3k":
        args.root = readme.REPO.parent / "shared" / "data" / "agiqa3k"
    if args.eval_images is None:
        args.eval_images = max(1, args.images // 2)
    for flag, value, low in (("--images", args.images, 1), ("--eval-images", args.eval_images, 1),
                             ("--train-epochs", args.train_epochs, 1), ("--eval-passes", args.eval_passes, 1),
                             ("--batch-size", args.batch_size, 2), ("--eval-batch-size", args.eval_batch_size, 1),
                             ("--crops", args.crops, 1), ("--input-size", args.input_size, 16),
                             ("--ref-workers", args.ref_workers, 0), ("--threads", args.threads or 1, 1)):
        if value < low:
            raise IqabenchError(f"{flag} {value}: must be at least {low}")
    if math.isqrt(args.crops) ** 2 != args.crops:
        raise IqabenchError(f"--crops {args.crops}: iqabench's test grid needs a square number (4, 9, 25, ...)")
    if args.images * args.crops < 2:
        raise IqabenchError("--images x --crops must be at least 2 (a training batch of one breaks BatchNorm)")
    return args


def choose_images(table: DatasetTable, args) -> tuple[list[str], list[str]]:
    names = sorted(table.frame["name"].astype(str))
    if args.images > len(names):
        raise IqabenchError(f"--images {args.images}: {table.name} has only {len(names)} images")
    if args.eval_images > args.images:
        raise IqabenchError(f"--eval-images {args.eval_images} exceeds --images {args.images}")
    chosen = np.random.default_rng(args.seed).choice(names, size=args.images, replace=False).tolist()
    return chosen, chosen[:args.eval_images]


def main(argv: Sequence[str] | None = None) -> Path:
    """Run the benchmark; returns the output folder (speed.csv, README.md)."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return run(args, argv)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace, argv: Sequence[str] | None) -> Path:
    device = resolve_device(args.device)
    out = args.out or readme.REPO / "results" / "speed" / device.type
    if (out / "speed.csv").exists() and not args.force:
        raise IqabenchError(f"{out / 'speed.csv'} exists: pass --force to replace it")
    table = load_dataset(args.dataset, args.root)
    train_names, eval_names = choose_images(table, args)
    loads = [os.getloadavg()[0]]
    print(f"{args.dataset}: {len(train_names)} training and {len(eval_names)} evaluation images; "
          f"load average {loads[0]:.2f}, torch threads {torch.get_num_threads()}", flush=True)

    rows, patches = [], 0
    for backbone in args.models:
        cfg, device, phases = bench_model(backbone, table, train_names, eval_names, args)
        rows += rows_for(backbone, cfg, device, phases)
        patches = phases[0].patches
        loads.append(os.getloadavg()[0])

    load = "1-min load average " + ", ".join(
        f"{v:.2f} {'before' if i == 0 else 'after ' + args.models[i - 1]}" for i, v in enumerate(loads))
    meta = {"dataset": table.name, "device": device, "train_images": len(train_names),
            "eval_images": len(eval_names), "patches": patches, "loads": loads,
            "run": readme.run_facts(readme.command("train_eval_speed", argv), device, load=load)}
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(out / "speed.csv", index=False)
    print(write_readme(out / "README.md", rows, meta, args).read_text(), flush=True)
    return out


if __name__ == "__main__":
    try:
        main()
    except IqabenchError as err:
        sys.exit(f"error: {err}")
