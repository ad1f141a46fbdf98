"""Scoring a trained model: per-image predictions (:func:`predict`), label units, the
score settings a run tests with, and ``iqabench eval`` (:func:`evaluate_checkpoint`).
Devices, AMP and compilation are in :mod:`iqabench.runtime`, checkpoint files in
:mod:`iqabench.checkpoint`.

Training's test evaluation and ``iqabench eval`` run the same function
(:func:`score_images`) with the same crops, batching and label conversion, so the eval
command reproduces a run's test numbers from its ``best.pt`` and ``split.csv``.

Predictions are on the checkpoint's label scale, the MOS scale of the data it was
trained on. They are never mapped onto another dataset's MOS range: scoring a dataset
on another scale (:func:`common_scale`) reports the scale-free SRCC/PLCC/KRCC and leaves
RMSE out (NaN), with a note saying so.

Test-time crops are batched *across* images (a batch of 32 crops may hold the last
crops of one image and the first of the next), cut from decoded uint8 pixels held in
memory, moved to the device as uint8 and normalised there, and run under
``torch.inference_mode`` (AMP on CUDA). Scores of an image's crops are averaged.

``iqabench eval --compile`` runs the model through
:func:`iqabench.runtime.compile_for_inference` (TorchInductor with frozen weights:
BatchNorm folded into convolutions, weights pre-packed for oneDNN), the largest single
speed-up on CPU; the last batch is padded to full size so one compiled graph serves the
whole pass.
"""

from __future__ import annotations

import csv
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from iqabench import runfolder
from iqabench.checkpoint import load_checkpoint, scoring_info
from iqabench.config import EvalConfig
from iqabench.data import load_dataset
from iqabench.data.cache import ImageCache
from iqabench.data.splits import check_split, read_split
from iqabench.data.transforms import eval_crops
from iqabench.errors import IqabenchError
from iqabench.metrics import bootstrap_ci, compute_metrics
from iqabench.models.hyperiqa import flatten_target_params
from iqabench.runtime import (
    autocast,
    compile_for_inference,
    is_compiled,
    resolve_amp,
    resolve_device,
)
from iqabench.tracking import environment

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------- prediction

def _crop_seed(name: str, seed: int) -> int:
    """Random test crops depend on the image, not on its position in a list."""
    return (zlib.crc32(name.encode()) + 1_000_003 * seed) % (2**31)


def crops_per_image(crop_mode: str, n_crops: int) -> int:
    return 1 if crop_mode in ("center", "full") else n_crops


def predict(model: torch.nn.Module, cache, names: Sequence[str], crop_mode: str = "grid",
            n_crops: int = 25, crop_size: int = 224, batch_size: int = 64,
            return_params: bool = False, device: str | torch.device = "cpu",
            amp_dtype: torch.dtype | None = None, channels_last: bool = True, seed: int = 0):
    """Mean score over each image's test crops: (N,) in the model's label units
    ([0, 1] for label_scale "unit"); with ``return_params`` also (N, D), the mean
    flattened generated target-network weights per image (for the PCA plot).

    Crops of consecutive images share batches of ``batch_size`` crops; ``full`` runs
    one whole image per forward pass (sizes differ). A compiled model
    (:func:`iqabench.runtime.compile_for_inference`) gets its last batch padded to
    ``batch_size`` by repeating its last crop, and the padding's scores are dropped.
    """
    out = predict_crops(model, cache, names, crop_mode, n_crops, crop_size, batch_size,
                        return_params, device, amp_dtype, channels_last, seed)
    if return_params:
        crops, params = out
        return crops.mean(1), params
    return out.mean(1)


