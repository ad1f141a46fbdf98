"""Checkpoints (``best.pt``, ``last.pt``, imported and exported models): write, read,
restore.

A checkpoint is one ``torch.save`` dict::

    model, model_config        the weights (of the unwrapped model: no DDP ``module.`` or
                               ``torch.compile`` ``_orig_mod.`` prefixes are ever written)
                               and the architecture they belong to
    label_range, label_scale   the units the model predicts in: "unit" predicts [0, 1] of
                               label_range, "raw" predicts on label_range itself
    protocol                   how it scores an image: crop_mode, crops, batch_size, resize
                               (rule applied after decoding), mean/std (normalisation),
                               dataset (the one label_range belongs to, or None)
    config                     the run's TrainConfig as a dict (runs only)
    epoch, round               epochs finished, the round trained
    best_val_srcc, best_epoch  the best validation epoch so far
    optimizer, scheduler,      what resuming needs to continue the same trajectory:
    scaler, rng                in ``last.pt`` only (:func:`scoring_state` drops them)

``best.pt`` holds the weights and what scoring needs (:func:`scoring_state`), so its
size is that of the weights; ``last.pt`` is the whole training state. A ``.safetensors``
file written by :func:`export_safetensors` (weights, and the rest as JSON under the
metadata key ``iqabench``) reads back as the same dict (without training state).

It holds only tensors and plain values, so it is read with ``weights_only=True`` (a
checkpoint file cannot run code).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from iqabench.config import HyperIQAConfig, TrainConfig
from iqabench.errors import IqabenchError
from iqabench.models.hyperiqa import HyperIQA
from iqabench.models.weights import check_keys, load_hyperiqa_state_dict
from iqabench.runtime import rng_state, set_rng_state

#: What only resuming needs: kept in ``last.pt``, left out of ``best.pt`` and exports.
TRAINING_ONLY = ("optimizer", "scheduler", "scaler", "rng")
#: The metadata key of an exported ``.safetensors`` file (a JSON string).
SAFETENSORS_KEY = "iqabench"
#: The published Hyper-IQA protocol (SSL92/hyperIQA): ResNet-50, hyper network on the
#: last stage, 25 crops of 224 px, ImageNet normalisation, trained on raw MOS. The 25
#: crops are a 5x5 grid here (the original drew them at random).
HYPERIQA_MODEL = HyperIQAConfig(backbone="resnet50", hyper_input="last", input_size=224,
                                init="original")
HYPERIQA_PROTOCOL = {"crop_mode": "grid", "crops": 25, "batch_size": 25, "resize": None,
                     "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                     "dataset": None}

#: Run settings that may change when resuming; anything else must match the run.
RESUMABLE = frozenset({"epochs", "device", "amp", "compile", "workers", "tests", "n_boot",
                       "cache_dir", "channels_last", "out", "eval_batch_size", "round",
                       "tensorboard"})


# ---------------------------------------------------------------------- files


def save_checkpoint(state: dict, path: str | Path) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """The checkpoint dict of an iqabench model: a run's ``best.pt``/``last.pt``, an
    imported model, or a ``.safetensors`` export (its weights and JSON metadata)."""
    path = Path(path)
    if not path.is_file():
        raise IqabenchError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return _read_safetensors(path, map_location)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise IqabenchError(f"cannot read checkpoint {path}: {_reason(err)}") from err
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        keys = ", ".join(list(ckpt)[:8]) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise IqabenchError(f"{path} is not an iqabench checkpoint (needs 'model' and "
                            f"'model_config'; has {keys}); a published Hyper-IQA state dict "
                            "becomes one with `iqabench weights import-hyperiqa`")
    return ckpt


def _reason(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _read_safetensors(path: Path, map_location="cpu") -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as f:
            meta = (f.metadata() or {}).get(SAFETENSORS_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()} if meta is not None else {}
    except Exception as err:
        raise IqabenchError(f"cannot read checkpoint {path}: {_reason(err)}") from err
    if meta is None:
        raise IqabenchError(f"{path} holds weights but no '{SAFETENSORS_KEY}' metadata (not "
                            "written by `iqabench export`); a published Hyper-IQA state dict "
                            "becomes a checkpoint with `iqabench weights import-hyperiqa`")
    try:
        ckpt = json.loads(meta)
    except ValueError as err:
        raise IqabenchError(f"{path}: bad '{SAFETENSORS_KEY}' metadata ({err})") from err
    if not isinstance(ckpt, dict) or "model_config" not in ckpt:
        raise IqabenchError(f"{path}: '{SAFETENSORS_KEY}' metadata has no model_config")
    ckpt["model"] = tensors
    return ckpt


def load_state_checked(model: torch.nn.Module, state_dict: dict, what: str) -> None:
    """``load_state_dict`` that first names every missing/unexpected key and shape
    mismatch in one :class:`IqabenchError` (a checkpoint for another architecture)."""
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
    protocol = ckpt.get("protocol") or {}
    with torch.no_grad():  # the normalisation the weights were trained with
        for name in ("mean", "std"):
            if protocol.get(name) is not None:
                getattr(model, name).copy_(torch.tensor(protocol[name]).view(1, 3, 1, 1))
    model.eval()
    return model, ckpt


# ------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class ScoringInfo:
    """How a checkpoint scores images and on which scale its scores are."""

    label_scale: str = "unit"  # "unit": outputs are [0, 1] of label_range; "raw": on it
    label_range: tuple[float, float] = (0.0, 1.0)  # the MOS scale of the training labels
    dataset: str | None = None  # the dataset label_range belongs to (None: not known)
    crop_mode: str = "grid"
    n_crops: int = 25
    crop_size: int = 224
    batch_size: int = 32
    resize: str | None = None  # resize rule applied after decoding (iqabench.data.transforms)

    def to_label(self, raw: np.ndarray | Sequence[float]) -> np.ndarray:
        """Model outputs to the label scale (the training set's MOS scale)."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.label_scale == "unit":
            lo, hi = self.label_range
            return raw * (hi - lo) + lo
        return raw


def scoring_info(ckpt: dict) -> ScoringInfo:
    """The :class:`ScoringInfo` of a checkpoint dict; checkpoints written before the
    ``protocol`` entry existed take it from their run config."""
    protocol = ckpt.get("protocol") or {}
    trained = ckpt.get("config") or {}
    model_config = ckpt.get("model_config") or {}
    return ScoringInfo(
        label_scale=ckpt.get("label_scale", trained.get("label_scale", "unit")),
        label_range=tuple(float(v) for v in ckpt.get("label_range", (0.0, 1.0))),
        dataset=protocol.get("dataset", trained.get("dataset")),
        crop_mode=protocol.get("crop_mode", trained.get("eval_crop_mode", "grid")),
        n_crops=int(protocol.get("crops", trained.get("eval_crops", 25))),
        crop_size=int(model_config.get("input_size", 224)),
        batch_size=int(protocol.get("batch_size", trained.get("eval_batch_size", 32))),
        resize=protocol.get("resize"),
    )


def scoring_state(state: dict) -> dict:
    """``state`` without what only resuming needs (optimiser, scheduler, scaler, RNG):
    what ``best.pt`` and exports hold."""
    return {k: v for k, v in state.items() if k not in TRAINING_ONLY}


def _refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise IqabenchError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)


