"""Plots of a comparison: training curves, predicted-vs-true scatter, weight PCA.

Figures are :class:`matplotlib.figure.Figure` objects saved straight to PNG and PDF, so
no pyplot state and no backend switch is involved. Runs appear under their short names
(``Run.name``); legends sit outside the axes; epoch axes have integer ticks. Each
function returns the files it wrote and the notes it has for the report.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from iqabench.analysis.types import (
    Comparison,
    Run,
    ScatterFigure,
    ScatterPanel,
    WeightProjection,
    Written,
)
from iqabench.render.tables import slug

DPI = 120
#: Formats every figure is saved in (the PNG is what report.md shows).
FORMATS = ("png", "pdf")


def save(fig: Figure, path: Path) -> list[Path]:
    """``fig`` as ``path`` (PNG) and beside it as PDF; the paths written, PNG first."""
    paths = []
    for ext in FORMATS:
        target = Path(path).with_suffix(f".{ext}")
        fig.savefig(target, dpi=DPI, bbox_inches="tight")
        paths.append(target)
    return paths


def _epoch_axis(ax, last_epoch: float) -> None:
    """x from 0 to the last epoch, integer ticks only."""
    last = max(1.0, float(last_epoch))
    ax.set_xlim(0, last + max(0.1, 0.03 * last))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


def _step_positions(steps: pd.DataFrame) -> np.ndarray:
    """Each optimiser step as a fractional epoch: step k of n in epoch e sits at
    ``e - 1 + (k + 1) / n`` (epochs count from 1)."""
    epochs = steps["epoch"].to_numpy(dtype=float)
    x = np.empty(len(steps))
    for epoch in np.unique(epochs):
        idx = np.flatnonzero(epochs == epoch)
        x[idx] = epoch - 1 + (np.arange(len(idx)) + 1) / len(idx)
    return x


def smooth(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average over ``span`` steps (pandas ``ewm``, bias-adjusted)."""
    return pd.Series(values).ewm(span=max(1, span), adjust=True).mean().to_numpy()


def _band(ax, x, curves: pd.DataFrame, colour, style: str, label: str, marker=None,
          width: float = 1.8) -> None:
    """Mean over rounds as a line; the min-max over rounds as a band when there are
    several."""
    mean = curves.mean(axis=1)
    ax.plot(x, mean.to_numpy(), style, color=colour, lw=width, marker=marker, ms=4, label=label)
    if curves.shape[1] > 1:
        ax.fill_between(x, curves.min(axis=1).to_numpy(), curves.max(axis=1).to_numpy(),
                        color=colour, alpha=0.18, lw=0)