@torch.inference_mode()
def predict_crops(model: torch.nn.Module, cache, names: Sequence[str], crop_mode: str = "grid",
                  n_crops: int = 25, crop_size: int = 224, batch_size: int = 64,
                  return_params: bool = False, device: str | torch.device = "cpu",
                  amp_dtype: torch.dtype | None = None, channels_last: bool = True,
                  seed: int = 0):
    """The score of every test crop, (N, k) float64 (k crops per image, in order);
    :func:`predict` is its mean over crops. ``cache`` maps each name to a (3, H, W)
    uint8 tensor. Arguments as :func:`predict`.

    On CUDA each whole uint8 image goes to the GPU and its crops are cut there (25
    crops of 224 px are ~5x the bytes of a 512x384 image, and cutting them on the host
    serialises the pass on one CPU thread); scores stay on the device until the end, so
    the host does not wait for every batch."""
    device = torch.device(device)
    model.eval()
    k = crops_per_image(crop_mode, n_crops)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    scores: list[torch.Tensor] = []
    params: list[torch.Tensor] = []

    pad = is_compiled(model) and crop_mode != "full"

    def run(batch: torch.Tensor) -> None:
        n = batch.shape[0]
        if pad and n < batch_size:
            batch = torch.cat([batch, batch[-1:].expand(batch_size - n, *batch.shape[1:])])
        x = batch.to(device, non_blocking=True).contiguous(memory_format=fmt)
        with autocast(device, amp_dtype):
            out = model(x, return_params=return_params)
        if return_params:
            out, p = out
            params.append(flatten_target_params(p)[:n].float())
        scores.append(out[:n].float())

    pending: list[torch.Tensor] = []
    n_pending = 0
    crop_on_device = device.type == "cuda"
    for name in names:
        image = cache[name].to(device, non_blocking=True) if crop_on_device else cache[name]
        crops = eval_crops(image, crop_mode, n_crops, crop_size, _crop_seed(name, seed))
        if crop_mode == "full":
            run(crops)
            continue
        pending.append(crops)
        n_pending += crops.shape[0]
        if n_pending >= batch_size:
            stacked = torch.cat(pending)  # (n_pending, 3, S, S) uint8
            cut = (n_pending // batch_size) * batch_size
            for start in range(0, cut, batch_size):
                run(stacked[start:start + batch_size])
            pending, n_pending = ([stacked[cut:]], n_pending - cut) if cut < n_pending else ([], 0)
    if n_pending:
        run(torch.cat(pending))
    if not names:
        empty = np.zeros((0, k), dtype=np.float64)
        return (empty, np.zeros((0, 0))) if return_params else empty
    per_crop = torch.cat(scores).cpu().double().view(len(names), k).numpy()  # (N, k)
    if return_params:
        flat = torch.cat(params).cpu().double()
        return per_crop, flat.view(len(names), k, -1).mean(1).numpy()  # (N, D)
    return per_crop


# ------------------------------------------------------------------ label units

def label_to_unit(pred: np.ndarray, label_scale: str, label_range: Sequence[float]) -> np.ndarray:
    """Model outputs to [0, 1] units of the training dataset's MOS range."""
    if label_scale == "raw":
        lo, hi = label_range
        return (np.asarray(pred, dtype=np.float64) - lo) / (hi - lo)
    return np.asarray(pred, dtype=np.float64)


def unit_to_mos(unit: np.ndarray, mos_range: Sequence[float]) -> np.ndarray:
    lo, hi = mos_range
    return np.asarray(unit, dtype=np.float64) * (hi - lo) + lo


@dataclass(frozen=True)
class ScoreSettings:
    """How test images are scored; the same for a run's test sets and ``iqabench eval``."""

    crop_mode: str = "grid"
    n_crops: int = 25
    crop_size: int = 224
    batch_size: int = 32
    device: str = "cpu"
    amp_dtype: torch.dtype | None = None
    channels_last: bool = True
    label_scale: str = "unit"
    label_range: tuple[float, float] = (0.0, 1.0)
    label_dataset: str | None = None  # the dataset label_range belongs to (None: unknown)


def common_scale(settings: ScoreSettings, table) -> bool:
    """Whether ``table``'s MOS and the model's labels are on one scale: the same MOS
    range, and the same dataset where the checkpoint names its own."""
    same_range = np.allclose(np.asarray(settings.label_range, dtype=float),
                             np.asarray(table.mos_range, dtype=float))
    return bool(same_range and settings.label_dataset in (None, table.name))


def scale_note(settings: ScoreSettings, table) -> str:
    """What a cross-scale score means (empty when the scales are common)."""
    if common_scale(settings, table):
        return ""
    lo, hi = settings.label_range
    tlo, thi = table.mos_range
    trained = settings.label_dataset or "its training data"
    return (f"the model scores on the scale of {trained} ({lo:g}-{hi:g}), {table.name} is on "
            f"{tlo:g}-{thi:g}: predictions are kept on the model's scale, SRCC/PLCC/KRCC are "
            "scale-free, RMSE needs a common scale and is left out (NaN)")


def score_images(model: torch.nn.Module, table, names: Sequence[str], cache,
                 settings: ScoreSettings, subset: str = "test", logistic: int | None = None,
                 n_boot: int = 1000) -> tuple[pd.DataFrame, dict]:
    """Predict ``names`` of ``table``; returns the predictions frame and a metrics dict
    (n, srcc, plcc, krcc, rmse, plcc_logistic, srcc_ci_low, srcc_ci_high).

    Predictions are on the model's label scale (the MOS scale of its training set).
    When ``table``'s MOS is on another scale (:func:`common_scale`), they are not
    rescaled to it: the correlations are scale-free, and RMSE is NaN.
    """
    if len(names) < 2:
        raise IqabenchError(f"{table.name} {subset}: {len(names)} image(s); need at least 2 to "
                            "correlate")
    raw = predict(model, cache, names, settings.crop_mode, settings.n_crops, settings.crop_size,
                  settings.batch_size, device=settings.device, amp_dtype=settings.amp_dtype,
                  channels_last=settings.channels_last)
    pred = unit_to_mos(label_to_unit(raw, settings.label_scale, settings.label_range),
                       settings.label_range)
    rows = table.frame.set_index(table.frame["name"].astype(str)).loc[list(names)]
    frame = pd.DataFrame({
        "dataset": table.name, "subset": subset, "name": list(names),
        "mos": rows["mos"].to_numpy(dtype=np.float64), "pred": pred,
        "content_id": rows["content_id"].astype(str).to_numpy(),
    })
    if "group" in rows:
        frame["group"] = rows["group"].to_numpy()
    metrics = metrics_of(frame["pred"].to_numpy(), frame["mos"].to_numpy(), logistic, n_boot)
    note = scale_note(settings, table)
    if note:
        metrics["rmse"] = float("nan")
        log.info("%s %s: %s", table.name, subset, note)
    return frame, metrics


def metrics_of(pred: np.ndarray, mos: np.ndarray, logistic: int | None = None,
               n_boot: int = 1000) -> dict:
    if not np.all(np.isfinite(pred)):
        raise IqabenchError("the model predicts non-finite scores; the checkpoint is broken")
    out: dict = {"n": int(len(pred))}
    if logistic and len(pred) <= logistic:  # too few images to fit the curve
        logistic = None
    out.update(compute_metrics(pred, mos, logistic=logistic))
    out.setdefault("plcc_logistic", float("nan"))
    if n_boot:
        out["srcc_ci_low"], out["srcc_ci_high"] = bootstrap_ci(pred, mos, "srcc", n_boot=n_boot)
        out["plcc_ci_low"], out["plcc_ci_high"] = bootstrap_ci(pred, mos, "plcc", n_boot=n_boot)
    else:
        out["srcc_ci_low"] = out["srcc_ci_high"] = float("nan")
    return out


# ----------------------------------------------------------------- iqabench eval

@dataclass
class EvalResult:
    """What ``iqabench eval`` computed; ``out_dir`` holds the CSVs when one was given.

    ``warnings`` holds what the user must know about the numbers (e.g. that training
    images were scored too); the CLI prints each one.
    """

    metrics: dict
    predictions: pd.DataFrame
    config: EvalConfig
    out_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)


