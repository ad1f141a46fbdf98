"""analysis.statistics: per-round metrics, validation epochs, the paired bootstrap."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from iqabench import metrics
from iqabench.analysis.loading import load_run, load_runs
from iqabench.analysis.statistics import (
    MIN_RELIABLE_GROUPS,
    MIN_ROUNDS,
    PAIRED_COLUMNS,
    metric_rows,
    paired_bootstrap_rounds,
    paired_comparisons,
    resample_weights,
    round_metrics,
    rounds_interval,
    unit_label,
    validation_results,
    weighted_metric_rows,
)
from iqabench.runfolder import aggregate_rounds

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fake_runs as fr  # noqa: E402

N_BOOT = 300  # enough for stable 95% intervals at these sizes, fast on 2 cores


@pytest.fixture
def images():
    return fr.make_images()


def test_metrics_are_recomputed_from_predictions_and_aggregated(tmp_path, images):
    preds = [fr.predictor(images, seed=k) for k in range(3)]
    run = load_run(fr.write_multi_round(tmp_path / "m", [(images, p) for p in preds]))
    run.label = "m"
    per_round = round_metrics([run])
    expected = [metrics.srcc(p, images["mos"]) for p in preds]
    assert np.allclose(per_round["srcc"], expected)
    summary = aggregate_rounds(per_round, ("run", "dataset"))
    row = summary.iloc[0]
    assert row["rounds"] == 3 and row["n"] == len(images)
    assert row["srcc"] == pytest.approx(np.median(expected))
    assert row["srcc_mean"] == pytest.approx(np.mean(expected))
    assert row["srcc_std"] == pytest.approx(np.std(expected, ddof=1))


def test_validation_takes_the_best_srcc_epoch(tmp_path, images):
    run = load_run(fr.write_round(tmp_path / "r", images, fr.predictor(images),
                                  val_srcc=[0.5, 0.9, 0.7]))
    run.label = "r"
    val = validation_results([run]).iloc[0]
    assert val["best_epoch"] == 2 and val["val_srcc"] == 0.9
    assert val["val_plcc"] == pytest.approx(0.88)  # PLCC at the same epoch, not its own max


def test_vectorised_metrics_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    pred = np.round(rng.normal(size=(5, 40)), 1)  # many ties
    mos = np.round(rng.normal(size=(5, 40)), 1)
    for name in ("srcc", "plcc", "rmse", "krcc"):
        fn = getattr(metrics, name)
        assert np.allclose(metric_rows(pred, mos, name), [fn(p, y) for p, y in zip(pred, mos)])


def test_one_round_is_exactly_metrics_paired_bootstrap(images):
    """Same resamples, same point difference and p-value; the interval ends agree to
    rounding (vectorised vs per-resample correlations)."""
    mos = images["mos"].to_numpy()
    a, b = fr.predictor(images), fr.predictor(images, model_error=8, seed=1)
    got = paired_bootstrap_rounds([(mos, a, b)], "srcc", n_boot=N_BOOT, seed=3)
    want = metrics.paired_bootstrap(a, b, mos, "srcc", n_boot=N_BOOT, seed=3)
    assert got["scope"] == "test sampling only" and got["rounds"] == 1
    for key in ("diff", "p_value", "significant"):
        assert got[key] == want[key], key
    for key in ("ci_low", "ci_high"):
        assert got[key] == pytest.approx(want[key], abs=1e-12), key


def test_one_round_interval_is_scipys_paired_percentile_bootstrap(images):
    """An independent second method: scipy's own percentile interval on the same seed."""
    mos = images["mos"].to_numpy()
    a, b = fr.predictor(images), fr.predictor(images, model_error=8, seed=1)
    got = paired_bootstrap_rounds([(mos, a, b)], "plcc", n_boot=N_BOOT, seed=5)
    ref = stats.bootstrap((a, b, mos), lambda x, y, m: metrics.plcc(y, m) - metrics.plcc(x, m),
                          paired=True, vectorized=False, n_resamples=N_BOOT,
                          method="percentile", rng=np.random.default_rng(5))
    assert got["ci_low"] == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert got["ci_high"] == pytest.approx(ref.confidence_interval.high, abs=1e-12)


