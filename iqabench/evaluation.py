"""Scoring a trained model: checkpoints in, per-image predictions and metrics out.

Training's test evaluation and ``iqabench eval`` run the same function
(:func:`score_images`) with the same crops, batching and label conversion, so the eval
command reproduces a run's test numbers from its ``best.pt`` and ``split.csv``.

Test-time crops are batched *across* images (a batch of 32 crops may hold the last
crops of one image and the first of the next), cut from decoded uint8 pixels held in
memory, moved to the device as uint8 and normalised there, and run under
``torch.inference_mode`` (AMP on CUDA). Scores of an image's crops are averaged.

``iqabench eval --compile`` runs the model through :func:`compile_for_inference`
(TorchInductor with frozen weights: BatchNorm folded into convolutions, weights
pre-packed for oneDNN), the largest single speed-up on CPU; the last batch is padded
to full size so one compiled graph serves the whole pass.
"""

from __future__ import annotations

import logging
import os
import shutil
import zlib
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from iqabench import runfolder
from iqabench.config import EvalConfig, HyperIQAConfig
from iqabench.errors import IqabenchError
from iqabench.metrics import bootstrap_ci, compute_metrics
from iqabench.models.hyperiqa import HyperIQA, flatten_target_params

log = logging.getLogger(__name__)



# ------------------------------------------------------------------------ devices

def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available; ``cuda`` without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise IqabenchError("--device cuda asked, but torch sees no CUDA device")
    return torch.device(name)


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """``auto`` -> bf16 on CUDA, none on CPU; fp16 only on CUDA."""
    if mode == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if mode == "none":
        return None
    if mode == "fp16" and device.type != "cuda":
        raise IqabenchError("--amp fp16 needs CUDA; on CPU use --amp bf16 or none")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def compile_for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """The eval-mode model compiled by TorchInductor with its weights frozen as constants.

    Only for scoring a fixed checkpoint: freezing bakes the current weights into the
    graph, so a model that is still training must not go through here. Compilation
    happens on the first call (tens of seconds for ResNet-50 on a small CPU) and needs a
    C++ compiler on CPU.
    """
    device = next(model.parameters()).device
    if device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise IqabenchError("--compile on CPU needs a C++ compiler (g++ or clang++) on PATH; "
                            "install one or drop --compile")
    model.eval()
    return torch.compile(model, dynamic=False, options={"freezing": True})


def is_compiled(model: torch.nn.Module) -> bool:
    return hasattr(model, "_orig_mod")


# --------------------------------------------------------------------- checkpoints

def save_checkpoint(state: dict, path: str | Path) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """The checkpoint dict of an iqabench run (``best.pt``/``last.pt``)."""
    path = Path(path)
    if not path.is_file():
        raise IqabenchError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise IqabenchError(f"cannot read checkpoint {path}: {reason}") from err
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        keys = ", ".join(list(ckpt)[:8]) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise IqabenchError(f"{path} is not an iqabench checkpoint (needs 'model' and "
                            f"'model_config'; has {keys})")
    return ckpt


def load_state_checked(model: torch.nn.Module, state_dict: dict, what: str) -> None:
    """``load_state_dict`` that first names every missing/unexpected key and shape
    mismatch in one :class:`IqabenchError` (a checkpoint for another architecture)."""
    from iqabench.models.weights import check_keys

    expected = {k: v.shape for k, v in model.state_dict().items()}
    check_keys(state_dict, expected, what)
    model.load_state_dict(state_dict, strict=True)


def load_checkpoint(path: str | Path, map_location="cpu") -> tuple[HyperIQA, dict]:
    """The model a checkpoint describes, with its weights, in eval mode; and the dict.

    The architecture comes from the checkpoint's ``model_config``; no backbone weights
    are fetched (the checkpoint holds them all).
    """
    ckpt = read_checkpoint(path, map_location)
    try:
        config = HyperIQAConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError) as err:
        raise IqabenchError(f"checkpoint {path}: bad model_config ({err})") from err
    model = HyperIQA(config, pretrained=False)
    load_state_checked(model, ckpt["model"], f"checkpoint {path} for {config.backbone}")
    model.eval()
    return model, ckpt


# ---------------------------------------------------------------------- prediction

def _crop_seed(name: str, seed: int) -> int:
    """Random test crops depend on the image, not on its position in a list."""
    return (zlib.crc32(name.encode()) + 1_000_003 * seed) % (2**31)


def crops_per_image(crop_mode: str, n_crops: int) -> int:
    return 1 if crop_mode in ("center", "full") else n_crops


@torch.inference_mode()
def predict(model: torch.nn.Module, cache, names: Sequence[str], crop_mode: str = "grid",
            n_crops: int = 25, crop_size: int = 224, batch_size: int = 64,
            return_params: bool = False, device: str | torch.device = "cpu",
            amp_dtype: torch.dtype | None = None, channels_last: bool = True, seed: int = 0):
    """Mean score over each image's test crops: (N,) in the model's label units
    ([0, 1] for label_scale "unit"); with ``return_params`` also (N, D), the mean
    flattened generated target-network weights per image (for the PCA plot).

    Crops of consecutive images share batches of ``batch_size`` crops; ``full`` runs
    one whole image per forward pass (sizes differ). A compiled model
    (:func:`compile_for_inference`) gets its last batch padded to ``batch_size`` by
    repeating its last crop, and the padding's scores are dropped.
    """
    from iqabench.data.transforms import eval_crops

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
            params.append(flatten_target_params(p)[:n].float().cpu())
        scores.append(out[:n].float().cpu())

    pending: list[torch.Tensor] = []
    n_pending = 0
    for name in names:
        crops = eval_crops(cache[name], crop_mode, n_crops, crop_size, _crop_seed(name, seed))
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
        empty = np.zeros(0, dtype=np.float64)
        return (empty, np.zeros((0, 0))) if return_params else empty
    per_image = torch.cat(scores).double().view(len(names), k).mean(1).numpy()  # (N,)
    if return_params:
        flat = torch.cat(params).double()
        return per_image, flat.view(len(names), k, -1).mean(1).numpy()  # (N, D)
    return per_image


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


