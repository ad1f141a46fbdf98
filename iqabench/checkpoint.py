"""Checkpoints of a training run (``best.pt``, ``last.pt``): write, read, restore.

A checkpoint is one ``torch.save`` dict::

    model, model_config        the weights (of the unwrapped model: no DDP ``module.`` or
                               ``torch.compile`` ``_orig_mod.`` prefixes are ever written)
                               and the architecture they belong to
    config                     the run's TrainConfig as a dict
    epoch, round               epochs finished, the round trained
    optimizer, scheduler,      what resuming needs to continue the same trajectory
    scaler, rng
    best_val_srcc, best_epoch  the best validation epoch so far
    label_range, label_scale   the units the model predicts in

It holds only tensors and plain values, so it is read with ``weights_only=True`` (a
checkpoint file cannot run code).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from iqabench.config import HyperIQAConfig, TrainConfig
from iqabench.errors import IqabenchError
from iqabench.models.hyperiqa import HyperIQA
from iqabench.models.weights import check_keys
from iqabench.runtime import rng_state, set_rng_state

#: Run settings that may change when resuming; anything else must match the run.
RESUMABLE = frozenset({"epochs", "device", "amp", "compile", "workers", "tests", "n_boot",
                       "cache_dir", "channels_last", "out", "eval_batch_size", "round"})


# ---------------------------------------------------------------------- files


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


# --------------------------------------------------------------- training state


def training_state(cfg: TrainConfig, model: HyperIQA, optimizer, scheduler, scaler, *,
                   epoch: int, best_val: float, best_epoch: int | None,
                   label_range: tuple[float, float], round_: int) -> dict:
    """The checkpoint dict after ``epoch`` finished epochs (RNG states of now)."""
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


__all__ = ["RESUMABLE", "Progress", "check_resumable", "load_checkpoint", "load_state_checked",
           "read_checkpoint", "restore_training_state", "save_checkpoint", "training_state"]