def test_multi_round_difference_is_the_mean_of_round_differences(images):
    mos = images["mos"].to_numpy()
    strata = [(mos, fr.predictor(images, seed=k), fr.predictor(images, 6, seed=10 + k))
              for k in range(3)]
    got = paired_bootstrap_rounds(strata, "plcc", n_boot=N_BOOT)
    diffs = [metrics.plcc(b, y) - metrics.plcc(a, y) for y, a, b in strata]
    assert got["diff"] == pytest.approx(np.mean(diffs))
    assert got["ci_low"] < got["diff"] < got["ci_high"] and got["significant"]


def test_rounds_that_disagree_cannot_support_a_difference(images):
    """Better by 0.07 in one round, worse by 0.01 in the other: resampling rounds as well
    as images keeps the interval across 0 (training randomness is part of the answer)."""
    mos = images["mos"].to_numpy()
    better = (mos, fr.predictor(images, 14, seed=1), fr.predictor(images, 4, seed=2))
    worse = (mos, fr.predictor(images, 6, seed=3), fr.predictor(images, 7, seed=4))
    assert paired_bootstrap_rounds([better], n_boot=N_BOOT)["significant"]
    both = paired_bootstrap_rounds([better, worse], n_boot=N_BOOT)
    assert both["diff"] > 0 and not both["significant"]


def _runs(tmp_path, images, variant_pred, rounds=1, **variant_kwargs):
    base_preds = [fr.predictor(images, seed=k) for k in range(rounds)]
    a = fr.write_multi_round(tmp_path / "base", [(images, p) for p in base_preds])
    variants = [(images, variant_pred(p, k)) for k, p in enumerate(base_preds)]
    b = fr.write_multi_round(tmp_path / "var", variants, **variant_kwargs)
    return load_runs([a, b])


def test_same_model_rerun_with_another_seed_is_not_significant(tmp_path, images):
    """The same predictor plus independent small noise: no difference these data support."""
    runs, base = _runs(tmp_path, images, lambda p, k: fr.rerun(p, seed=k), rounds=1, seed=1)
    paired = paired_comparisons(runs, base, ("srcc", "plcc"), n_boot=N_BOOT)
    assert list(paired.columns) == PAIRED_COLUMNS
    assert list(paired["significance"]) == ["not significant"] * 2
    assert (paired["ci_low"] < 0).all() and (paired["ci_high"] > 0).all()
    assert (paired["n_images"] == len(images)).all()
    # one round: the interval is labelled test sampling only; no claim about the recipe
    assert MIN_ROUNDS == 2
    assert set(paired["verdict"]) == {"too few rounds to judge"}
    assert set(paired["scope"]) == {"test sampling only"}
    # the fake images share content ids six at a time: whole groups are resampled
    assert set(paired["unit"]) == {"content group (20 groups)"} and (paired["n_units"] == 20).all()


def test_seed_reruns_are_rarely_significant_over_many_draws(images):
    """Calibration: over 10 independent re-runs (3 rounds each), at most 2 read significant
    (a 95% interval should exclude 0 about 5% of the time)."""
    mos = images["mos"].to_numpy()
    hits = 0
    for draw in range(10):
        strata = []
        for k in range(3):
            p = fr.predictor(images, seed=100 * draw + k)
            strata.append((mos, fr.rerun(p, seed=2 * (100 * draw + k)),
                           fr.rerun(p, seed=2 * (100 * draw + k) + 1)))
        hits += paired_bootstrap_rounds(strata, "srcc", n_boot=N_BOOT, seed=draw)["significant"]
    assert hits <= 2


