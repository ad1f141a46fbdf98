"""timm backbones as multi-stage feature extractors.

Every size downstream (LDA branches, hyper-network input) is read from the backbone's
``feature_info``, never hard-coded, and the input normalisation travels with the
backbone's ``pretrained_cfg`` (ImageNet mean/std for ResNet-50, 0.5/0.5 for the
EfficientNet-Lite weights). timm's Swin returns NHWC maps; :class:`Backbone` hands every
stage on as NCHW.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from iqabench.errors import IqabenchError
from iqabench.models.weights import is_download_failure, load_backbone_weights, offline_error

#: Hyper-IQA reads four stages (strides 4, 8, 16, 32 for ResNet-50).
NUM_STAGES = 4


@dataclass(frozen=True)
class BackboneSpec:
    """What the heads need to know about a backbone's feature maps."""

    name: str
    channels: tuple[int, ...]  # channels of the stages Hyper-IQA reads, shallow to deep
    reductions: tuple[int, ...]  # their strides w.r.t. the input
    output_fmt: str  # "NCHW" or "NHWC", as the timm feature wrapper emits them
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int  # the backbone's native square input size


def create_features_model(name: str, pretrained: bool = False, input_size: int = 224,
                          weights: str | Path | None = None, **kwargs) -> nn.Module:
    """``timm.create_model(name, features_only=True)`` with one-line errors.

    Transformers with a fixed patch grid (Swin) are built for ``input_size``; CNNs take
    any size and ignore it. ``weights`` is a local backbone state dict (see
    :func:`iqabench.models.weights.load_backbone_weights`); it replaces the hub, so
    ``pretrained`` is ignored when it is given. Without a network, ``pretrained=True``
    raises a one-line error naming ``--weights`` (fast under ``HF_HUB_OFFLINE=1``).
    """
    if input_size != 224:
        try:
            return create_features_model(name, pretrained, weights=weights,
                                         img_size=input_size, **kwargs)
        except TypeError:  # a CNN: no img_size argument
            pass
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        hint = f" Close names: {', '.join(close)}." if close else ""
        raise IqabenchError(f"unknown timm backbone {name!r}.{hint}")
    from_hub = pretrained and weights is None
    try:
        model = timm.create_model(name, pretrained=from_hub, features_only=True, **kwargs)
    except Exception as err:
        if from_hub and is_download_failure(err):
            raise offline_error(name, err) from err
        if isinstance(err, RuntimeError):  # e.g. a model without features_only support
            raise IqabenchError(
                f"backbone {name!r} cannot be built with features_only: {err}") from err
        raise
    if weights is not None:
        load_backbone_weights(model, name, weights, **kwargs)
    return model


def describe(model: nn.Module, name: str) -> BackboneSpec:
    """Read channels, strides, layout and normalisation off a timm features model."""
    info = model.feature_info
    channels = tuple(int(c) for c in info.channels())
    reductions = tuple(int(r) for r in info.reduction())
    keep = slice(max(0, len(channels) - NUM_STAGES), None)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean = tuple(float(v) for v in cfg.get("mean", timm.data.IMAGENET_DEFAULT_MEAN))
    std = tuple(float(v) for v in cfg.get("std", timm.data.IMAGENET_DEFAULT_STD))
    size = cfg.get("input_size", (3, 224, 224))[-1]
    fmt = getattr(model, "output_fmt", "NCHW")  # a timm Format enum or a string
    return BackboneSpec(
        name=name,
        channels=channels[keep],
        reductions=reductions[keep],
        output_fmt=str(getattr(fmt, "value", fmt)),
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        input_size=int(size),
    )


def stages_nchw(features: list[torch.Tensor], spec: BackboneSpec) -> list[torch.Tensor]:
    """The last ``len(spec.channels)`` feature maps, each as (B, C, H, W)."""
    maps = list(features)[-len(spec.channels):]
    if spec.output_fmt == "NHWC":
        maps = [m.permute(0, 3, 1, 2) for m in maps]  # (B, H, W, C) -> (B, C, H, W)
    return maps
