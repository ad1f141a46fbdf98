"""IQA agreement metrics between predictions and MOS.

Correlations are computed on the whole set at once (they cannot be averaged over
batches). ``plcc`` and ``rmse`` are on raw predictions; ``plcc_logistic`` and
``rmse_mapped`` (the VQEG RMSE) are on predictions mapped onto MOS by the monotonic
logistic of :func:`fit_logistic`. ``bootstrap_ci`` and ``paired_bootstrap`` resample
images.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

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


def _constant(p: np.ndarray, y: np.ndarray) -> bool:
    """A correlation is undefined (NaN) when either side is constant, e.g. a model whose
    heads collapsed to one score or a bootstrap draw of equal predictions."""
    return bool(np.ptp(p) == 0 or np.ptp(y) == 0)


def srcc(pred, mos) -> float:
    """Spearman rank correlation; NaN when either side is constant."""
    p, y = _arrays(pred, mos)
    if _constant(p, y):
        return float("nan")
    return float(stats.spearmanr(p, y).statistic)


def plcc(pred, mos) -> float:
    """Pearson linear correlation, on raw predictions; NaN when either side is constant."""
    p, y = _arrays(pred, mos)
    if _constant(p, y):
        return float("nan")
    return float(stats.pearsonr(p, y).statistic)


def krcc(pred, mos) -> float:
    """Kendall rank correlation (tau-b); NaN when either side is constant."""
    p, y = _arrays(pred, mos)
    if _constant(p, y):
        return float("nan")
    return float(stats.kendalltau(p, y).statistic)


def rmse(pred, mos) -> float:
    """Root mean squared error of the raw predictions, in label units (the VQEG RMSE,
    after the monotonic mapping, is ``rmse_mapped`` of :func:`compute_metrics`)."""
    p, y = _arrays(pred, mos)
    return float(np.sqrt(np.mean((p - y) ** 2)))


#: Steepest logistic the fits allow: the sigmoid's rate times the prediction range. At
#: the cap the sigmoid climbs from 10% to 90% of its height over 4.4 / STEEPEST (44%) of
#: the prediction range, so no fit is a step that sorts a few images apart from the rest.
STEEPEST = 10.0
#: How far (as a share of the MOS range) a fitted curve may reach beyond the MOS range
#: over the predictions before the fit counts as degenerate.
MARGIN = 0.25
#: The forms a fit can end in, most flexible first.
LOGISTIC_FORMS = ("5pl", "4pl", "linear")
_DESCRIPTION = {"5pl": "monotonic 5-parameter logistic", "4pl": "monotonic 4-parameter logistic",
                "linear": "linear fit"}


def logistic4(x, b1, b2, b3, b4):
    """VQEG 4-parameter logistic: from ``b2`` (low x) to ``b1`` (high x), centred at ``b3``,
    scale ``|b4|``."""
    with np.errstate(over="ignore"):
        return (b1 - b2) / (1 + np.exp(-(x - b3) / np.abs(b4))) + b2


def logistic5(x, b1, b2, b3, b4, b5):
    """VQEG 5-parameter logistic (Sheikh et al. 2006): a sigmoid of height ``b1`` and rate
    ``b2`` centred at ``b3``, plus the line ``b4 * x + b5``."""
    with np.errstate(over="ignore"):
        return b1 * (0.5 - 1 / (1 + np.exp(b2 * (x - b3)))) + b4 * x + b5


@dataclass(frozen=True)
class LogisticFit:
    """A monotonic mapping of predictions onto MOS.

    ``form`` is the one used: ``"5pl"`` (``logistic5(x, *params)``), ``"4pl"``
    (``logistic4(x, *params)``) or ``"linear"`` (``params = (slope, intercept)``); params
    are in prediction and MOS units. ``direction`` is +1 when the mapping is
    non-decreasing, -1 when non-increasing (predictions that rank images in reverse).
    """

    form: str
    params: tuple[float, ...]
    direction: int = 1

    def predict(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.form == "5pl":
            return logistic5(x, *self.params)
        if self.form == "4pl":
            return logistic4(x, *self.params)
        slope, intercept = self.params
        return slope * x + intercept

    __call__ = predict

    @property
    def description(self) -> str:
        """The form in words, e.g. ``monotonic 5-parameter logistic``."""
        return _DESCRIPTION[self.form]


def _g5(z, c1, c2, c3, c4, c5):
    """The 5-parameter logistic on predictions and MOS both scaled to [0, 1]."""
    with np.errstate(over="ignore"):
        return c1 * (0.5 - 1 / (1 + np.exp(c2 * (z - c3)))) + c4 * z + c5


def _g4(z, low, height, centre, scale):
    """The 4-parameter logistic on scaled predictions and MOS: ``low`` to ``low + height``."""
    with np.errstate(over="ignore"):
        return low + height / (1 + np.exp(-(z - centre) / scale))


# bounds on the scaled parameters: non-negative height, rate and slope make both forms
# non-decreasing; the rate (or 1 / scale) is capped at STEEPEST; centres lie in [0, 1]
_BOUNDS5 = ([0.0, 0.0, 0.0, 0.0, -2.0], [1 + 2 * MARGIN, STEEPEST, 1.0, 3.0, 3.0])
_BOUNDS4 = ([-MARGIN, 0.0, 0.0, 1 / STEEPEST], [1 + MARGIN, 1 + 2 * MARGIN, 1.0, 10.0])


def _best_fit(f, z, t, starts, bounds):
    """Least-squares best of bounded fits from ``starts``: (params, sse), or None when no
    start converges to a finite, bounded, non-decreasing curve."""
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    span = hi - lo
    grid = np.linspace(0.0, 1.0, 201)
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p0 in starts:
            p0 = np.clip(np.asarray(p0, dtype=np.float64), lo + 1e-6 * span, hi - 1e-6 * span)
            try:
                coef, _ = optimize.curve_fit(f, z, t, p0=p0, bounds=(lo, hi), maxfev=5000)
            except (RuntimeError, ValueError, optimize.OptimizeWarning):
                continue
            curve = f(grid, *coef)
            if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(curve))):
                continue
            if curve.min() < -MARGIN or curve.max() > 1 + MARGIN or np.any(np.diff(curve) < -1e-9):
                continue
            sse = float(np.sum((f(z, *coef) - t) ** 2))
            if best is None or sse < best[1]:
                best = (coef, sse)
    return best


def fit_logistic(pred, mos, params: int = 5) -> LogisticFit:
    """Fit the monotonic VQEG logistic mapping predictions onto MOS.

    The mapping runs in the direction of the rank correlation (non-decreasing when SRCC
    >= 0), so it never reorders the predictions. Both forms are fitted with predictions
    and MOS scaled to [0, 1], under bounds that keep them monotonic and well-posed:
    sigmoid height, rate and linear slope non-negative, the rate at most ``STEEPEST``
    per prediction range (no step), the centre inside the prediction range. A fit is
    degenerate when it does not converge or its curve leaves the MOS range by more than
    ``MARGIN`` of it; then the 5-parameter form (``params=5``) falls back to the
    4-parameter one, and that to a straight line. Several starts, least squares best.
    The returned :class:`LogisticFit` says which form was used.
    """
    if params not in (4, 5):
        raise ValueError(f"logistic fit takes 4 or 5 parameters, not {params}")
    p, y = _arrays(pred, mos)
    if np.ptp(p) == 0 or np.ptp(y) == 0:
        return LogisticFit("linear", (0.0, float(np.mean(y))))
    rho = srcc(p, y)
    d = -1 if rho < 0 else 1
    xo = d * p
    x0, px, y0, py = xo.min(), np.ptp(xo), y.min(), np.ptp(y)
    z, t = (xo - x0) / px, (y - y0) / py
    slope, intercept = np.polyfit(z, t, 1)
    mid, level = float(np.median(z)), float(np.mean(t))
    if params == 5 and p.size > 5:
        starts = [[h, r, mid, 0.0, level] for h in (0.5, 1.0) for r in (2.0, 6.0, 12.0)]
        starts.append([1e-3, 1.0, 0.5, max(slope, 0.0), intercept])
        found = _best_fit(_g5, z, t, starts, _BOUNDS5)
        if found is not None:
            c1, c2, c3, c4, c5 = found[0]
            b = (py * c1, d * c2 / px, d * (x0 + c3 * px), d * py * c4 / px,
                 y0 + py * c5 - py * c4 * x0 / px)
            return LogisticFit("5pl", tuple(float(v) for v in b), d)
    if p.size > 4:
        low = float(np.quantile(t, 0.05))
        starts = [[low, float(np.quantile(t, 0.95)) - low, mid, s] for s in (0.1, 0.25, 0.5, 1.0)]
        found = _best_fit(_g4, z, t, starts, _BOUNDS4)
        if found is not None:
            low, height, centre, scale = found[0]
            bottom, top = y0 + py * low, y0 + py * (low + height)
            b = (top, bottom) if d > 0 else (bottom, top)
            return LogisticFit("4pl", (float(b[0]), float(b[1]), float(d * (x0 + centre * px)),
                                       float(scale * px)), d)
    a, c = np.polyfit(p, y, 1)
    return LogisticFit("linear", (float(a), float(c)), -1 if a < 0 else 1)


def _mapped_plcc(fit: LogisticFit, p: np.ndarray, y: np.ndarray) -> float:
    """PLCC of the mapped predictions, signed by the mapping's direction; 0 when the
    mapping is flat (no monotonic relation left to correlate)."""
    mapped = fit(p)
    if np.ptp(mapped) <= 1e-12 * max(1.0, float(np.max(np.abs(mapped)))):
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.NearConstantInputWarning)
        return fit.direction * plcc(mapped, y)


def logistic_plcc(pred, mos, params: int = 5) -> float:
    """PLCC after the monotonic logistic mapping (:func:`fit_logistic`), signed by the
    mapping's direction so that predictions ranking images in reverse read negative, as
    their SRCC does; 0 when the best monotonic mapping is flat."""
    p, y = _arrays(pred, mos)
    return _mapped_plcc(fit_logistic(p, y, params), p, y)


def compute_metrics(pred, mos, logistic: int | None = 5) -> dict[str, float | str]:
    """SRCC, PLCC, KRCC and RMSE on raw predictions; with ``logistic`` (4 or 5, the
    default) also ``plcc_logistic`` and ``rmse_mapped`` after the monotonic logistic
    mapping (:func:`fit_logistic`) and ``logistic_form``, the form it ended in."""
    p, y = _arrays(pred, mos)
    out: dict[str, float | str] = {"srcc": srcc(p, y), "plcc": plcc(p, y), "krcc": krcc(p, y),
                                   "rmse": rmse(p, y)}
    if logistic:
        fit = fit_logistic(p, y, logistic)
        out["plcc_logistic"] = _mapped_plcc(fit, p, y)
        out["rmse_mapped"] = rmse(fit(p), y)
        out["logistic_form"] = fit.form
    return out


_FAST = {"srcc": srcc, "plcc": plcc, "krcc": krcc, "rmse": rmse}


def bootstrap_ci(pred, mos, metric: str = "srcc", n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0, groups=None) -> tuple[float, float]:
    """Percentile bootstrap interval of a metric, resampling images, or with ``groups``
    (one label per image, e.g. content ids) whole groups: as many groups as there are,
    drawn with replacement, each bringing all its images."""
    p, y = _arrays(pred, mos)
    fn = _FAST[metric]
    rng = np.random.default_rng(seed)
    if groups is None:
        samples = list(rng.integers(0, p.size, size=(n_boot, p.size)))
    else:
        labels = np.asarray(groups).astype(str).ravel()
        if labels.size != p.size:
            raise ValueError(f"{labels.size} group labels for {p.size} images")
        members = [np.flatnonzero(labels == g) for g in dict.fromkeys(labels.tolist())]
        draws = rng.integers(0, len(members), size=(n_boot, len(members)))
        samples = [np.concatenate([members[k] for k in row]) for row in draws]
    vals = np.array([fn(p[i], y[i]) for i in samples])
    alpha = (1 - level) / 2
    return float(np.nanquantile(vals, alpha)), float(np.nanquantile(vals, 1 - alpha))


def bootstrap_p_value(diffs) -> float:
    """Two-sided p-value of "no difference" from bootstrap differences (NaN ones left
    out): twice the smaller share of resamples on either side of 0, counted as
    ``(k + 1) / (B + 1)`` so that it is never 0 (its resolution is ``2 / (B + 1)``)."""
    d = np.asarray(diffs, dtype=np.float64)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return float("nan")
    k = min(int(np.sum(d <= 0)), int(np.sum(d >= 0)))
    return float(min(1.0, 2 * (k + 1) / (d.size + 1)))


def paired_bootstrap(pred_a, pred_b, mos, metric: str = "srcc", n_boot: int = 1000,
                     level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Difference ``metric(b) - metric(a)`` on the same images, with a paired bootstrap
    interval (both models scored on each resample of images) and a two-sided p-value
    (:func:`bootstrap_p_value`)."""
    a, y = _arrays(pred_a, mos)
    b, _ = _arrays(pred_b, mos)
    fn = _FAST[metric]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, y.size, size=(n_boot, y.size))
    diffs = np.array([fn(b[i], y[i]) - fn(a[i], y[i]) for i in idx])
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(diffs, alpha), np.nanquantile(diffs, 1 - alpha)
    return {"diff": fn(b, y) - fn(a, y), "ci_low": float(lo), "ci_high": float(hi),
            "p_value": bootstrap_p_value(diffs), "significant": bool(lo > 0 or hi < 0)}
