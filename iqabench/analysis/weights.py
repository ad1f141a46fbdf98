"""Generated target-network weights as numbers: colour groups, PCA, cluster separation.

Producing the weights (running a checkpoint) is model work and lives in
:mod:`iqabench.models.introspection`; this module only analyses the matrix.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from iqabench.analysis.types import WeightProjection, WeightSample


def colour_groups(frame: pd.DataFrame, top_k: int = 8) -> tuple[list[str], str]:
    """``group`` where the table has it; else the ``top_k`` most shared content ids;
    else no groups. Returns the colour key per row and what the keys are."""
    if "group" in frame.columns and frame["group"].notna().any():
        return frame["group"].fillna("?").astype(str).tolist(), "group"
    content = frame["content_id"].astype(str) if "content_id" in frame.columns else None
    if content is not None and content.duplicated().any():
        top = content.value_counts().index[:top_k]
        return [c if c in set(top) else "other" for c in content], f"content_id (top {top_k})"
    return [], "none"


def pca_2d(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components (numpy SVD of the centred matrix) and the share of
    variance each explains."""
    x = np.asarray(params, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    coords = x @ vt[:2].T
    var = s ** 2
    share = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    if coords.shape[1] < 2:  # a single image or component: pad
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
        share = np.pad(share, (0, 2 - share.size))
    return coords, share


def separation_ratio(coords: np.ndarray, groups: list[str]) -> float:
    """Between-group over within-group scatter (trace ratio) of ``coords``: larger means
    groups form tighter, further-apart clusters. NaN without two groups."""
    if not groups or len(set(groups)) < 2:
        return math.nan
    g = np.asarray(groups)
    centre = coords.mean(axis=0)
    between = within = 0.0
    for key in set(groups):
        pts = coords[g == key]
        mu = pts.mean(axis=0)
        between += len(pts) * float(((mu - centre) ** 2).sum())
        within += float(((pts - mu) ** 2).sum())
    return between / within if within > 0 else math.inf


def project(sample: WeightSample) -> WeightProjection:
    """The sample on its first two principal components, with their separation ratio."""
    coords, share = pca_2d(sample.params)
    return WeightProjection(sample=sample, coords=coords, share=share,
                            separation=separation_ratio(coords, sample.groups))


def pca_figures(samples: dict[str, WeightSample], baseline: str, order: list[str]
                ) -> list[list[WeightProjection]]:
    """Panels per figure: the baseline's sample next to each variant's, in ``order``
    (run labels); the baseline alone when it is the only sample."""
    base = samples.get(baseline)
    others = [label for label in order if label != baseline and label in samples]
    figures = [([base] if base else []) + [samples[label]] for label in others]
    if base and not others:
        figures = [[base]]
    return [[project(s) for s in panels] for panels in figures]
