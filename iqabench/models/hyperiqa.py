"""Hyper-IQA (Su et al., CVPR 2020) over any timm backbone.

With ``resnet50`` at 224 this is the original network to the parameter (27,375,369):

* **LDA branches** (local distortion aware), one per stage, concatenated into the
  224-d target-network input. Stage i (not the last): 1x1 conv C_i -> C_i/16 (no bias),
  average-pooled to a (r_last/r_i)^2 grid (8x8, 4x4, 2x2 for ResNet-50), flattened,
  Linear -> 16. Last stage: global average, Linear -> 224 - 3*16 = 176.
* **Hyper network**: the hyper input map through 1x1 convs C -> C_last/2 -> C_last/4 ->
  112 with ReLU (2048 -> 1024 -> 512 -> 112 for ResNet-50), on a 7x7 grid.
* **Weight generators**: 3x3 convs on the 112x7x7 map reshaped to each target layer's
  (f_out, f_in) weight; fc5's weight and every bias from Linear layers on the global
  mean of that 112-channel map (after the 1x1 convs), a 112-d vector.
* **Target network**: 224 -> 112 -> 56 -> 28 -> 14 -> 1, sigmoid after each hidden
  layer, weights per image (batched matmul, so gradients reach the hyper network).

Pooling is adaptive, so 224 inputs are pooled exactly as the original's fixed
``AvgPool2d(7)`` and other sizes (256, 384) still run (the original hard-codes 224: at
other sizes its fixed pools give other map sizes, which its Linear layers and weight
reshapes do not fit).

Hyper input
-----------
``hyper_input="last"`` is the original: the hyper network sees the last stage only.

``hyper_input="multiscale"`` gives it every stage (all scales, not only the last)::

    stage 1 (C1 x H1 x W1) --adaptive avg pool--> C1 x 7 x 7 --+
    stage 2 (C2 x H2 x W2) --adaptive avg pool--> C2 x 7 x 7 --+-- concat on channels
    stage 3 (C3 x H3 x W3) --adaptive avg pool--> C3 x 7 x 7 --+   (C1+C2+C3+C4) x 7 x 7
    stage 4 (C4 x 7 x 7) ---------------------------------------+          |
                                  1x1 convs -> C4/2 -> C4/4 -> 112, ReLU --+
                                  -> weight generators (unchanged)

Pooling every stage to the last stage's grid keeps a spatial map for the 3x3 weight
generators. The concatenated map has 96+192+384+768 = 1440 channels for Swin-T (3840
for ResNet-50); only the first 1x1 conv grows to take it, and the generators and the
target network keep their sizes. The bias generators and fc5's weight generator see
what they see with ``"last"``: the global mean of the 112-channel map after the 1x1
convs (and ReLUs), not the stages' own global averages; every scale reaches them only
through those convs.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from iqabench.config import HyperInput, HyperIQAConfig
from iqabench.models.backbone import BackboneSpec, create_features_model, describe, stages_nchw


class LDABranch(nn.Module):
    """Local distortion aware branch: (1x1 conv) -> pool to a grid -> Linear."""

    def __init__(self, in_channels: int, grid: int, out_features: int, reduce: bool):
        super().__init__()
        mid = max(1, in_channels // 16) if reduce else in_channels
        self.conv = nn.Conv2d(in_channels, mid, kernel_size=1, bias=False) if reduce else None
        self.grid = grid
        self.fc = nn.Linear(mid * grid * grid, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        x = F.adaptive_avg_pool2d(x, self.grid)  # (B, mid, grid, grid)
        return self.fc(x.flatten(1))  # (B, out_features)


class HyperIQA(nn.Module):
    """Hyper-IQA: ``forward`` maps images in [0, 1] (or uint8) to one score each."""

    def __init__(self, config: HyperIQAConfig = HyperIQAConfig(), pretrained: bool = False,
                 backbone: nn.Module | None = None, weights: str | Path | None = None):
        """``weights``: a local backbone state dict used instead of the hub (offline)."""
        super().__init__()
        if backbone is not None and weights is not None:
            raise ValueError("pass either a built backbone or a weights file, not both")
        self.config = config
        self.backbone = backbone if backbone is not None else create_features_model(
            config.backbone, pretrained=pretrained, input_size=config.input_size,
            weights=weights)
        self.spec: BackboneSpec = describe(self.backbone, config.backbone)
        spec, cfg = self.spec, config
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

        n = len(spec.channels)
        r_last = spec.reductions[-1]
        last_out = cfg.target_in - cfg.lda_out * (n - 1)
        if last_out <= 0:
            raise ValueError(f"target_in {cfg.target_in} too small for {n} LDA branches")
        self.lda = nn.ModuleList(
            [LDABranch(c, max(1, r_last // r), cfg.lda_out, reduce=True)
             for c, r in zip(spec.channels[:-1], spec.reductions[:-1])]
            + [LDABranch(spec.channels[-1], 1, last_out, reduce=False)])

        c_last = spec.channels[-1]
        hyper_in = sum(spec.channels) if cfg.hyper_input == "multiscale" else c_last
        h1, h2 = max(cfg.hyper_channels, c_last // 2), max(cfg.hyper_channels, c_last // 4)
        self.hyper_in = nn.Sequential(
            nn.Conv2d(hyper_in, h1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(h1, h2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(h2, cfg.hyper_channels, 1), nn.ReLU(inplace=True))

        sizes = (cfg.target_in, *cfg.target_sizes)  # 224, 112, 56, 28, 14
        cells = cfg.feature_size ** 2
        self.weight_convs = nn.ModuleList()
        for f_in, f_out in zip(sizes[:-1], sizes[1:]):
            if (f_in * f_out) % cells:
                raise ValueError(f"target layer {f_in}x{f_out} not divisible by {cells} cells")
            self.weight_convs.append(
                nn.Conv2d(cfg.hyper_channels, f_in * f_out // cells, 3, padding=1))
        self.weight_fc_last = nn.Linear(cfg.hyper_channels, sizes[-1])
        self.bias_fcs = nn.ModuleList(nn.Linear(cfg.hyper_channels, f) for f in (*sizes[1:], 1))
        self._target_sizes = sizes
        self.reset_heads()

    def reset_heads(self) -> None:
        """Kaiming-normal init of LDA and generator weights, as the original code does.

        ``init="centered"`` then scales fc5's weight and bias generators by 0.1 and sets
        the output bias to ``score_init`` (0.5 when it is None; training sets the mean
        of its training labels with :meth:`set_output_bias`), so first predictions sit
        near it.
        """
        for branch in self.lda:
            if branch.conv is not None:
                nn.init.kaiming_normal_(branch.conv.weight)
            nn.init.kaiming_normal_(branch.fc.weight)
        for m in [*self.weight_convs, self.weight_fc_last, *self.bias_fcs]:
            nn.init.kaiming_normal_(m.weight)
        if self.config.init == "centered":
            with torch.no_grad():
                for m in (self.weight_fc_last, self.bias_fcs[-1]):
                    m.weight.mul_(0.1)
                self.weight_fc_last.bias.mul_(0.1)
            score_init = self.config.score_init
            self.set_output_bias(0.5 if score_init is None else score_init)

    def set_output_bias(self, value: float) -> None:
        """Set the bias of the output bias generator (the target network's last bias
        is this plus a term of the pooled map), e.g. to the mean training label."""
        with torch.no_grad():
            self.bias_fcs[-1].bias.fill_(float(value))

    def head_parameters(self) -> list[nn.Parameter]:
        """Everything but the backbone (the original trains these at 10x the lr)."""
        backbone_ids = {id(p) for p in self.backbone.parameters()}
        return [p for p in self.parameters() if id(p) not in backbone_ids]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return stages_nchw(self.backbone(x), self.spec)

    def target_params(self, stages: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Generate the per-image target network: weights (B, f_out, f_in), biases (B, f_out).

        The hyper input (last stage, or every stage pooled to the grid and concatenated)
        goes through the 1x1 convs to the 112-channel map; the 3x3 convs turn that map
        into fc1-fc4's weights, Linear layers on its global mean into fc5's weight and
        every bias."""
        grid = self.config.feature_size
        if self.config.hyper_input == "multiscale":
            hyper = torch.cat([F.adaptive_avg_pool2d(s, grid) for s in stages], dim=1)
        else:
            hyper = F.adaptive_avg_pool2d(stages[-1], grid)
        hyper = self.hyper_in(hyper)  # (B, 112, 7, 7)
        pooled = hyper.mean(dim=(2, 3))  # (B, 112): what fc5's weight and the biases see
        b = hyper.shape[0]
        sizes = self._target_sizes
        params: dict[str, torch.Tensor] = {}
        for i, conv in enumerate(self.weight_convs):
            # (B, f_in*f_out/49, 7, 7) flattened C,H,W -> (B, f_out, f_in), as the original
            params[f"w{i + 1}"] = conv(hyper).reshape(b, sizes[i + 1], sizes[i])
        params[f"w{len(sizes)}"] = self.weight_fc_last(pooled).reshape(b, 1, sizes[-1])
        for i, fc in enumerate(self.bias_fcs):
            params[f"b{i + 1}"] = fc(pooled)
        return params

    def target_input(self, stages: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([lda(s) for lda, s in zip(self.lda, stages)], dim=1)  # (B, 224)

    @staticmethod
    def run_target(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply each image's own target network to its (B, 224) input."""
        n = len([k for k in params if k.startswith("w")])
        h = x.unsqueeze(-1)  # (B, f_in, 1)
        for i in range(1, n + 1):
            h = torch.bmm(params[f"w{i}"], h) + params[f"b{i}"].unsqueeze(-1)  # (B, f_out, 1)
            if i < n:
                h = torch.sigmoid(h)
        return h.flatten(1).squeeze(1)  # (B,)

    def forward(self, x: torch.Tensor, return_params: bool = False):
        """Scores (B,) for images (B, 3, H, W); with ``return_params`` also the
        generated target-network weights and biases per image.

        Under autocast only the backbone runs in low precision: the heads run in fp32,
        because bf16 scores (8 bits of mantissa) tie and blur the ranking SRCC measures.
        """
        stages = self.features(x)
        with torch.autocast(x.device.type, enabled=False):
            stages = [s.float() for s in stages]
            params = self.target_params(stages)
            scores = self.run_target(self.target_input(stages), params)
        return (scores, params) if return_params else scores


def build_model(backbone: str = "resnet50", hyper_input: HyperInput = "last",
                pretrained: bool = False, weights: str | Path | None = None,
                **overrides) -> HyperIQA:
    """Notebook entry point: ``build_model("swin_tiny_patch4_window7_224", "multiscale")``.

    Offline, pass ``weights=FILE`` (a backbone state dict) instead of ``pretrained``.
    """
    config = HyperIQAConfig(backbone=backbone, hyper_input=hyper_input, **overrides)
    return HyperIQA(config, pretrained=pretrained, weights=weights)


def flatten_target_params(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, D) vector of every generated weight and bias per image, for the PCA plot."""
    keys = sorted(params, key=lambda k: (k[0], int(k[1:])))
    return torch.cat([params[k].flatten(1) for k in keys], dim=1)


__all__ = ["HyperIQA", "build_model", "flatten_target_params"]
