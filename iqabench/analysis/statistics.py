"""Test metrics per round, the best validation epoch, and the paired test.

Correlations are never pooled across rounds (each round is a different model, with
its own offset and scale); the difference between two runs is the mean over paired
rounds of ``metric(variant) - metric(baseline)``. Its 95% interval combines a paired
bootstrap of the test images (both models scored on the same resample; whole content
groups resampled where images share content) with the spread of the per-round
differences, as a t-interval with one degree of freedom fewer than rounds
(:func:`paired_bootstrap_rounds`). One round: the image-level paired bootstrap of
:func:`iqabench.metrics.paired_bootstrap`, which speaks for test-image sampling only;
no claim about training recipes is made below ``MIN_ROUNDS`` rounds ("too few rounds
to judge"). An interval containing 0 reads "not significant"; runs without enough
shared test images read "not comparable".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from iqabench import metrics as iqa_metrics
from iqabench.analysis.alignment import align
from iqabench.analysis.types import REPORTED_METRICS, Run

#: Per-round metrics after the monotonic logistic mapping, beside the raw ones.
MAPPED_METRICS = ("plcc_logistic", "rmse_mapped")
#: Resampled values per batch of the image bootstrap (bounds memory on large test sets).
_BATCH_VALUES = 2_000_000


def round_metrics(runs: list[Run]) -> pd.DataFrame:
    """Test metrics of every run, round and test set, from ``predictions.csv``:
    ``srcc, plcc, krcc, rmse`` on raw predictions, then ``plcc_logistic`` and
    ``rmse_mapped`` after the monotonic logistic mapping and ``logistic_form``, the
    form it ended in (:func:`iqabench.metrics.compute_metrics`)."""
    rows = []
    for run in runs:
        for rnd in run.rounds:
            for dataset, frame in rnd.predictions.groupby("dataset", sort=True):
                if len(frame) < 2:
                    continue
                values = iqa_metrics.compute_metrics(frame["pred"].to_numpy(),
                                                     frame["mos"].to_numpy())
                rows.append({"run": run.label, "round": rnd.round, "dataset": dataset,
                             "n": len(frame), **values})
    return pd.DataFrame(rows, columns=["run", "round", "dataset", "n", *REPORTED_METRICS,
                                       *MAPPED_METRICS, "logistic_form"])


def validation_results(runs: list[Run]) -> pd.DataFrame:
    """Best validation epoch of every round (the epoch ``best.pt`` was chosen at):
    its SRCC, and the PLCC at that same epoch."""
    rows = []
    for run in runs:
        for rnd in run.rounds:
            row = {"run": run.label, "round": rnd.round, "dataset": run.train_dataset,
                   "epochs": math.nan, "best_epoch": math.nan, "val_srcc": math.nan,
                   "val_plcc": math.nan}
            log = rnd.log
            if log is not None and log["val_srcc"].notna().any():
                best = log.loc[log["val_srcc"].idxmax()]
                row.update(epochs=len(log), best_epoch=int(best["epoch"]),
                           val_srcc=float(best["val_srcc"]),
                           val_plcc=float(best["val_plcc"]) if "val_plcc" in log else math.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def metric_rows(pred: np.ndarray, mos: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` along the last axis of (..., n) arrays; SRCC is the PLCC of average
    ranks, exactly as scipy computes it."""
    if metric == "srcc":
        pred, mos, metric = stats.rankdata(pred, axis=-1), stats.rankdata(mos, axis=-1), "plcc"
    if metric == "plcc":
        p = pred - pred.mean(axis=-1, keepdims=True)
        y = mos - mos.mean(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (p * y).sum(axis=-1) / np.sqrt((p * p).sum(axis=-1) * (y * y).sum(axis=-1))
    if metric == "rmse":
        return np.sqrt(((pred - mos) ** 2).mean(axis=-1))
    fn = getattr(iqa_metrics, metric)
    flat_p, flat_y = pred.reshape(-1, pred.shape[-1]), mos.reshape(-1, mos.shape[-1])
    return np.array([fn(p, y) for p, y in zip(flat_p, flat_y)]).reshape(pred.shape[:-1])


def weighted_ranks(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average ranks of ``x`` (n,) in each weighted sample ``weights`` (B, n): the ranks
    the images would get in a sample holding image i ``weights[:, i]`` times, ties
    sharing their mean rank (what :func:`scipy.stats.rankdata` gives on that sample)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new_block = np.r_[True, xs[1:] != xs[:-1]]
    block = np.cumsum(new_block) - 1
    ws = weights[:, order]
    wb = np.add.reduceat(ws, np.flatnonzero(new_block), axis=1)
    rank_of_block = np.cumsum(wb, axis=1) - wb + (wb + 1) / 2
    ranks = np.empty_like(ws, dtype=float)
    ranks[:, order] = rank_of_block[:, block]
    return ranks


def _weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    total = w.sum(axis=-1, keepdims=True)
    dx = x - (w * x).sum(axis=-1, keepdims=True) / total
    dy = y - (w * y).sum(axis=-1, keepdims=True) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * dx * dy).sum(axis=-1) / np.sqrt((w * dx * dx).sum(axis=-1)
                                                    * (w * dy * dy).sum(axis=-1))


def weighted_metric_rows(pred: np.ndarray, mos: np.ndarray, weights: np.ndarray,
                         metric: str) -> np.ndarray:
    """``metric`` of the images ``pred`` (n,) against ``mos`` (n,) in every resample
    ``weights`` (B, n), where ``weights[b, i]`` is how often resample b drew image i;
    equal to the metric of the resample written out image by image (NaN where it is
    undefined)."""
    if metric == "srcc":
        return _weighted_pearson(weighted_ranks(pred, weights), weighted_ranks(mos, weights),
                                 weights)
    if metric == "plcc":
        return _weighted_pearson(pred[None, :], mos[None, :], weights)
    if metric == "rmse":
        return np.sqrt((weights * (pred - mos) ** 2).sum(axis=-1) / weights.sum(axis=-1))
    fn = getattr(iqa_metrics, metric)
    out = np.empty(len(weights))
    for k, w in enumerate(weights):
        take = np.repeat(np.arange(pred.size), w.astype(int))
        out[k] = fn(pred[take], mos[take])
    return out


def _unit_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Units in order of first appearance, and each image's unit index."""
    units, first, codes = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return units[order], rank[codes.ravel()]


def resample_weights(units: list[np.ndarray | int], n_boot: int,
                     rng: np.random.Generator) -> list[np.ndarray]:
    """Per round, (n_boot, n) counts of every image in ``n_boot`` resamples of its units.

    ``units``: per round, each image's unit label (content id, or image name), or the
    round's number of images when every image is its own unit. A round's units are drawn
    with replacement, as many as it has; an image counts as often as its unit was drawn.
    Rounds whose labels form the same set of units (the same test images scored again)
    share their draws, so the test-sampling error they share is resampled once, not
    averaged away; other rounds are drawn independently. One round of ``n`` single
    images draws ``rng.integers(0, n, (n_boot, n))``, as
    :func:`iqabench.metrics.paired_bootstrap` does.
    """
    out = []
    shared: dict[object, tuple[list, np.ndarray]] = {}
    for r, labels in enumerate(units):
        if isinstance(labels, (int, np.integer)):
            uniq, codes, key = list(range(int(labels))), np.arange(int(labels)), ("round", r)
        else:
            found, codes = _unit_codes(np.asarray(labels).astype(str))
            uniq = found.tolist()
            key = frozenset(uniq)
        if key not in shared:
            k = len(uniq)
            idx = rng.integers(0, k, size=(n_boot, k))
            flat = (idx + k * np.arange(n_boot)[:, None]).ravel()
            shared[key] = (uniq, np.bincount(flat, minlength=n_boot * k).reshape(n_boot, k))
        first, counts = shared[key]
        position = {u: i for i, u in enumerate(first)}
        out.append(counts[:, np.array([position[u] for u in uniq])[codes]].astype(float))
    return out


def rounds_interval(samples: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
                    metric: str = "srcc", n_boot: int = 1000, level: float = 0.95,
                    seed: int = 0) -> dict:
    """One run's ``metric`` averaged over its rounds, with a percentile bootstrap
    interval of test sampling: ``samples`` holds per round (pred, mos, units), units
    being each image's content id (whole groups resampled) or None (images); rounds on
    the same test images share their draws (:func:`resample_weights`). Returns
    ``value``, ``ci_low``, ``ci_high``, ``n_units`` (distinct labelled units over the
    rounds, plus the images of unlabelled rounds). It covers test sampling only, not
    training randomness."""
    if not samples:
        raise ValueError("no rounds")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, not {n_boot}")
    rng = np.random.default_rng(seed)
    units = [len(p) if u is None else u for p, _, u in samples]
    weights = resample_weights(units, n_boot, rng)
    fn = getattr(iqa_metrics, metric)
    boot = np.mean([weighted_metric_rows(p, y, w, metric)
                    for (p, y, _), w in zip(samples, weights)], axis=0)
    tail = (1 - level) / 2
    labelled = [set(np.asarray(u).astype(str).tolist()) for u in units if not isinstance(u, int)]
    n_units = len(set().union(*labelled)) + sum(u for u in units if isinstance(u, int))
    return {"value": float(np.mean([fn(p, y) for p, y, _ in samples])),
            "ci_low": float(np.nanquantile(boot, tail)),
            "ci_high": float(np.nanquantile(boot, 1 - tail)), "n_units": n_units}


#: Fewer paired rounds than this and no claim about training recipes is made: the
#: interval then covers test-image sampling only.
MIN_ROUNDS = 2


def paired_bootstrap_rounds(strata: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                            metric: str = "srcc", n_boot: int = 1000, level: float = 0.95,
                            seed: int = 0, units: list[np.ndarray] | None = None) -> dict:
    """Mean over rounds of ``metric(b) - metric(a)``, its interval and p-value.

    ``strata``: per round (mos, pred_a, pred_b) on the same images; ``units``: per round
    each image's bootstrap unit (content id, or image name; default: every image its
    own unit). Two sources of error are combined:

    * test sampling: a paired bootstrap of units (both models scored on each resample;
      :func:`resample_weights`), giving ``T_r``, the resampled differences of round r,
      and ``V_img``, the variance of their mean over rounds;
    * training randomness (seed, split): the spread of the per-round differences
      ``d_r``, sample variance ``s2`` over ``R`` rounds.

    One round: the percentile interval of ``T_1`` and the bootstrap p-value
    (:func:`iqabench.metrics.bootstrap_p_value`); with single images as units these are
    the resamples and values of :func:`iqabench.metrics.paired_bootstrap`. It speaks
    for test sampling only (``scope``), never for a training recipe.

    ``R >= 2`` rounds: ``mean(d_r) +/- t(1 - (1 - level) / 2, R - 1) * SE`` with
    ``SE^2 = s2 / R + V_img`` and an exact two-sided t p-value. ``s2 / R`` is the usual
    variance of a mean of R independent rounds; it already holds the test-sampling
    error when rounds test on different images, so adding ``V_img`` counts that part
    twice (conservative by at most the test-sampling share), but it is needed when
    rounds test on the same images: their shared sampling error moves every ``d_r``
    alike and is absent from ``s2``. With 2-3 rounds ``s2`` is itself uncertain, which
    the t quantile with R - 1 degrees of freedom (12.7 for 2 rounds, 4.3 for 3) pays
    for; resampling 3 rounds with replacement instead gives an interval near the
    min-max of three differences and calls a zero effect significant far more often
    than 5% when training randomness dominates.

    Returns ``diff``, ``ci_low``, ``ci_high``, ``p_value`` (unrounded), ``significant``
    (the interval excludes 0), ``rounds``, ``se`` (NaN for one round), ``n_units``,
    ``method`` and ``scope`` ("test sampling only" or "training and test sampling").
    """
    if not strata:
        raise ValueError("no rounds to compare")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, not {n_boot}")
    fn = getattr(iqa_metrics, metric)
    rng = np.random.default_rng(seed)
    if units is not None and (len(units) != len(strata)
                              or any(len(u) != len(s[0]) for u, s in zip(units, strata))):
        raise ValueError("units must give one label per image of every round")
    weights = resample_weights(list(units) if units is not None else [len(s[0]) for s in strata],
                               n_boot, rng)
    batch = max(1, _BATCH_VALUES // max(len(s[0]) for s in strata))
    resampled = np.stack([
        np.concatenate([weighted_metric_rows(b, mos, w[i:i + batch], metric)
                        - weighted_metric_rows(a, mos, w[i:i + batch], metric)
                        for i in range(0, n_boot, batch)])
        for (mos, a, b), w in zip(strata, weights)])  # round x resample
    per_round = np.array([fn(b, mos) - fn(a, mos) for mos, a, b in strata])
    point, rounds = float(per_round.mean()), len(strata)
    n_units = (len(set().union(*(set(np.asarray(u).astype(str).tolist()) for u in units)))
               if units is not None else sum(len(s[0]) for s in strata))
    alpha = (1 - level) / 2
    if rounds == 1:
        lo, hi = np.nanquantile(resampled[0], alpha), np.nanquantile(resampled[0], 1 - alpha)
        return {"diff": point, "ci_low": float(lo), "ci_high": float(hi),
                "p_value": iqa_metrics.bootstrap_p_value(resampled[0]),
                "significant": bool(lo > 0 or hi < 0), "rounds": 1, "se": math.nan,
                "n_units": n_units, "method": "paired bootstrap, 1 round",
                "scope": "test sampling only"}
    means = resampled.mean(axis=0)
    means = means[np.isfinite(means)]
    v_img = float(np.var(means, ddof=1)) if means.size > 1 else 0.0
    se = math.sqrt(float(np.var(per_round, ddof=1)) / rounds + v_img)
    q = float(stats.t.ppf(1 - alpha, rounds - 1))
    if se > 0:
        p = float(2 * stats.t.sf(abs(point) / se, rounds - 1))
    else:
        p = 1.0 if point == 0 else 0.0
    lo, hi = point - q * se, point + q * se
    return {"diff": point, "ci_low": lo, "ci_high": hi, "p_value": p,
            "significant": bool(lo > 0 or hi < 0), "rounds": rounds, "se": se,
            "n_units": n_units,
            "method": f"t over {rounds} rounds (df {rounds - 1}) with paired bootstrap",
            "scope": "training and test sampling"}


def significance(result: dict | None) -> str:
    """The reading of a paired interval: one containing 0 cannot support a difference."""
    if result is None:
        return "not comparable"
    return "significant" if result["significant"] else "not significant"


def verdict(result: dict | None) -> str:
    """What the result says about the training recipes: the interval's reading with
    ``MIN_ROUNDS`` paired rounds or more, else "too few rounds to judge" (one round's
    interval covers test sampling only)."""
    if result is not None and result["rounds"] < MIN_ROUNDS:
        return "too few rounds to judge"
    return significance(result)


#: Below this many content groups a group bootstrap's percentile interval is unreliable
#: (it can only take a few distinct values); tables say so beside the unit.
MIN_RELIABLE_GROUPS = 10


def unit_label(unit: str, n_units: int) -> str:
    """The resampled unit as a table says it: ``content group (24 groups)`` or ``image``;
    fewer than :data:`MIN_RELIABLE_GROUPS` groups are flagged as too few to trust."""
    if unit != "content group":
        return "image"
    if n_units < MIN_RELIABLE_GROUPS:
        return f"content group ({n_units} groups; too few for a reliable interval)"
    return f"content group ({n_units} groups)"


#: Columns of :func:`paired_comparisons`, in order.
PAIRED_COLUMNS = ["variant", "baseline", "dataset", "metric", "rounds", "n_images", "unit",
                  "n_units", "baseline_value", "variant_value", "diff", "ci_low", "ci_high",
                  "p_value", "significant", "significance", "verdict", "scope", "method", "note"]


def paired_comparisons(runs: list[Run], baseline: Run, metrics: tuple[str, ...],
                       n_boot: int = 1000, seed: int = 0, by_content: bool = True
                       ) -> pd.DataFrame:
    """Every other run against ``baseline`` on every test set either scored, one row per
    variant, test set and metric (:data:`PAIRED_COLUMNS`):

    - ``rounds``: paired rounds; ``n_images``: aligned images summed over them;
    - ``unit``: what the bootstrap resampled, ``content group (N groups)`` when the
      test images share content ids (AGIQA-3K prompts, reference images of
      synthetic-distortion sets; the splits keep a content on one side) or ``image``;
      ``n_units``: N (distinct units over the rounds); ``by_content=False`` resamples
      images whatever the content ids;
    - ``baseline_value``, ``variant_value``: the metric's mean over the paired rounds;
      ``diff``: variant minus baseline, mean over rounds;
    - ``ci_low``, ``ci_high``: its 95% interval; ``p_value``: two-sided, unrounded
      (:func:`paired_bootstrap_rounds`);
    - ``significant``: the interval excludes 0; ``significance``: that in words,
      "significant", "not significant" or "not comparable" (too few shared images);
    - ``verdict``: the claim about the training recipes: ``significance`` with at
      least ``MIN_ROUNDS`` rounds, else "too few rounds to judge";
    - ``scope``: what the interval covers, "training and test sampling" or "test
      sampling only" (one round); ``method``: how it was computed;
    - ``note``: partial overlaps, MOS mismatches, why not comparable.
    """
    rows = []
    for variant in runs:
        if variant is baseline:
            continue
        datasets = sorted(set().union(*(set(r.predictions["dataset"]) for r in baseline.rounds))
                          | set().union(*(set(r.predictions["dataset"]) for r in variant.rounds)))
        for dataset in datasets:
            aligned = align(baseline, variant, dataset)
            grouped = by_content and aligned.unit == "content group"
            for metric in metrics:
                row = {"variant": variant.label, "baseline": baseline.label, "dataset": dataset,
                       "metric": metric, "rounds": len(aligned.rounds),
                       "n_images": aligned.n_images, "unit": "", "n_units": 0,
                       "baseline_value": math.nan, "variant_value": math.nan, "diff": math.nan,
                       "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan,
                       "significant": False, "scope": "", "method": ""}
                result = None
                if aligned.strata:
                    fn = getattr(iqa_metrics, metric)
                    result = paired_bootstrap_rounds(
                        aligned.strata, metric, n_boot, seed=seed,
                        units=aligned.units if grouped else None)
                    row.update(
                        unit=unit_label("content group" if grouped else "image",
                                        result["n_units"]),
                        n_units=result["n_units"],
                        baseline_value=float(np.mean([fn(a, y) for y, a, _ in aligned.strata])),
                        variant_value=float(np.mean([fn(b, y) for y, _, b in aligned.strata])),
                        **{k: result[k] for k in ("diff", "ci_low", "ci_high", "p_value",
                                                  "significant", "scope", "method")})
                row["significance"] = significance(result)
                row["verdict"] = verdict(result)
                one_round = ("1 round: test sampling only, not training randomness"
                             if len(aligned.rounds) == 1 else "")
                row["note"] = "; ".join(n for n in (aligned.note, one_round) if n)
                rows.append(row)
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)