def export_safetensors(checkpoint: str | Path, out: str | Path, force: bool = False) -> Path:
    """Write a checkpoint's weights to ``out`` (``.safetensors``) with its model config,
    label range/scale, protocol and run config as JSON in the metadata key ``iqabench``;
    :func:`read_checkpoint` (so ``eval``, ``predict``, ``load_scorer``) reads it back."""
    out = Path(out)
    if out.suffix != ".safetensors":
        raise IqabenchError(f"--out {out}: the export is a .safetensors file")
    _refuse_existing(out, force)
    from safetensors.torch import save_file

    model, ckpt = load_checkpoint(checkpoint)  # checked: the weights fit the config
    meta = {k: v for k, v in scoring_state(ckpt).items() if k != "model"}
    meta.setdefault("protocol", _protocol_of(scoring_info(ckpt), model))
    tensors = {k: v.detach().cpu().contiguous() for k, v in ckpt["model"].items()}
    tmp = out.with_name(out.name + ".tmp")
    save_file(tensors, str(tmp), metadata={SAFETENSORS_KEY: json.dumps(meta, default=list)})
    os.replace(tmp, out)
    return out


def _protocol_of(info: ScoringInfo, model: HyperIQA) -> dict:
    return {"crop_mode": info.crop_mode, "crops": info.n_crops, "batch_size": info.batch_size,
            "resize": info.resize, "dataset": info.dataset,
            "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist()}


def import_hyperiqa(file: str | Path, out: str | Path, label_range: Sequence[float],
                    layout: str = "auto", force: bool = False,
                    model_config: HyperIQAConfig | None = None) -> tuple[Path, str]:
    """Turn a published Hyper-IQA state dict (SSL92/hyperIQA's ``koniq_pretrained.pkl``
    layout, "official", or pyiqa's) into an iqabench checkpoint at ``out``.

    The original code trains on raw MOS and feeds ImageNet-normalised 224 crops, so the
    checkpoint predicts on ``label_range`` (the MOS scale of the weights' training set,
    e.g. KonIQ 0-100) with label_scale "raw", and scores 25 crops (a 5x5 grid) of 224 px.
    ``model_config`` defaults to :data:`HYPERIQA_MODEL`. Returns the path and the layout
    read.
    """
    lo, hi = (float(v) for v in label_range)
    if not lo < hi:
        raise IqabenchError(f"--label-range {lo:g} {hi:g}: LO must be below HI")
    out = Path(out)
    if out.suffix not in (".pt", ".pth"):
        raise IqabenchError(f"--out {out}: the checkpoint is a .pt file (`iqabench export` "
                            "writes .safetensors)")
    _refuse_existing(out, force)
    model_config = model_config or HYPERIQA_MODEL
    model = HyperIQA(model_config, pretrained=False)
    read = load_hyperiqa_state_dict(model, file, layout=layout)
    protocol = dict(HYPERIQA_PROTOCOL)
    save_checkpoint({
        "model": model.state_dict(), "model_config": model_config.to_dict(),
        "label_range": [lo, hi], "label_scale": "raw", "protocol": protocol,
        "source": {"file": str(file), "layout": read},
    }, out)
    return out, read


# --------------------------------------------------------------- training state


def training_state(cfg: TrainConfig, model: HyperIQA, optimizer, scheduler, scaler, *,
                   epoch: int, best_val: float, best_epoch: int | None,
                   label_range: tuple[float, float], round_: int,
                   resize: str | None = None) -> dict:
    """The checkpoint dict after ``epoch`` finished epochs (RNG states of now);
    ``resize`` is the training dataset's resize rule (recorded for scoring)."""
    protocol = {"crop_mode": cfg.eval_crop_mode, "crops": cfg.eval_crops,
                "batch_size": cfg.eval_batch_size, "resize": resize, "dataset": cfg.dataset,
                "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist()}
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
        "protocol": protocol,
    }


@dataclass(frozen=True)
class Progress:
    """Where a restored run stands: epochs finished and the best validation so far."""

    epoch: int = 0
    best_val: float = -math.inf
    best_epoch: int | None = None


def restore_training_state(ckpt: dict, model: HyperIQA, optimizer, scheduler, scaler,
                           what: str = "checkpoint") -> Progress:
    """Load model, optimiser, scheduler, scaler and the global RNG states from ``ckpt``;
    return how far the run had got."""
    load_state_checked(model, ckpt["model"], what)
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    return Progress(epoch=int(ckpt["epoch"]),
                    best_val=float(ckpt.get("best_val_srcc", -math.inf)),
                    best_epoch=ckpt.get("best_epoch"))


def check_resumable(cfg: TrainConfig, saved: dict, path: str | Path) -> None:
    """Refuse to resume a checkpoint whose run had another recipe or architecture
    (``saved`` is the checkpoint's ``config``); the RESUMABLE settings may differ."""
    now = cfg.to_dict()
    diffs = []
    for key, value in saved.items():
        if key in RESUMABLE:
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


def _norm(value) -> str:
    return json.dumps(value, sort_keys=True, default=list)


__all__ = ["HYPERIQA_MODEL", "HYPERIQA_PROTOCOL", "RESUMABLE", "TRAINING_ONLY", "Progress",
           "ScoringInfo", "check_resumable", "export_safetensors", "import_hyperiqa",
           "load_checkpoint", "load_state_checked", "read_checkpoint", "restore_training_state",
           "save_checkpoint", "scoring_info", "scoring_state", "training_state"]
