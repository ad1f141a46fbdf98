"""Losses: the ranking hinge counts only ordered pairs, and its margin follows the label scale."""

from __future__ import annotations

import itertools

import pytest
import torch

from iqabench.losses import IQALoss, l1_loss, ranking_loss


def brute_force_rank(pred, target, margin):
    terms = [max(0.0, -(pred[i] - pred[j]) * (1 if target[i] > target[j] else -1) + margin)
             for i, j in itertools.permutations(range(len(pred)), 2) if target[i] != target[j]]
    return sum(terms) / len(terms)


def test_ranking_loss_zero_when_ordered_with_margin():
    target = torch.tensor([0.1, 0.4, 0.7, 0.9])
    pred = torch.tensor([0.0, 0.2, 0.4, 0.6])  # same order, neighbours 0.2 apart > margin
    assert ranking_loss(pred, target, margin=0.1).item() == 0.0


def test_ranking_loss_positive_when_one_pair_swapped():
    target = torch.tensor([0.1, 0.4, 0.7, 0.9])
    pred = torch.tensor([0.0, 0.4, 0.2, 0.6])  # images 1 and 2 swapped
    loss = ranking_loss(pred, target, margin=0.1).item()
    assert loss > 0
    # only the swapped pair (both orders) is penalised: 2 * (0.2 + 0.1) over 12 pairs
    assert loss == pytest.approx(2 * 0.3 / 12)


def test_ranking_loss_matches_brute_force_and_skips_ties():
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(9, generator=gen)
    target = torch.tensor([0.1, 0.1, 0.5, 0.5, 0.5, 0.2, 0.9, 0.3, 0.3])  # ties: no order
    expected = brute_force_rank(pred.tolist(), target.tolist(), 0.1)
    assert ranking_loss(pred, target, 0.1).item() == pytest.approx(expected, rel=1e-6)


def test_ranking_loss_without_valid_pairs_is_zero_and_differentiable():
    pred = torch.rand(4, requires_grad=True)
    loss = ranking_loss(pred, torch.full((4,), 0.5))
    loss.backward()
    assert loss.item() == 0.0 and pred.grad is not None


def test_composite_loss_and_parts():
    pred, target = torch.tensor([0.2, 0.5, 0.4]), torch.tensor([0.1, 0.3, 0.8])
    loss, parts = IQALoss("l1+rank", alpha=0.5, margin=0.1)(pred, target)
    assert set(parts) == {"l1", "rank"}
    assert parts["l1"].item() == pytest.approx(l1_loss(pred, target).item())
    assert loss.item() == pytest.approx(parts["l1"].item() + 0.5 * parts["rank"].item())
    only_l1, parts = IQALoss("l1")(pred, target)
    assert set(parts) == {"l1"} and only_l1.item() == pytest.approx((0.1 + 0.2 + 0.4) / 3)


def test_raw_labels_scale_the_margin():
    unit = IQALoss("rank", margin=0.1, label_scale="unit", label_range=(0, 100))
    raw = IQALoss("rank", margin=0.1, label_scale="raw", label_range=(0, 100))
    assert unit.effective_margin == pytest.approx(0.1)
    assert raw.effective_margin == pytest.approx(10.0)
    target = torch.tensor([10.0, 60.0])
    # predictions 5 raw units apart, in order: inside a 10-unit margin but outside 0.1
    assert raw(torch.tensor([0.0, 5.0]), target)[0].item() == pytest.approx(5.0)
    assert unit(torch.tensor([0.0, 5.0]), target)[0].item() == 0.0
    assert "raw" in raw.describe() and "10" in raw.describe()
    assert "[0, 1]" in unit.describe()


def test_bad_loss_name():
    with pytest.raises(ValueError, match="l1"):
        IQALoss("mse")
