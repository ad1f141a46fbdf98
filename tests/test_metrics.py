"""Metrics agree with hand-computed values and a second method; intervals behave like intervals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from iqabench.metrics import bootstrap_ci, compute_metrics, logistic_plcc, paired_bootstrap


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
    assert compute_metrics(pred, mos) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("tied", [False, True])
def test_metrics_match_a_second_method(data, tied):
    """SRCC as Pearson of average ranks, KRCC by counting pairs, PLCC and RMSE from their formulas."""
    pred, mos = data
    if tied:  # coarse scores: many ties on both sides
        pred, mos = np.round(pred / 20), np.round(mos / 25)
    m = compute_metrics(pred, mos)
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