def _split_file(split: str | Path) -> Path:
    path = Path(split)
    if path.is_dir():
        if (path / runfolder.SPLIT).is_file():
            return path / runfolder.SPLIT
        rounds = sorted(path.glob(f"round_*/{runfolder.SPLIT}"))
        if rounds:
            raise IqabenchError(f"{path} holds {len(rounds)} rounds: pass one round folder, "
                                f"e.g. {rounds[0].parent}")
        raise IqabenchError(f"no split.csv in {path}")
    return path


def eval_dataset(cfg: EvalConfig) -> tuple[str, str | None]:
    """The dataset and folder to score: ``cfg``'s, or those of the run whose split is
    scored (its config.yaml beside split.csv) when ``cfg`` names no dataset."""
    if cfg.dataset and (cfg.root or not cfg.split):
        return cfg.dataset, cfg.root
    run = _split_file(cfg.split).parent if cfg.split else None
    if run is None or not (run / runfolder.CONFIG).is_file():
        if cfg.dataset:
            return cfg.dataset, cfg.root
        where = f"no {runfolder.CONFIG} beside {cfg.split}" if cfg.split else "no --split RUN"
        raise IqabenchError(f"which dataset? pass --dataset (and --root): {where} to take "
                            "them from")
    trained = runfolder.read_config(run)
    if cfg.dataset and cfg.dataset != trained.dataset:
        return cfg.dataset, cfg.root  # another dataset than the run's: its own folder
    return trained.dataset, cfg.root or trained.root


def checkpoint_settings(cfg: EvalConfig, model: torch.nn.Module, ckpt: dict,
                        device: torch.device) -> ScoreSettings:
    """How ``iqabench eval`` scores ``ckpt``: ``cfg``'s crops, batch and precision where
    given, else the checkpoint's protocol (those the run was tested with); the label
    units and scale the checkpoint was trained in."""
    info = scoring_info(ckpt)
    return ScoreSettings(
        crop_mode=cfg.eval_crop_mode or info.crop_mode,
        n_crops=cfg.eval_crops or info.n_crops,
        crop_size=model.config.input_size,
        batch_size=cfg.eval_batch_size or info.batch_size,
        device=str(device), amp_dtype=resolve_amp(cfg.amp, device),
        channels_last=cfg.channels_last,
        label_scale=info.label_scale,
        label_range=info.label_range,
        label_dataset=info.dataset,
    )


