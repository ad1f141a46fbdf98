"""PNG plots of a comparison: validation curves, predicted-vs-true scatter, weight PCA.

Figures are :class:`matplotlib.figure.Figure` objects saved straight to PNG, so no
pyplot state and no backend switch is involved. Each function returns the files it
wrote and the notes it has for the report.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from iqabench.analysis.types import (
    Comparison,
    ScatterFigure,
    ScatterPanel,
    WeightProjection,
    Written,
)
from iqabench.render.tables import LOSS_NAMES, slug

DPI = 120


def save(fig: Figure, path: Path) -> Path:
    """``fig`` as a PNG at ``path``."""
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def plot_validation_curves(comp: Comparison, out: Path) -> Written:
    """Validation SRCC and PLCC per epoch, one figure per training dataset, one line per
    run (solid: L1, dashed: L1 + alpha*rank); median over rounds, band min-max."""
    paths = []
    colours = matplotlib.colormaps["tab10"]
    by_dataset: dict[str, list[int]] = {}
    for i, run in enumerate(comp.runs):
        if any(r.log is not None for r in run.rounds):
            by_dataset.setdefault(run.train_dataset, []).append(i)
    for dataset, indices in by_dataset.items():
        fig = Figure(figsize=(12, 4.8), layout="constrained")
        axes = fig.subplots(1, 2)
        multi = False
        for i in indices:
            run = comp.runs[i]
            style = "--" if run.uses_rank else "-"
            for ax, col in zip(axes, ("val_srcc", "val_plcc")):
                logs = [r.log.set_index("epoch")[col] for r in run.rounds
                        if r.log is not None and col in r.log.columns]
                if not logs:
                    continue
                curves = pd.concat(logs, axis=1)
                multi |= curves.shape[1] > 1
                med = curves.median(axis=1)
                ax.plot(med.index, med.to_numpy(), style, marker="o", ms=3, color=colours(i % 10),
                        label=f"{run.label} ({LOSS_NAMES.get(run.loss, run.loss)})")
                if curves.shape[1] > 1:
                    ax.fill_between(med.index, curves.min(axis=1), curves.max(axis=1),
                                    color=colours(i % 10), alpha=0.15)
        for ax, name in zip(axes, ("SRCC", "PLCC")):
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"validation {name}")
            ax.set_title(f"validation {name} per epoch")
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].legend(fontsize=8, loc="lower right")
        how = "median over rounds, band = min–max" if multi else "one round per run"
        fig.suptitle(f"Validation SRCC and PLCC per epoch on {dataset}: L1 (solid) vs "
                     f"L1 + α·rank (dashed) ({how})")
        paths.append(save(fig, out / f"val_curves_{slug(dataset)}.png"))
    notes = [] if paths else ["no log.csv in any run: validation curves skipped"]
    return Written(paths, notes)


def _scatter_panel(ax, panel: ScatterPanel, lims: tuple[float, float]) -> None:
    ax.scatter(panel.pred, panel.mos, s=10, alpha=0.55, color="tab:blue", label="test images")
    ax.plot(panel.fit_x, panel.fit_y, color="tab:red", lw=2, label="5-parameter logistic fit")
    ax.plot(lims, lims, "--", color="grey", lw=1, label="y = x")
    ax.set_xlim(lims)
    ax.set_ylim(lims)
    ax.set_aspect("equal")
    ax.set_xlabel("predicted score (MOS units)")
    ax.set_ylabel("true MOS")
    ax.set_title(f"{panel.label}\nSRCC {panel.srcc:.3f}   PLCC {panel.plcc:.3f}   "
                 f"(n={len(panel.mos)}, round {panel.round})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def plot_scatter(figures: list[ScatterFigure], out: Path) -> Written:
    """Predicted vs true MOS, one PNG per figure, its panels side by side on shared axes."""
    paths = []
    for figure in figures:
        panels = figure.panels
        values = np.concatenate([np.concatenate([p.pred, p.mos]) for p in panels])
        pad = 0.05 * (values.max() - values.min() or 1.0)
        lims = (float(values.min() - pad), float(values.max() + pad))
        fig = Figure(figsize=(5.5 * len(panels), 5.6), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)
        for ax, panel in zip(axes[0], panels):
            _scatter_panel(ax, panel, lims)
        what = "baseline vs variant" if len(panels) == 2 else "one run"
        fig.suptitle(f"Predicted vs true MOS on {figure.dataset} test images ({what})")
        name = f"scatter_{slug(figure.dataset)}_{slug(figure.label)}.png"
        paths.append(save(fig, out / name))
    return Written(paths)


def _pca_panel(fig: Figure, ax, proj: WeightProjection, colour_of: dict) -> None:
    sample, coords, share = proj.sample, proj.coords, proj.share
    if sample.groups:
        for key in sorted(set(sample.groups), key=lambda k: (k == "other", k)):
            mask = np.array([g == key for g in sample.groups])
            ax.scatter(coords[mask, 0], coords[mask, 1], s=14, alpha=0.75, color=colour_of[key],
                       label=key)
        handles = [Line2D([], [], marker="o", ls="", color=colour_of[k], label=k)
                   for k in sorted(colour_of, key=lambda k: (k == "other", k))]
        ax.legend(handles=handles, fontsize=7, loc="best", title=sample.group_kind,
                  title_fontsize=7)
    else:
        sc = ax.scatter(coords[:, 0], coords[:, 1], c=sample.mos, cmap="viridis", s=14)
        fig.colorbar(sc, ax=ax, label="MOS")
    sep = "n/a" if math.isnan(proj.separation) else f"{proj.separation:.2f}"
    ax.set_title(f"{sample.run} (round {sample.round})\nPC1 {share[0]:.0%}, PC2 {share[1]:.0%} of "
                 f"variance; between/within-group scatter {sep}", fontsize=9)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.grid(alpha=0.3)


def plot_weight_pca(figures: list[list[WeightProjection]], out: Path) -> Written:
    """PCA of the generated target-network weights per test image (the Hyper-IQA paper's
    Figure 5), one PNG per list of panels (baseline next to a variant), named after the
    last panel's run."""
    paths = []
    for panels in figures:
        keys = sorted({g for p in panels for g in p.sample.groups},
                      key=lambda k: (k == "other", k))
        cmap = matplotlib.colormaps["tab10" if len(keys) <= 10 else "tab20"]
        colour_of = {k: ("lightgrey" if k == "other" else cmap(i % cmap.N))
                     for i, k in enumerate(keys)}
        fig = Figure(figsize=(6 * len(panels), 5.6), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)
        for ax, proj in zip(axes[0], panels):
            _pca_panel(fig, ax, proj, colour_of)
        first = panels[0].sample
        kind = first.group_kind if first.groups else "MOS (no content groups)"
        fig.suptitle(f"PCA of generated target-network weights per test image "
                     f"({first.dataset}, {len(first.names)} images, one center crop), "
                     f"coloured by {kind}")
        paths.append(save(fig, out / f"pca_weights_{slug(panels[-1].sample.run)}.png"))
    return Written(paths)