def test_clearly_better_variant_is_significant(tmp_path, images):
    mos = images["mos"].to_numpy()

    def better(p, k):  # the same errors, shrunk to 30%
        return mos + 0.3 * (p - mos)

    runs, base = _runs(tmp_path, images, better, rounds=3, hyper_input="multiscale")
    paired = paired_comparisons(runs, base, ("srcc",), n_boot=N_BOOT)
    row = paired.iloc[0]
    assert row["significance"] == row["verdict"] == "significant"
    assert row["diff"] > 0 and row["rounds"] == 3 and row["p_value"] < 0.05
    assert row["scope"] == "training and test sampling" and row["method"].startswith("t over 3")


def test_disjoint_test_images_are_not_comparable(tmp_path, images):
    other = fr.make_images(prefix="other")
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    b = fr.write_round(tmp_path / "b", other, fr.predictor(other), loss="l1+rank")
    runs, base = load_runs([a, b])
    paired = paired_comparisons(runs, base, ("srcc",), n_boot=N_BOOT)
    assert paired.iloc[0]["significance"] == "not comparable"
    assert np.isnan(paired.iloc[0]["diff"])


def _seed_dominated(rng, round_sd: float, effect: float, rounds: int = 3, n: int = 60):
    """Rounds where training randomness dominates: per round, fresh test images, both
    models share the images' noise (so test sampling moves their difference little) and
    each model's correlation with MOS moves by a seed effect of SD ``round_sd / sqrt(2)``
    around 0.6 (the variant's by ``effect`` more), so the per-round SRCC difference has
    an SD near ``round_sd``."""
    strata = []
    for _ in range(rounds):
        mos = rng.uniform(0, 5, n)
        z, eta = (mos - mos.mean()) / mos.std(), rng.normal(size=n)
        ra, rb = np.clip(0.6 + rng.normal(0, round_sd / np.sqrt(2), 2) + (0.0, effect), 0, 0.99)
        strata.append((mos, ra * z + np.sqrt(1 - ra**2) * eta, rb * z + np.sqrt(1 - rb**2) * eta))
    return strata


@pytest.mark.parametrize("round_sd", [0.05, 0.10])
def test_zero_effect_with_seed_dominated_rounds_is_rarely_significant(round_sd):
    """Calibration: zero true effect, 3 rounds, round SD 0.05 / 0.10; at most 5% of 300
    trials read significant (resampling the 3 rounds with replacement called 24-27% of
    these trials significant)."""
    rng = np.random.default_rng(int(round_sd * 100))
    hits, spread = 0, []
    for trial in range(300):
        strata = _seed_dominated(rng, round_sd, 0.0)
        spread.append(np.var([metrics.srcc(b, y) - metrics.srcc(a, y) for y, a, b in strata],
                             ddof=1))
        hits += paired_bootstrap_rounds(strata, "srcc", n_boot=100, seed=trial)["significant"]
    assert np.sqrt(np.mean(spread)) == pytest.approx(round_sd, rel=0.25)  # the case asked for
    assert hits / 300 <= 0.05


def test_an_effect_of_three_round_sds_is_found_in_most_trials():
    """Power: a t-test on 3 rounds finds a 3-SD effect in 75% of trials when round
    variance is all there is (noncentral t, df 2); here, with 120 test images, most."""
    rng = np.random.default_rng(11)
    found = [paired_bootstrap_rounds(_seed_dominated(rng, 0.05, 0.15, n=120), "srcc",
                                     n_boot=100, seed=t)["significant"] for t in range(100)]
    assert np.mean(found) > 0.5


def test_interval_and_p_value_agree():
    """p < 0.05 exactly when the 95% interval excludes 0; p is not rounded."""
    rng = np.random.default_rng(12)
    for effect in (0.0, 0.05, 0.1, 0.2):
        r = paired_bootstrap_rounds(_seed_dominated(rng, 0.05, effect), "srcc", n_boot=100)
        assert (r["p_value"] < 0.05) == r["significant"]
        assert r["ci_low"] < r["diff"] < r["ci_high"] and 0 < r["p_value"] <= 1