def check_has_mos(dataset: str, root: str | None) -> None:
    """A ``csv`` dataset without a ``mos`` column, or whose MOS do not vary (one image,
    dummy values), cannot be evaluated: say to use ``iqabench predict``."""
    if dataset != "csv" or not root or not Path(root).is_file():
        return
    with open(root, newline="", encoding="utf-8", errors="replace") as f:
        rows = csv.DictReader(f)
        header = [h.strip() for h in rows.fieldnames or []]
        values = set()
        if "mos" in header:
            for row in rows:
                try:
                    value = float(row.get("mos") or "nan")
                except ValueError:
                    continue
                if np.isfinite(value):
                    values.add(value)
    predict_hint = (f"to score images without MOS run `iqabench predict {root} "
                    "--checkpoint CKPT`")
    if "mos" not in header:
        raise IqabenchError(f"{root} has no 'mos' column: eval correlates scores with MOS; "
                            f"{predict_hint}")
    if len(values) < 2:
        raise IqabenchError(f"{root}: the MOS take {len(values)} distinct value(s); eval "
                            f"correlates scores with MOS, which must vary; {predict_hint}")


def evaluate_checkpoint(cfg: EvalConfig, progress: bool = False) -> EvalResult:
    """Score ``cfg.checkpoint`` on a dataset (or the ``subset`` of a saved split).

    With ``split`` a run folder (or its split.csv), the dataset and its folder default to
    the run's. Crop mode, crop count and batch size default to those the run used for its
    test sets, so the numbers match the run's ``test_metrics.csv``. Without a split every
    image of the dataset is scored, training images included: the result's ``warnings``
    and the log say so.
    """
    device = resolve_device(cfg.device)
    model, ckpt = load_checkpoint(cfg.checkpoint)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model = compile_for_inference(model)
    settings = checkpoint_settings(cfg, model, ckpt, device)
    dataset, root = eval_dataset(cfg)
    check_has_mos(dataset, root)
    table = load_dataset(dataset, root)
    names = sorted(table.frame["name"].astype(str))
    subset = "all"
    warnings = []
    if cfg.split:
        path = _split_file(cfg.split)
        split = read_split(path)
        check_split(split, names, source=str(path))
        if cfg.subset != "all":
            subset = cfg.subset
            names = list(split.subset(cfg.subset))
        else:
            names = sorted(split.train + split.val + split.test)
    else:
        warnings.append(f"no --split: scoring ALL {len(names)} images of {table.name}, "
                        "including any the checkpoint was trained on; pass --split RUN to "
                        "score only its test images")
    if cfg.limit:
        names = sorted(pd.Series(names).sample(n=min(cfg.limit, len(names)), random_state=cfg.seed))
    for message in warnings:
        log.warning("%s", message)
    note = scale_note(settings, table)
    if note:  # logged by score_images
        warnings.append(note)
    cache = ImageCache.build(table, names=names, progress=progress,
                             min_size=settings.crop_size)
    log.info("scoring %d %s images of %s: %d %s crop(s) of %d px each, batch %d, %s",
             len(names), subset, table.name, crops_per_image(settings.crop_mode, settings.n_crops),
             settings.crop_mode, settings.crop_size, settings.batch_size, device)
    frame, metrics = score_images(model, table, names, cache, settings, subset=subset,
                                  logistic=cfg.logistic, n_boot=cfg.n_boot)
    metrics = {"dataset": table.name, "round": ckpt.get("round", 0), **metrics,
               "checkpoint": str(cfg.checkpoint)}
    out_dir = None
    if cfg.out:
        out_dir = Path(cfg.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        runfolder.write_predictions(out_dir, frame)
        runfolder.write_test_metrics(out_dir, metrics, name=runfolder.EVAL_METRICS)
        # where, when, from which commit and with which settings these scores were made
        runfolder.write_environment(out_dir, {**environment(device), "settings": cfg.to_dict()},
                                    replace=True)
    return EvalResult(metrics=metrics, predictions=frame, config=cfg, out_dir=out_dir,
                      warnings=warnings)


__all__ = ["EvalResult", "ScoreSettings", "check_has_mos", "checkpoint_settings", "common_scale",
           "crops_per_image", "eval_dataset", "evaluate_checkpoint", "label_to_unit",
           "metrics_of", "predict", "predict_crops", "scale_note", "score_images",
           "unit_to_mos"]
