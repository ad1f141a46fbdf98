"""Test metrics per round, the best validation epoch, and the paired test.

Correlations are never pooled across rounds (each round is a different model, with
its own offset and scale); the difference between two runs is the mean over paired
rounds of ``metric(variant) - metric(baseline)``. Its 95% interval comes from a
two-level paired bootstrap: rounds are resampled, and images within each round, both
models scored on the same resample. With one round this is the image bootstrap of
:func:`iqabench.metrics.paired_bootstrap` (same resamples, same p-value), and it then
speaks for test-image sampling only, not for training randomness: several rounds are
needed before a difference between training recipes can be claimed. An interval
containing 0 reads "not significant"; runs without enough shared test images read
"not comparable".
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from iqabench import metrics as iqa_metrics
from iqabench.analysis.alignment import align
from iqabench.analysis.types import REPORTED_METRICS, Run

#: Resampled values per batch of the image bootstrap (bounds memory on large test sets).
_BATCH_VALUES = 2_000_000


def round_metrics(runs: list[Run]) -> pd.DataFrame:
    """Test metrics of every run, round and test set, from ``predictions.csv``."""
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
    return pd.DataFrame(rows, columns=["run", "round", "dataset", "n", *REPORTED_METRICS])


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


def image_bootstrap(mos: np.ndarray, a: np.ndarray, b: np.ndarray, metric: str, n_boot: int,
                    rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` paired image resamples of ``metric(b) - metric(a)`` (NaN where a
    resample leaves a metric undefined), drawn by :func:`scipy.stats.bootstrap`."""

    def difference(pa, pb, y, axis=-1):
        return metric_rows(pb, y, metric) - metric_rows(pa, y, metric)

    with warnings.catch_warnings():  # its own interval is unused; NaN resamples are dropped later
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap((a, b, mos), difference, paired=True, vectorized=True,
                                 n_resamples=n_boot, batch=max(1, _BATCH_VALUES // mos.size),
                                 method="percentile", rng=rng)
    return np.asarray(result.bootstrap_distribution, dtype=float)


def paired_bootstrap_rounds(strata: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                            metric: str = "srcc", n_boot: int = 1000, level: float = 0.95,
                            seed: int = 0) -> dict[str, float]:
    """Mean over rounds of ``metric(b) - metric(a)`` with a two-level paired bootstrap.

    Each resample draws the rounds with replacement (so round-to-round spread: training
    seed and split, widens the interval) and, within every round, the images with
    replacement, scoring both models on the same images. One round: the resamples and
    p-value of :func:`iqabench.metrics.paired_bootstrap`, which can only speak for
    test-image sampling, not for training randomness.

    The image level is :func:`scipy.stats.bootstrap` (paired, vectorised); the round
    level is drawn here because scipy resamples one level only. The interval is the
    percentile interval of the resampled differences ignoring NaN resamples (scipy's
    own interval would turn NaN on one degenerate resample).
    """
    if not strata:
        raise ValueError("no rounds to compare")
    fn = getattr(iqa_metrics, metric)
    rng = np.random.default_rng(seed)
    per_round = np.stack([image_bootstrap(mos, a, b, metric, n_boot, rng)
                          for mos, a, b in strata])  # round x resample
    if len(strata) == 1:
        diffs = per_round[0]
    else:
        rounds = rng.integers(0, len(strata), size=(n_boot, len(strata)))
        diffs = per_round[rounds, np.arange(n_boot)[:, None]].mean(axis=1)
    point = float(np.mean([fn(b, mos) - fn(a, mos) for mos, a, b in strata]))
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(diffs, alpha), np.nanquantile(diffs, 1 - alpha)
    p_two = 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))
    return {"diff": point, "ci_low": float(lo), "ci_high": float(hi),
            "p_value": float(min(1.0, p_two)), "significant": bool(lo > 0 or hi < 0)}


def significance(result: dict | None) -> str:
    """The reading of a paired result: an interval containing 0 cannot support a difference."""
    if result is None:
        return "not comparable"
    return "significant" if result["significant"] else "not significant"


PAIRED_COLUMNS = ["variant", "baseline", "dataset", "metric", "rounds", "n_images",
                  "baseline_value", "variant_value", "diff", "ci_low", "ci_high", "p_value",
                  "significance", "note"]


def paired_comparisons(runs: list[Run], baseline: Run, metrics: tuple[str, ...],
                       n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Every other run against ``baseline`` on every test set either scored."""
    rows = []
    for variant in runs:
        if variant is baseline:
            continue
        datasets = sorted(set().union(*(set(r.predictions["dataset"]) for r in baseline.rounds))
                          | set().union(*(set(r.predictions["dataset"]) for r in variant.rounds)))
        for dataset in datasets:
            aligned = align(baseline, variant, dataset)
            for metric in metrics:
                row = {"variant": variant.label, "baseline": baseline.label, "dataset": dataset,
                       "metric": metric, "rounds": len(aligned.rounds),
                       "n_images": aligned.n_images, "baseline_value": math.nan,
                       "variant_value": math.nan, "diff": math.nan, "ci_low": math.nan,
                       "ci_high": math.nan, "p_value": math.nan}
                result = None
                if aligned.strata:
                    fn = getattr(iqa_metrics, metric)
                    result = paired_bootstrap_rounds(aligned.strata, metric, n_boot, seed=seed)
                    row.update(
                        baseline_value=float(np.mean([fn(a, y) for y, a, _ in aligned.strata])),
                        variant_value=float(np.mean([fn(b, y) for y, _, b in aligned.strata])),
                        diff=result["diff"], ci_low=result["ci_low"], ci_high=result["ci_high"],
                        p_value=result["p_value"])
                row["significance"] = significance(result)
                one_round = ("1 round: image sampling only, not training randomness"
                             if len(aligned.rounds) == 1 else "")
                row["note"] = "; ".join(n for n in (aligned.note, one_round) if n)
                rows.append(row)
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)
