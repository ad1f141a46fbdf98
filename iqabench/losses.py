"""Training losses: L1, pairwise ranking hinge, and their sum.

SRCC only cares about order, L1 only about distance; the composite
``l1 + alpha * rank`` asks for both.

Label scale matters for the ranking margin: a margin of 0.1 is a tenth of the scale on
labels normalised to [0, 1] (``label_scale="unit"``, the default) but almost nothing on
0-100 MOS. With ``label_scale="raw"`` (the original recipe's raw labels) the margin is
therefore multiplied by the dataset's MOS range, so ``--margin 0.1`` means the same
thing on every dataset either way. :meth:`IQALoss.describe` says which applies; the
trainer logs it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from iqabench.config import LabelScale, LossKind

LOSS_KINDS = ("l1", "rank", "l1+rank")
LABEL_SCALES = ("unit", "raw")


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error, in label units."""
    return F.l1_loss(pred, target)


def ranking_loss(pred: torch.Tensor, target: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Pairwise hinge ``relu(-(p_i - p_j) * sign(y_i - y_j) + margin)`` averaged over
    every pair in the batch whose labels differ.

    Pairs with equal labels (for instance two crops of one image) carry no order and
    are left out. A batch without any valid pair gives a zero that still has a graph,
    so ``backward`` works the same on every step.
    """
    pred, target = pred.flatten(), target.flatten()
    pred_diff = pred.unsqueeze(1) - pred.unsqueeze(0)  # (B, B): p_i - p_j
    label_sign = torch.sign(target.unsqueeze(1) - target.unsqueeze(0))  # (B, B)
    valid = label_sign != 0
    if not bool(valid.any()):
        return pred.sum() * 0.0
    hinge = F.relu(-pred_diff * label_sign + margin)
    return hinge[valid].mean()


class IQALoss(nn.Module):
    """``l1``, ``rank`` or ``l1 + alpha * rank``; returns the total and its parts."""

    def __init__(self, kind: LossKind = "l1", alpha: float = 1.0, margin: float = 0.1,
                 label_scale: LabelScale = "unit", label_range: tuple[float, float] = (0.0, 1.0)):
        super().__init__()
        if kind not in LOSS_KINDS:
            raise ValueError(f"loss must be one of {', '.join(LOSS_KINDS)}, not {kind!r}")
        if label_scale not in LABEL_SCALES:
            raise ValueError(f"label scale must be unit or raw, not {label_scale!r}")
        self.kind, self.alpha, self.margin = kind, float(alpha), float(margin)
        self.label_scale = label_scale
        lo, hi = label_range
        # the margin is given in [0, 1] units; on raw labels it spans the same fraction
        self.effective_margin = self.margin * ((hi - lo) if label_scale == "raw" else 1.0)

    def forward(self, pred: torch.Tensor, target: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pred, target = pred.float(), target.float()
        parts: dict[str, torch.Tensor] = {}
        if self.kind in ("l1", "l1+rank"):
            parts["l1"] = l1_loss(pred, target)
        if self.kind in ("rank", "l1+rank"):
            parts["rank"] = ranking_loss(pred, target, self.effective_margin)
        if self.kind == "l1":
            total = parts["l1"]
        elif self.kind == "rank":
            total = parts["rank"]
        else:
            total = parts["l1"] + self.alpha * parts["rank"]
        return total, parts

    def describe(self) -> str:
        """One line for the log: what is optimised, and on which label scale."""
        scale = ("labels normalised to [0, 1] by the dataset's MOS range"
                 if self.label_scale == "unit" else "raw MOS labels")
        text = {"l1": "L1", "rank": "pairwise ranking hinge",
                "l1+rank": f"L1 + {self.alpha:g} x pairwise ranking hinge"}[self.kind]
        if self.kind != "l1":
            text += f" (margin {self.margin:g} in [0, 1] units"
            text += (f" = {self.effective_margin:g} raw)" if self.label_scale == "raw" else ")")
        return f"loss: {text}; {scale}"
