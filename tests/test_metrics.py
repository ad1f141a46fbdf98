"""Metrics agree with scipy, and the intervals behave like intervals."""

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


def test_metrics_match_scipy(data):
    pred, mos = data
    m = compute_metrics(pred, mos)
    assert m["srcc"] == pytest.approx(stats.spearmanr(pred, mos)[0], abs=1e-12)
    assert m["plcc"] == pytest.approx(stats.pearsonr(pred, mos)[0], abs=1e-12)
    assert m["krcc"] == pytest.approx(stats.kendalltau(pred, mos)[0], abs=1e-12)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((pred - mos) ** 2)), abs=1e-9)


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
