"""Metrics agree with hand-computed values and a second method; intervals behave like intervals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize, stats

from iqabench.metrics import (
    MARGIN,
    bootstrap_ci,
    compute_metrics,
    fit_logistic,
    krcc,
    logistic5,
    logistic_plcc,
    paired_bootstrap,
    plcc,
    srcc,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    mos = rng.uniform(0, 100, 200)
    pred = mos + rng.normal(0, 25, 200)
    return pred, mos


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank: (number below) + (number equal + 1) / 2."""
    below = (x[None, :] < x[:, None]).sum(axis=1)
    equal = (x[None, :] == x[:, None]).sum(axis=1)
    return below + (equal + 1) / 2


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    return float((dx * dy).sum() / np.sqrt((dx**2).sum() * (dy**2).sum()))


def _tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall tau-b from a direct count over all pairs: (C - D) / sqrt((n0 - tx) (n0 - ty))."""
    sx = np.sign(x[None, :] - x[:, None])[np.triu_indices(x.size, 1)]
    sy = np.sign(y[None, :] - y[:, None])[np.triu_indices(y.size, 1)]
    concordant_minus_discordant = (sx * sy).sum()
    return float(concordant_minus_discordant / np.sqrt((sx != 0).sum() * (sy != 0).sum()))


@pytest.mark.parametrize(
    ("pred", "mos", "expected"),
    [
        # ranks differ by d = (-1, 1, -1, 1, 0): SRCC = 1 - 6 * 4 / (5 * 24); 8 concordant and
        # 2 discordant pairs of 10; centred products sum to 8 over sqrt(10 * 10); squared errors 4 / 5
        ([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], {"srcc": 0.8, "plcc": 0.8, "krcc": 0.6, "rmse": np.sqrt(0.8)}),
        # ties: average ranks (1.5, 1.5, 3, 4) and (1, 2.5, 2.5, 4) correlate 3.75 / 4.5; tau-b:
        # 4 concordant, 0 discordant, one pair tied in each: 4 / sqrt(5 * 5); PLCC 2 / sqrt(2.75 * 2)
        ([1, 1, 2, 3], [1, 2, 2, 3], {"srcc": 5 / 6, "plcc": 2 / np.sqrt(5.5), "krcc": 0.8, "rmse": 0.5}),
        # reversed order: every pair discordant
        ([3, 2, 1], [10, 20, 30], {"srcc": -1.0, "plcc": -1.0, "krcc": -1.0, "rmse": np.sqrt((49 + 324 + 841) / 3)}),
    ],
)
def test_metrics_on_hand_computed_examples(pred, mos, expected):
    assert compute_metrics(pred, mos, logistic=None) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("tied", [False, True])
def test_metrics_match_a_second_method(data, tied):
    """SRCC as Pearson of average ranks, KRCC by counting pairs, PLCC and RMSE from their formulas."""
    pred, mos = data
    if tied:  # coarse scores: many ties on both sides
        pred, mos = np.round(pred / 20), np.round(mos / 25)
    m = compute_metrics(pred, mos, logistic=None)
    assert m["srcc"] == pytest.approx(_pearson(_average_ranks(pred), _average_ranks(mos)), abs=1e-12)
    assert m["plcc"] == pytest.approx(_pearson(pred, mos), abs=1e-12)
    assert m["krcc"] == pytest.approx(_tau_b(pred, mos), abs=1e-12)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((pred - mos) ** 2)), abs=1e-9)
    assert 0.3 < m["krcc"] < m["srcc"] < 0.95  # a real but imperfect agreement, not a degenerate case


def test_logistic_plcc_at_least_linear_on_a_monotone_curve():
    rng = np.random.default_rng(1)
    mos = rng.uniform(0, 1, 300)
    pred = np.log(mos + 0.01) + rng.normal(0, 0.05, 300)  # monotone but bent
    assert logistic_plcc(pred, mos, 5) >= stats.pearsonr(pred, mos)[0] - 1e-6
    assert compute_metrics(pred, mos, logistic=4)["plcc_logistic"] > 0.9


def test_bootstrap_interval_brackets_the_estimate(data):
    pred, mos = data
    low, high = bootstrap_ci(pred, mos, "srcc", n_boot=300, seed=1)
    assert low < compute_metrics(pred, mos)["srcc"] < high
    assert bootstrap_ci(pred, mos, "srcc", n_boot=300, seed=1) == (low, high)  # seeded


def test_paired_bootstrap_sees_a_real_difference(data):
    pred, mos = data
    better = mos + np.random.default_rng(2).normal(0, 5, mos.size)
    result = paired_bootstrap(pred, better, mos, n_boot=300)
    assert result["diff"] > 0 and result["significant"] and result["p_value"] < 0.05
    same = paired_bootstrap(pred, pred, mos, n_boot=100)
    assert same["diff"] == 0 and not same["significant"]


def test_logistic_fit_finds_the_s_curve_not_a_straight_line():
    """A saturating relation: the fitted logistic must beat the linear PLCC clearly."""
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 1, 500)
    mos = 4 / (1 + np.exp(-(pred - 0.5) * 12)) + rng.normal(0, 0.1, 500)
    linear = stats.pearsonr(pred, mos)[0]
    for params in (4, 5):
        assert logistic_plcc(pred, mos, params) > linear + 0.02


def _step_case() -> tuple[np.ndarray, np.ndarray]:
    """57 images whose MOS jumps up at a third of the prediction range and then falls:
    raw PLCC 0.04, SRCC 0.19, the shape an unconstrained 5-parameter fit follows with a
    rise and a fall (a step in its sigmoid, a negative slope after)."""
    rng = np.random.default_rng(8)
    x = np.sort(rng.uniform(0, 1, 57))
    y = np.where(x < 0.35, 1.0, 3.5 - 4.0 * (x - 0.35)) + rng.normal(0, 0.5, 57)
    return x, y


def _unconstrained_fit(x, y):
    """The plain least-squares 5-parameter logistic (no bounds), best of a few starts."""
    best, best_sse = None, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rate in (1.0, 4.0, 16.0, 64.0):
            try:
                c, _ = optimize.curve_fit(logistic5, x, y, p0=[np.ptp(y), rate, np.mean(x), 0.0,
                                                                np.mean(y)], maxfev=20000)
            except RuntimeError:
                continue
            sse = np.sum((logistic5(x, *c) - y) ** 2)
            if sse < best_sse:
                best, best_sse = c, sse
    return best


def test_step_like_data_get_a_monotonic_bounded_fit():
    x, y = _step_case()
    assert abs(stats.pearsonr(x, y)[0]) < 0.06 and 0.15 < stats.spearmanr(x, y)[0] < 0.25
    # the failure case is real: unconstrained, the curve rises and falls and "PLCC" jumps
    free = _unconstrained_fit(x, y)
    grid = np.linspace(x.min(), x.max(), 2001)
    assert np.any(np.diff(logistic5(grid, *free)) < 0)
    assert stats.pearsonr(logistic5(x, *free), y)[0] > 0.6
    fit = fit_logistic(x, y, 5)
    curve = fit(grid)
    assert fit.form == "5pl" and fit.direction == 1
    assert np.all(np.diff(curve) >= -1e-12)  # non-decreasing on a dense grid
    assert np.all(curve >= y.min() - MARGIN * np.ptp(y))
    assert np.all(curve <= y.max() + MARGIN * np.ptp(y))
    # no step: the steepest rise takes over a third of the prediction range from 10% to 90%
    b1, b2 = fit.params[:2]
    assert 4.39 / b2 > np.ptp(x) / 3 or b1 < 0.1 * np.ptp(y)
    assert logistic_plcc(x, y) < 0.45


def test_noise_predictions_gain_little_from_the_logistic():
    """Pure noise on 57 images: the unconstrained fit read 0.25-0.41; the monotonic one
    stays near the raw correlations."""
    rng = np.random.default_rng(1)
    got, raw = [], []
    for _ in range(25):
        x, y = rng.normal(size=57), rng.uniform(0, 5, 57)
        got.append(abs(logistic_plcc(x, y)))
        raw.append(abs(stats.spearmanr(x, y)[0]))
    assert np.median(got) < 0.2 and np.mean(got) < np.mean(raw) + 0.08


def test_fit_follows_the_direction_of_the_ranks_and_ignores_prediction_units():
    rng = np.random.default_rng(3)
    mos = rng.uniform(0, 5, 200)
    pred = np.log(mos + 0.5) + rng.normal(0, 0.1, 200)
    up = fit_logistic(pred, mos)
    scaled = fit_logistic(3 * pred + 7, mos)
    down = fit_logistic(-pred, mos)
    assert up.direction == 1 and down.direction == -1
    assert np.allclose(scaled(3 * pred + 7), up(pred), atol=1e-6)
    assert np.allclose(down(-pred), up(pred), atol=1e-6)
    grid = np.linspace(-pred.max(), -pred.min(), 500)
    assert np.all(np.diff(down(grid)) <= 1e-12)  # non-increasing in reversed predictions
    assert logistic_plcc(-pred, mos) == pytest.approx(-logistic_plcc(pred, mos), abs=1e-9)


def test_fit_falls_back_and_says_which_form_it_used():
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, 5)  # five images: too few for five parameters
    assert fit_logistic(x, 2 * x + rng.normal(0, 0.01, 5), 5).form == "4pl"
    assert fit_logistic(x[:4], x[:4], 5).form == "linear"
    flat = fit_logistic(np.ones(10), np.arange(10.0))
    assert flat.form == "linear" and np.allclose(flat(np.ones(3)), 4.5)
    assert fit_logistic(x, x, 4).form == "4pl"
    assert fit_logistic(x, x).description == "monotonic 4-parameter logistic"


def test_correlations_of_a_constant_side_are_nan_without_a_warning():
    flat, ramp = np.full(8, 3.0), np.arange(8.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for corr in (srcc, plcc, krcc):
            assert np.isnan(corr(flat, ramp)) and np.isnan(corr(ramp, flat))
            assert corr(ramp, ramp) == pytest.approx(1.0)


def test_vqeg_rmse_is_after_the_mapping_and_raw_rmse_is_not():
    rng = np.random.default_rng(5)
    mos = rng.uniform(0, 100, 300)
    pred = 0.02 * mos + 1 + rng.normal(0, 0.01, 300)  # the right order on another scale
    m = compute_metrics(pred, mos)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((pred - mos) ** 2)))
    assert m["rmse"] > 40 and m["rmse_mapped"] < 1.0
    fit = fit_logistic(pred, mos)
    assert m["rmse_mapped"] == pytest.approx(np.sqrt(np.mean((fit(pred) - mos) ** 2)))
    assert m["logistic_form"] == fit.form
    assert set(compute_metrics(pred, mos, logistic=None)) == {"srcc", "plcc", "krcc", "rmse"}


def test_bootstrap_p_value_is_never_zero():
    rng = np.random.default_rng(6)
    mos = rng.uniform(0, 1, 100)
    worse, better = mos + rng.normal(0, 0.5, 100), mos + rng.normal(0, 0.01, 100)
    result = paired_bootstrap(worse, better, mos, n_boot=199)
    assert result["p_value"] == pytest.approx(2 / 200)  # every resample above 0


def test_bootstrap_by_content_draws_whole_groups_and_widens_when_errors_follow_content():
    rng = np.random.default_rng(7)
    groups = np.repeat(np.arange(12), 8)
    mos = rng.uniform(0, 5, 96)
    pred = mos + rng.normal(0, 1.0, 12)[groups] + rng.normal(0, 0.1, 96)
    by_image = bootstrap_ci(pred, mos, "plcc", n_boot=400)
    by_content = bootstrap_ci(pred, mos, "plcc", n_boot=400, groups=groups)
    assert by_content[0] < compute_metrics(pred, mos, None)["plcc"] < by_content[1]
    assert by_content[1] - by_content[0] > 1.3 * (by_image[1] - by_image[0])
    single = bootstrap_ci(pred, mos, "plcc", n_boot=400, groups=np.arange(96))
    assert single == by_image  # one image per group: the image bootstrap, same draws
