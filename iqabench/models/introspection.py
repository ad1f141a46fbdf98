"""Looking inside a Hyper-IQA model: the target-network weights it generates per image,
and the tensor shapes along the hyper network's input path.

Both run the model; what the numbers mean (PCA, diagrams) is left to
:mod:`iqabench.analysis` and :mod:`iqabench.render`, which never import torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from iqabench.analysis.types import HyperFlow
from iqabench.config import HyperIQAConfig
from iqabench.data.transforms import eval_crops
from iqabench.models.backbone import stages_nchw
from iqabench.models.hyperiqa import HyperIQA, flatten_target_params


@torch.inference_mode()
def target_weights(model: HyperIQA, images: Sequence[torch.Tensor], crop_size: int,
                   batch_size: int = 32) -> np.ndarray:
    """(N, D) generated target-network weights and biases (w1..w5, b1..b5, flattened)
    of one center crop of each (3, H, W) uint8 image, in float64."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        batch = torch.cat([eval_crops(img, "center", 1, crop_size)
                           for img in images[start:start + batch_size]])
        _, params = model(batch.to(device), return_params=True)
        out.append(flatten_target_params(params).double().cpu())
    if not out:
        return np.zeros((0, 0))
    return torch.cat(out).numpy()


def trace_hyper_flow(config: HyperIQAConfig, hyper_input: str) -> HyperFlow:
    """Real tensor shapes along the hyper network's input path of ``config`` with
    ``hyper_input`` ("last" or "multiscale"), from a forward pass with hooks on a
    1-image random input (the model is built without pretrained weights)."""
    config = HyperIQAConfig.from_dict({**config.to_dict(), "hyper_input": hyper_input})
    model = HyperIQA(config, pretrained=False).eval()
    seen: dict = {}
    hooks = [
        model.backbone.register_forward_hook(
            lambda m, i, o: seen.__setitem__("stages", stages_nchw(o, model.spec))),
        model.hyper_in[0].register_forward_pre_hook(
            lambda m, args: seen.__setitem__("hyper_input", tuple(args[0].shape))),
        model.weight_fc_last.register_forward_pre_hook(
            lambda m, args: seen.__setitem__("pooled", tuple(args[0].shape))),
    ]
    convs = [i for i, layer in enumerate(model.hyper_in) if isinstance(layer, torch.nn.Conv2d)]
    for i in convs:
        hooks.append(model.hyper_in[i].register_forward_hook(
            lambda m, a, o, i=i: seen.__setitem__(f"hyper_in.{i}", tuple(o.shape))))
    for i, conv in enumerate(model.weight_convs):
        hooks.append(conv.register_forward_hook(
            lambda m, a, o, i=i: seen.__setitem__(f"weight_convs.{i}", tuple(o.shape))))
    size = config.input_size
    try:
        with torch.no_grad():
            _, params = model(torch.rand(1, 3, size, size), return_params=True)
    finally:
        for h in hooks:
            h.remove()
    grid = seen["hyper_input"][-1]
    used = seen["stages"] if hyper_input == "multiscale" else seen["stages"][-1:]
    pooled = [tuple(F.adaptive_avg_pool2d(s, grid).shape) for s in used]
    if sum(p[1] for p in pooled) != seen["hyper_input"][1]:
        raise RuntimeError("pooled stage channels do not add up to the hyper-network input")
    n_stages = len(seen["stages"])
    return HyperFlow(
        backbone=config.backbone, hyper_input=hyper_input, input=(1, 3, size, size),
        stages=[tuple(s.shape) for s in seen["stages"]], pooled=pooled,
        stage_used=[hyper_input == "multiscale" or i == n_stages - 1 for i in range(n_stages)],
        hyper_in_input=seen["hyper_input"],
        hyper_in=[seen[f"hyper_in.{i}"] for i in convs],
        hyper_in_params=sum(p.numel() for p in model.hyper_in.parameters()),
        map=seen[f"hyper_in.{convs[-1]}"], pooled_map=seen["pooled"],
        weight_convs=[seen[f"weight_convs.{i}"] for i in range(len(model.weight_convs))],
        params={k: tuple(v.shape) for k, v in params.items()},
    )
