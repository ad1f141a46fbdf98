"""The before/after diagram of the hyper network's input, drawn from traced shapes.

Shapes come from :class:`~iqabench.analysis.types.HyperFlow` traces of real forward
passes; this module only draws them on a :class:`matplotlib.figure.Figure`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from iqabench.analysis.types import FlowDiagram, HyperFlow, Written, format_shape
from iqabench.render.plots import save
from iqabench.render.tables import slug


def _box(ax, x, y, w, h, text, colour="#dbe9f6", edge="#3b6ea5", fontsize=7.5):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle="round,pad=0.02,rounding_size=0.12",
                                fc=colour, ec=edge, lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, colour="#444444", style="-|>"):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=10, color=colour,
                                 lw=1.0, shrinkA=0, shrinkB=0))


def _draw_flow(ax, flow: HyperFlow, changed: bool) -> None:
    """One panel: input -> backbone stages -> pooling/concat -> hyper_in -> generators."""
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 11)
    ax.axis("off")
    new, new_edge = ("#fde2c4", "#d9822b") if changed else ("#dbe9f6", "#3b6ea5")
    idle = ("#eeeeee", "#aaaaaa")
    _box(ax, 5, 10.4, 3.4, 0.6, f"input crop {format_shape(flow.input)}")
    _box(ax, 5, 9.3, 8.8, 0.6, f"backbone {flow.backbone} (timm, features_only)")
    _arrow(ax, (5, 10.1), (5, 9.6))
    n = len(flow.stages)
    xs = np.linspace(1.25, 8.75, n)
    pooled = iter(flow.pooled)
    pool_y, cat_y = 6.4, 5.0
    for i, (x, shape, used) in enumerate(zip(xs, flow.stages, flow.stage_used)):
        fc, ec = ("#dbe9f6", "#3b6ea5") if used else idle
        _box(ax, x, 7.9, 2.1, 0.75, f"stage {i + 1}\n{format_shape(shape)}", fc, ec)
        _arrow(ax, (x, 9.0), (x, 8.28), colour="#888888")
        if used:
            p = next(pooled)
            is_new = changed and i < n - 1
            _box(ax, x, pool_y, 2.1, 0.75, f"adaptive avg pool\n{format_shape(p)}",
                 new if is_new else "#dbe9f6", new_edge if is_new else "#3b6ea5")
            _arrow(ax, (x, 7.52), (x, pool_y + 0.38))
            _arrow(ax, (x, pool_y - 0.38), (5, cat_y + 0.33))
        else:
            ax.text(x, pool_y, "LDA branch only\n(target-net input)", ha="center", va="center",
                    fontsize=7, color="#888888", style="italic")
            _arrow(ax, (x, 7.52), (x, pool_y + 0.3), colour="#bbbbbb")
    if flow.hyper_input == "multiscale":
        cat_text = f"concat on channels → {format_shape(flow.hyper_in_input)}"
    else:
        cat_text = f"hyper-network input {format_shape(flow.hyper_in_input)}"
    _box(ax, 5, cat_y, 5.6, 0.65, cat_text, new if changed else "#dbe9f6",
         new_edge if changed else "#3b6ea5")
    chans = " → ".join(str(s[1]) for s in [flow.hyper_in_input, *flow.hyper_in])
    _box(ax, 5, 3.75, 6.6, 0.8, f"hyper_in: three 1×1 conv + ReLU, channels {chans}\n"
         f"({flow.hyper_in_params:,} parameters)", new if changed else "#dbe9f6",
         new_edge if changed else "#3b6ea5")
    _arrow(ax, (5, cat_y - 0.33), (5, 4.15))
    _box(ax, 3.2, 2.45, 3.2, 0.65, f"hyper map {format_shape(flow.map)}")
    _arrow(ax, (4.2, 3.35), (3.4, 2.78))
    _box(ax, 7.6, 2.45, 2.6, 0.65, f"global avg {format_shape(flow.pooled_map)}")
    _arrow(ax, (4.8, 2.45), (6.3, 2.45))
    p = flow.params
    n_w = len([k for k in p if k.startswith("w")])
    conv_ws = "\n".join(f"w{i + 1} {format_shape(p[f'w{i + 1}'][1:])}  "
                        f"(from {format_shape(flow.weight_convs[i])})" for i in range(n_w - 1))
    _box(ax, 3.2, 0.85, 5.2, 1.45, f"3×3 conv generators → per-image weights\n{conv_ws}",
         "#e3f1df", "#4b8b3b", 7)
    _arrow(ax, (3.2, 2.12), (3.2, 1.58))
    fc_ws = (f"w{n_w} {format_shape(p[f'w{n_w}'][1:])}\n"
             + ", ".join(f"b{i} {format_shape(p[f'b{i}'][1:])}" for i in range(1, n_w + 1)))
    _box(ax, 8.0, 0.85, 3.4, 1.45, f"fc generators →\n{fc_ws}", "#e3f1df", "#4b8b3b", 7)
    _arrow(ax, (7.6, 2.12), (7.9, 1.58))


def plot_dataflow(diagrams: list[FlowDiagram], out: Path) -> Written:
    """One PNG per backbone: the hyper network's input before (last stage only) and
    after (every stage, multiscale), with the traced tensor shapes."""
    paths = []
    for d in diagrams:
        fig = Figure(figsize=(16, 9.4), layout="constrained")
        axes = fig.subplots(1, 2)
        _draw_flow(axes[0], d.before, changed=False)
        axes[0].set_title("Before: hyper network sees the last stage only (original Hyper-IQA)",
                          fontsize=11)
        _draw_flow(axes[1], d.after, changed=True)
        axes[1].set_title("After: hyper network sees every stage (multiscale, orange = changed)",
                          fontsize=11)
        fig.suptitle(f"Data flow into the hyper network, {d.backbone} at {d.input_size} px: "
                     "tensor shapes from a forward pass of each variant (batch 1)", fontsize=13)
        paths += save(fig, out / f"dataflow_{slug(d.backbone)}.png")
    return Written(paths)
