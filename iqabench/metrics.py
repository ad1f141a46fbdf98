"""IQA agreement metrics between predictions and MOS.

Correlations are computed on the whole set at once (they cannot be averaged over
batches). PLCC is raw by default; ``logistic_plcc`` fits the VQEG 4- or 5-parameter
logistic first. ``bootstrap_ci`` and ``paired_bootstrap`` resample images.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy import optimize, stats

METRICS = ("srcc", "plcc", "krcc", "rmse")


def _arrays(pred, mos) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).ravel()
    y = np.asarray(mos, dtype=np.float64).ravel()
    if p.shape != y.shape:
        raise ValueError(f"{p.size} predictions for {y.size} scores")
    if p.size < 2:
        raise ValueError("need at least 2 images to correlate")
    return p, y


def srcc(pred, mos) -> float:
    """Spearman rank correlation."""
    p, y = _arrays(pred, mos)
    return float(stats.spearmanr(p, y).statistic)


def plcc(pred, mos) -> float:
    """Pearson linear correlation, on raw predictions."""
    p, y = _arrays(pred, mos)
    return float(stats.pearsonr(p, y).statistic)


def krcc(pred, mos) -> float:
    """Kendall rank correlation (tau-b)."""
    p, y = _arrays(pred, mos)
    return float(stats.kendalltau(p, y).statistic)


def rmse(pred, mos) -> float:
    """Root mean squared error, in label units."""
    p, y = _arrays(pred, mos)
    return float(np.sqrt(np.mean((p - y) ** 2)))


def logistic4(x, b1, b2, b3, b4):
    """VQEG 4-parameter logistic."""
    with np.errstate(over="ignore"):
        return (b1 - b2) / (1 + np.exp(-(x - b3) / np.abs(b4))) + b2


def logistic5(x, b1, b2, b3, b4, b5):
    """VQEG 5-parameter logistic (Sheikh et al. 2006)."""
    with np.errstate(over="ignore"):
        return b1 * (0.5 - 1 / (1 + np.exp(b2 * (x - b3)))) + b4 * x + b5


def fit_logistic(pred, mos, params: int = 5) -> Callable[[np.ndarray], np.ndarray]:
    """Fit the logistic mapping predictions onto MOS; returns the fitted function.

    The fit is non-convex, so it starts from several points (an S-curve spanning the
    MOS range at a few slopes, and a near-linear one) and keeps the least-squares best;
    a linear fit is the fallback when none converges.
    """
    p, y = _arrays(pred, mos)
    scale = np.std(p) + 1e-9
    if params == 4:
        f = logistic4
        starts = [[y.max(), y.min(), np.median(p), s * scale] for s in (0.25, 0.5, 1.0, 2.0)]
    elif params == 5:
        f = logistic5
        starts = [[k * np.ptp(y), s / scale, np.mean(p), 0.0, np.mean(y)]
                  for k in (1.0, 2.0) for s in (0.5, 1.0, 2.0, 4.0)]
        starts.append([np.ptp(y), 1e-3 / scale, np.mean(p), 1.0, 0.0])
    else:
        raise ValueError(f"logistic fit takes 4 or 5 parameters, not {params}")
    a, b = np.polyfit(p, y, 1)
    best, best_sse = (lambda x: a * np.asarray(x, dtype=np.float64) + b), np.sum((a * p + b - y) ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p0 in starts:
            try:
                coef, _ = optimize.curve_fit(f, p, y, p0=p0, maxfev=20000)
            except (RuntimeError, ValueError):
                continue
            sse = np.sum((f(p, *coef) - y) ** 2)
            if np.isfinite(sse) and sse < best_sse:
                best_sse = sse
                best = (lambda c: (lambda x: f(np.asarray(x, dtype=np.float64), *c)))(coef)
    return best


def logistic_plcc(pred, mos, params: int = 5) -> float:
    """PLCC after the VQEG logistic fit."""
    p, y = _arrays(pred, mos)
    return plcc(fit_logistic(p, y, params)(p), y)


def compute_metrics(pred, mos, logistic: int | None = None) -> dict[str, float]:
    """SRCC, PLCC, KRCC, RMSE (and ``plcc_logistic`` when ``logistic`` is 4 or 5)."""
    p, y = _arrays(pred, mos)
    out = {"srcc": srcc(p, y), "plcc": plcc(p, y), "krcc": krcc(p, y), "rmse": rmse(p, y)}
    if logistic:
        out["plcc_logistic"] = logistic_plcc(p, y, logistic)
    return out


_FAST = {"srcc": srcc, "plcc": plcc, "krcc": krcc, "rmse": rmse}


def bootstrap_ci(pred, mos, metric: str = "srcc", n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of a metric, resampling images."""
    p, y = _arrays(pred, mos)
    fn = _FAST[metric]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, p.size, size=(n_boot, p.size))
    vals = np.array([fn(p[i], y[i]) for i in idx])
    alpha = (1 - level) / 2
    return float(np.nanquantile(vals, alpha)), float(np.nanquantile(vals, 1 - alpha))


def paired_bootstrap(pred_a, pred_b, mos, metric: str = "srcc", n_boot: int = 1000,
                     level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Difference ``metric(b) - metric(a)`` on the same images, with a paired bootstrap
    interval (both models scored on each resample) and a two-sided p-value."""
    a, y = _arrays(pred_a, mos)
    b, _ = _arrays(pred_b, mos)
    fn = _FAST[metric]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, y.size, size=(n_boot, y.size))
    diffs = np.array([fn(b[i], y[i]) - fn(a[i], y[i]) for i in idx])
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(diffs, alpha), np.nanquantile(diffs, 1 - alpha)
    p_two = 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))
    return {"diff": fn(b, y) - fn(a, y), "ci_low": float(lo), "ci_high": float(hi),
            "p_value": float(min(1.0, p_two)), "significant": bool(lo > 0 or hi < 0)}