def _loss_curves(ax, run: Run, colour, style: str) -> tuple[float, bool]:
    """Training loss of a run on ``ax``: per step (raw faint, smoothed bold, rounds as
    a band) from the steps file, else per epoch from log.csv. Returns the last epoch
    drawn and whether per-step data was used."""
    steps = [r.steps for r in run.rounds if r.steps is not None and len(r.steps)]
    if steps:
        smoothed = []
        for frame in steps:
            x = _step_positions(frame)
            y = frame["loss"].to_numpy(dtype=float)
            ax.plot(x, y, "-", color=colour, lw=0.7, alpha=0.3)
            smoothed.append(pd.Series(smooth(y, max(5, len(y) // 25)), index=np.round(x, 9)))
        curves = pd.concat(smoothed, axis=1).sort_index().interpolate(limit_area="inside")
        _band(ax, curves.index.to_numpy(), curves, colour, style, run.name)
        return float(curves.index.max()), True
    logs = [r.log.set_index("epoch")["train_loss"] for r in run.rounds
            if r.log is not None and "train_loss" in r.log.columns]
    if not logs:
        return 0.0, False
    curves = pd.concat(logs, axis=1).sort_index()
    _band(ax, curves.index.to_numpy(dtype=float), curves, colour, style, run.name, marker="o")
    return float(curves.index.max()), False


def plot_curves(comp: Comparison, out: Path) -> Written:
    """Per training dataset, one figure: training loss per step (smoothed, raw faint)
    and validation SRCC and PLCC per epoch, one colour per run, L1 solid and
    L1 + α·rank dashed, rounds as bands (mean and min-max); legend below the axes."""
    paths, notes = [], []
    colours = matplotlib.colormaps["tab10"]
    by_dataset: dict[str, list[int]] = {}
    for i, run in enumerate(comp.runs):
        if any(r.log is not None or r.steps is not None for r in run.rounds):
            by_dataset.setdefault(run.train_dataset, []).append(i)
    for dataset, indices in by_dataset.items():
        fig = Figure(figsize=(15, 4.6 + 0.25 * math.ceil(len(indices) / 3)), layout="constrained")
        axes = fig.subplots(1, 3)
        last, per_step, multi, handles = 1.0, [], False, []
        for i in indices:
            run = comp.runs[i]
            colour, style = colours(i % 10), "--" if run.uses_rank else "-"
            end, stepped = _loss_curves(axes[0], run, colour, style)
            last, per_step = max(last, end), per_step + [stepped]
            multi |= len(run.rounds) > 1
            for ax, col in zip(axes[1:], ("val_srcc", "val_plcc")):
                logs = [r.log.set_index("epoch")[col] for r in run.rounds
                        if r.log is not None and col in r.log.columns]
                if logs:
                    curves = pd.concat(logs, axis=1).sort_index()
                    last = max(last, float(curves.index.max()))
                    _band(ax, curves.index.to_numpy(dtype=float), curves, colour, style,
                          run.name, marker="o")
            handles.append(Line2D([], [], color=colour, ls=style, lw=1.8, label=run.name))
        if all(per_step):
            loss_title = "training loss per step (smoothed; raw faint)"
        elif any(per_step):
            loss_title = "training loss per step where logged, else per epoch"
        else:
            loss_title = "training loss per epoch (log.csv: no per-step log)"
            notes.append(f"curves_{slug(dataset)}: no per-step loss file in the runs; the loss "
                         "panel shows log.csv's train_loss per epoch")
        for ax, title, ylabel in ((axes[0], loss_title, "training loss"),
                                  (axes[1], "validation SRCC per epoch", "validation SRCC"),
                                  (axes[2], "validation PLCC per epoch", "validation PLCC")):
            _epoch_axis(ax, last)
            ax.set_title(title, fontsize=10)
            ax.set_ylabel(ylabel)
        fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)),
                   fontsize=9, frameon=False)
        how = "mean over rounds, band = min–max" if multi else "one round per run"
        fig.suptitle(f"Training on {dataset}: L1 (solid) vs L1 + α·rank (dashed); {how}")
        paths += save(fig, out / f"curves_{slug(dataset)}.png")
    if not paths:
        notes.append("no log.csv in any run: training curves skipped")
    return Written(paths, notes)


def _scatter_panel(ax, panel: ScatterPanel, xlim: tuple[float, float],
                   ylim: tuple[float, float]) -> None:
    ax.scatter(panel.pred, panel.mos, s=9, alpha=0.5, color="tab:blue", lw=0)
    ax.plot(panel.fit_x, panel.fit_y, color="tab:red", lw=2)
    lo, hi = max(xlim[0], ylim[0]), min(xlim[1], ylim[1])
    if lo < hi:
        ax.plot([lo, hi], [lo, hi], "--", color="grey", lw=1)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    form = panel.fit_form or "logistic"
    ax.set_title(f"{panel.label}\nSRCC {panel.srcc:.3f}   PLCC {panel.plcc:.3f}   "
                 f"(n={len(panel.mos)}, round {panel.round})\nfit: {form}", fontsize=8.5)
    ax.grid(alpha=0.3)


def _limits(values: np.ndarray) -> tuple[float, float]:
    pad = 0.05 * (values.max() - values.min() or 1.0)
    return float(values.min() - pad), float(values.max() + pad)


def plot_scatter(figures: list[ScatterFigure], out: Path, ncols: int = 4) -> Written:
    """Predicted vs true MOS in one figure: a block of panels per test set (one panel
    per run, x (predictions) and y (MOS) ranges shared within the block), the logistic
    fit and its form in each panel, y = x where the ranges overlap, the legend below
    the axes."""
    figures = [f for f in figures if f.panels]
    if not figures:
        return Written(notes=["no test predictions to plot: scatter figure skipped"])
    cols = min(ncols, max(len(f.panels) for f in figures))
    layout = [(f, math.ceil(len(f.panels) / cols)) for f in figures]
    n_rows = sum(rows for _, rows in layout)
    fig = Figure(figsize=(4.2 * cols, 4.6 * n_rows + 0.6), layout="constrained")
    axes = fig.subplots(n_rows, cols, squeeze=False)
    row = 0
    for figure, rows in layout:
        xlim = _limits(np.concatenate([p.pred for p in figure.panels]))
        ylim = _limits(np.concatenate([p.mos for p in figure.panels]))
        block = axes[row:row + rows].ravel()
        for k, ax in enumerate(block):
            if k >= len(figure.panels):
                ax.axis("off")
                continue
            _scatter_panel(ax, figure.panels[k], xlim, ylim)
            if k % cols == 0:
                ax.set_ylabel(f"true MOS ({figure.dataset})")
            if k >= len(figure.panels) - cols:
                ax.set_xlabel("predicted score (MOS units)")
        row += rows
    handles = [Line2D([], [], marker="o", ls="", color="tab:blue", alpha=0.6, label="test image"),
               Line2D([], [], color="tab:red", lw=2, label="monotonic logistic fit (form in "
                      "each panel title)"),
               Line2D([], [], color="grey", ls="--", lw=1, label="y = x")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    sets = ", ".join(f.dataset for f in figures)
    fig.suptitle(f"Predicted vs true MOS on the test images ({sets}), one panel per run "
                 "(its first round); SRCC/PLCC on raw predictions")
    return Written(save(fig, out / "scatter.png"))


def _pca_panel(fig: Figure, ax, proj: WeightProjection, colour_of: dict) -> None:
    sample, coords, share = proj.sample, proj.coords, proj.share
    if sample.groups:
        for key in sorted(set(sample.groups), key=lambda k: (k == "other", k)):
            mask = np.array([g == key for g in sample.groups])
            ax.scatter(coords[mask, 0], coords[mask, 1], s=14, alpha=0.75, color=colour_of[key],
                       label=key)
        handles = [Line2D([], [], marker="o", ls="", color=colour_of[k], label=k)
                   for k in sorted(colour_of, key=lambda k: (k == "other", k))]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1),
                  title=sample.group_kind, title_fontsize=7, frameon=False)
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
        paths += save(fig, out / f"pca_weights_{slug(panels[-1].sample.run)}.png")
    return Written(paths)