def score_images(model: torch.nn.Module, table, names: Sequence[str], cache,
                 settings: ScoreSettings, subset: str = "test", logistic: int | None = None,
                 n_boot: int = 1000) -> tuple[pd.DataFrame, dict]:
    """Predict ``names`` of ``table``; returns the predictions frame (MOS units of
    ``table``) and a metrics dict (n, srcc, plcc, krcc, rmse, plcc_logistic,
    srcc_ci_low, srcc_ci_high)."""
    if len(names) < 2:
        raise IqabenchError(f"{table.name} {subset}: {len(names)} image(s); need at least 2 to "
                            "correlate")
    raw = predict(model, cache, names, settings.crop_mode, settings.n_crops, settings.crop_size,
                  settings.batch_size, device=settings.device, amp_dtype=settings.amp_dtype,
                  channels_last=settings.channels_last)
    pred = unit_to_mos(label_to_unit(raw, settings.label_scale, settings.label_range),
                       table.mos_range)
    rows = table.frame.set_index(table.frame["name"].astype(str)).loc[list(names)]
    frame = pd.DataFrame({
        "dataset": table.name, "subset": subset, "name": list(names),
        "mos": rows["mos"].to_numpy(dtype=np.float64), "pred": pred,
        "content_id": rows["content_id"].astype(str).to_numpy(),
    })
    if "group" in rows:
        frame["group"] = rows["group"].to_numpy()
    metrics = metrics_of(frame["pred"].to_numpy(), frame["mos"].to_numpy(), logistic, n_boot)
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
    """What ``iqabench eval`` computed; ``out_dir`` holds the CSVs when one was given."""

    metrics: dict
    predictions: pd.DataFrame
    config: EvalConfig
    out_dir: Path | None = None


def _split_file(split: str | Path) -> Path:
    path = Path(split)
    if path.is_dir():
        if (path / "split.csv").is_file():
            return path / "split.csv"
        rounds = sorted(path.glob("round_*/split.csv"))
        if rounds:
            raise IqabenchError(f"{path} holds {len(rounds)} rounds: pass one round folder, "
                                f"e.g. {rounds[0].parent}")
        raise IqabenchError(f"no split.csv in {path}")
    return path


def checkpoint_settings(cfg: EvalConfig, model: torch.nn.Module, ckpt: dict,
                        device: torch.device) -> ScoreSettings:
    """How ``iqabench eval`` scores ``ckpt``: ``cfg``'s crops, batch and precision where
    given, else those the run was tested with; the label units the checkpoint was trained in."""
    trained = ckpt.get("config") or {}
    return ScoreSettings(
        crop_mode=cfg.crop_mode or trained.get("eval_crop_mode", "grid"),
        n_crops=cfg.n_crops or trained.get("eval_crops", 25),
        crop_size=model.config.input_size,
        batch_size=cfg.batch_size or trained.get("eval_batch_size", 32),
        device=str(device), amp_dtype=resolve_amp(cfg.amp, device),
        channels_last=cfg.channels_last,
        label_scale=ckpt.get("label_scale", trained.get("label_scale", "unit")),
        label_range=tuple(ckpt.get("label_range", (0.0, 1.0))),
    )


def evaluate_checkpoint(cfg: EvalConfig, progress: bool = False) -> EvalResult:
    """Score ``cfg.checkpoint`` on a dataset (or the ``subset`` of a saved split).

    Crop mode, crop count and batch size default to those the run used for its test
    sets, so the numbers match the run's ``test_metrics.csv``.
    """
    from iqabench.data import load_dataset
    from iqabench.data.cache import ImageCache
    from iqabench.data.splits import check_split, read_split

    device = resolve_device(cfg.device)
    model, ckpt = load_checkpoint(cfg.checkpoint)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model = compile_for_inference(model)
    settings = checkpoint_settings(cfg, model, ckpt, device)
    table = load_dataset(cfg.dataset, cfg.root)
    names = sorted(table.frame["name"].astype(str))
    subset = "all"
    if cfg.split:
        path = _split_file(cfg.split)
        split = read_split(path)
        check_split(split, names, source=str(path))
        if cfg.subset != "all":
            subset = cfg.subset
            names = list(split.subset(cfg.subset))
        else:
            names = sorted(split.train + split.val + split.test)
    if cfg.limit:
        names = names[:cfg.limit]
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
        frame.to_csv(out_dir / "predictions.csv", index=False)
        runfolder.write_test_metrics(out_dir, metrics, name=runfolder.EVAL_METRICS)
    return EvalResult(metrics=metrics, predictions=frame, config=cfg, out_dir=out_dir)


__all__ = ["EvalResult", "ScoreSettings", "evaluate_checkpoint", "label_to_unit", "load_checkpoint",
           "predict", "read_checkpoint", "save_checkpoint", "score_images", "unit_to_mos"]
