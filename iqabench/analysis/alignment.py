"""Pairing rounds of two runs and aligning their per-image test predictions.

Round k of the baseline is paired with round k of the variant (same seed and round
means the same split), or the two rounds directly when each run has exactly one.
Within a round, predictions are aligned on (dataset, name) and only images both runs
scored are used; each aligned image keeps its content id (the baseline's
predictions.csv), so the bootstrap can resample content groups.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iqabench import metrics as iqa_metrics
from iqabench.analysis.types import (
    MIN_COMMON_IMAGES,
    Alignment,
    Comparison,
    RoundResult,
    Run,
    ScatterFigure,
    ScatterPanel,
)


def pair_rounds(base: Run, variant: Run) -> list[tuple[RoundResult, RoundResult]]:
    """Round k with round k; two single-round runs are paired whatever their numbers."""
    if len(base.rounds) == 1 and len(variant.rounds) == 1:
        return [(base.rounds[0], variant.rounds[0])]
    by_round = {r.round: r for r in variant.rounds}
    return [(r, by_round[r.round]) for r in base.rounds if r.round in by_round]


def _units(frame: pd.DataFrame, names: pd.Index) -> np.ndarray:
    """Each image's content id; an image without one (no column, empty) is its own unit."""
    own = pd.Series([f"image:{n}" for n in names], index=names, dtype=object)
    if "content_id" not in frame:
        return own.to_numpy()
    content = frame.loc[names, "content_id"]
    empty = content.isna() | (content.astype(str).str.strip() == "")
    return ("content:" + content.astype(str)).where(~empty, own).to_numpy(dtype=object)


def align(base: Run, variant: Run, dataset: str) -> Alignment:
    """Per paired round, the images of ``dataset`` both runs scored (matched by name),
    with their bootstrap units: ``unit`` is "content group" when images of some round
    share a content id, the units then being content ids, else "image" (names)."""
    strata, rounds, notes, units = [], [], [], []
    pairs = pair_rounds(base, variant)
    if not pairs:
        return Alignment([], [], "not comparable: no round in common")
    partial = 0
    for rb, rv in pairs:
        fb = rb.predictions[rb.predictions["dataset"] == dataset].set_index("name")
        fv = rv.predictions[rv.predictions["dataset"] == dataset].set_index("name")
        common = fb.index.intersection(fv.index)
        if len(common) < MIN_COMMON_IMAGES:
            continue
        mos_b, mos_v = fb.loc[common, "mos"].to_numpy(float), fv.loc[common, "mos"].to_numpy(float)
        if not np.allclose(mos_b, mos_v, rtol=1e-6, atol=1e-6):
            notes.append(f"round {rb.round}: MOS differ for the same image names")
            continue
        partial += len(common) < max(len(fb), len(fv))
        strata.append((mos_b, fb.loc[common, "pred"].to_numpy(float),
                       fv.loc[common, "pred"].to_numpy(float)))
        units.append(_units(fb, common))
        rounds.append(rb.round)
    if not strata:
        why = notes[0] if notes else f"fewer than {MIN_COMMON_IMAGES} test images in common"
        return Alignment([], [], f"not comparable: {why}")
    if partial:
        notes.append(f"test sets only partly overlap in {partial} round(s); shared images used")
    grouped = any(len(set(u)) < len(u) for u in units)
    return Alignment(strata, rounds, "; ".join(notes), units=units,
                     unit="content group" if grouped else "image")


def scatter_panel(run: Run, pred: np.ndarray, mos: np.ndarray, round_no: int) -> ScatterPanel:
    """One run's predictions against MOS with their correlations and the monotonic
    logistic fit (``fit_form`` names the form it ended in)."""
    fit_x = np.linspace(pred.min(), pred.max(), 200)
    fitted = iqa_metrics.fit_logistic(pred, mos, 5)
    return ScatterPanel(label=run.label, round=round_no, pred=pred, mos=mos,
                        srcc=iqa_metrics.srcc(pred, mos), plcc=iqa_metrics.plcc(pred, mos),
                        fit_x=fit_x, fit_y=np.asarray(fitted(fit_x), dtype=float),
                        fit_form=fitted.description)


def scatter_figures(comp: Comparison) -> list[ScatterFigure]:
    """Baseline and each variant side by side, per test set both scored, on the first
    round they share (the same images in both panels where they align); one run alone
    when there is no variant."""
    pairs = ([(comp.baseline, v) for v in comp.runs if v is not comp.baseline]
             or [(comp.baseline, None)])
    figures = []
    for base, variant in pairs:
        shared = set(comp.summary.loc[comp.summary["run"] == base.label, "dataset"])
        if variant is not None:
            shared &= set(comp.summary.loc[comp.summary["run"] == variant.label, "dataset"])
        for dataset in [d for d in comp.datasets() if d in shared]:
            panels = []
            if variant is not None:
                aligned = align(base, variant, dataset)
                if aligned.strata:
                    mos, pa, pb = aligned.strata[0]
                    r = aligned.rounds[0]
                    panels = [scatter_panel(base, pa, mos, r), scatter_panel(variant, pb, mos, r)]
            if not panels:
                paired = pair_rounds(base, variant) if variant is not None else []
                for side, run in enumerate((base, variant)):
                    if run is None:
                        continue
                    rnd = paired[0][side] if paired else run.rounds[0]
                    f = rnd.predictions[rnd.predictions["dataset"] == dataset]
                    if len(f) >= 3:
                        panels.append(scatter_panel(run, f["pred"].to_numpy(float),
                                                    f["mos"].to_numpy(float), rnd.round))
            if panels:
                figures.append(ScatterFigure(dataset=dataset,
                                             label=(variant or base).label, panels=panels))
    return figures