@pytest.mark.parametrize("metric", ["srcc", "plcc", "krcc", "rmse"])
def test_weighted_resamples_equal_the_resamples_written_out(metric):
    """A resample as counts per image gives the metric of the resample image by image
    (ties included: coarse scores)."""
    rng = np.random.default_rng(13)
    pred, mos = np.round(rng.normal(size=30), 1), np.round(rng.normal(size=30), 1)
    idx = rng.integers(0, 30, size=(20, 30))
    counts = np.stack([np.bincount(i, minlength=30) for i in idx]).astype(float)
    fn = getattr(metrics, metric)
    want = [fn(pred[i], mos[i]) for i in idx]
    assert np.allclose(weighted_metric_rows(pred, mos, counts, metric), want, atol=1e-12)


def test_content_groups_are_drawn_whole_and_shared_test_sets_together():
    rng = np.random.default_rng(14)
    groups = np.repeat([f"c{k}" for k in range(8)], 5)
    other = np.array([f"x{k}" for k in range(40)])
    w_same, w_again, w_other = resample_weights([groups, groups[::-1], other], 50, rng)
    for row in w_same:  # every image of a group counted as often as its group was drawn
        assert all(len(set(row[groups == g])) == 1 for g in set(groups))
    assert (w_same.sum(axis=1) == 40).all() and np.array_equal(w_again, w_same[:, ::-1])
    assert not np.array_equal(w_other, w_same)  # another test set: drawn on its own


def test_content_bootstrap_widens_the_interval_when_errors_follow_content():
    """Errors shared by the images of one content: resampling images treats 60 images as
    60 independent draws; there are 10 contents, and the interval says so."""
    rng = np.random.default_rng(15)
    groups = np.repeat(np.arange(10), 6)
    mos = rng.uniform(0, 5, 60)
    a = mos + rng.normal(0, 1.0, 10)[groups] + rng.normal(0, 0.2, 60)
    b = mos + rng.normal(0, 1.0, 10)[groups] + rng.normal(0, 0.2, 60)
    by_image = paired_bootstrap_rounds([(mos, a, b)], "plcc", n_boot=N_BOOT)
    by_content = paired_bootstrap_rounds([(mos, a, b)], "plcc", n_boot=N_BOOT,
                                         units=[groups.astype(str)])
    width = lambda r: r["ci_high"] - r["ci_low"]  # noqa: E731
    assert by_content["diff"] == by_image["diff"] and by_content["n_units"] == 10
    assert width(by_content) > 1.3 * width(by_image)


def test_by_content_false_resamples_images(tmp_path, images):
    runs, base = _runs(tmp_path, images, lambda p, k: fr.rerun(p, seed=k), rounds=1, seed=1)
    paired = paired_comparisons(runs, base, ("srcc",), n_boot=N_BOOT, by_content=False)
    assert list(paired["unit"]) == ["image"] and list(paired["n_units"]) == [len(images)]


def test_rounds_interval_averages_rounds_and_resamples_content(images):
    mos = images["mos"].to_numpy()
    preds = [fr.predictor(images, seed=k) for k in range(2)]
    content = images["content_id"].to_numpy()
    got = rounds_interval([(p, mos, content) for p in preds], "srcc", n_boot=N_BOOT)
    assert got["value"] == pytest.approx(np.mean([metrics.srcc(p, mos) for p in preds]))
    assert got["ci_low"] < got["value"] < got["ci_high"] and got["n_units"] == 20
    one = rounds_interval([(preds[0], mos, None)], "srcc", n_boot=N_BOOT, seed=2)
    low, high = metrics.bootstrap_ci(preds[0], mos, "srcc", n_boot=N_BOOT, seed=2)
    assert one["ci_low"] == pytest.approx(low, abs=1e-12)
    assert one["ci_high"] == pytest.approx(high, abs=1e-12)


def test_unit_label_flags_too_few_content_groups():
    assert unit_label("image", 57) == "image"
    assert unit_label("content group", 24) == "content group (24 groups)"
    few = unit_label("content group", MIN_RELIABLE_GROUPS - 1)
    assert few.endswith("groups; too few for a reliable interval)")
