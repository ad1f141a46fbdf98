"""analysis.weights: PCA, cluster separation, colour groups, figure panels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from iqabench.analysis.types import WeightSample
from iqabench.analysis.weights import colour_groups, pca_2d, pca_figures, separation_ratio


def test_pca_recovers_the_main_directions():
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(0, 10, 200), rng.normal(0, 3, 200), rng.normal(0, 0.1, (200, 5))]
    coords, share = pca_2d(x)
    assert coords.shape == (200, 2)
    assert abs(np.corrcoef(coords[:, 0], x[:, 0])[0, 1]) > 0.99
    assert share[0] > share[1] > 0 and share.sum() <= 1


def test_separation_ratio_grows_with_cluster_distance():
    rng = np.random.default_rng(0)
    groups = ["a"] * 50 + ["b"] * 50
    near = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(0.5, 1, (50, 2))]
    far = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))]
    assert separation_ratio(far, groups) > 10 * separation_ratio(near, groups)
    assert np.isnan(separation_ratio(far, ["a"] * 100))


def test_colour_groups_prefer_group_then_shared_content():
    frame = pd.DataFrame({"group": ["a", None, "b"], "content_id": ["x", "x", "y"]})
    assert colour_groups(frame) == (["a", "?", "b"], "group")
    groups, kind = colour_groups(frame.drop(columns="group"), top_k=1)
    assert groups == ["x", "x", "other"] and kind == "content_id (top 1)"
    assert colour_groups(pd.DataFrame({"content_id": ["x", "y"]})) == ([], "none")


def _sample(run: str) -> WeightSample:
    rng = np.random.default_rng(len(run))
    return WeightSample(run=run, dataset="d", names=["a", "b", "c"], params=rng.normal(size=(3, 4)),
                        groups=[], group_kind="none", mos=np.zeros(3), round=0)


def test_pca_figures_put_the_baseline_next_to_each_variant():
    samples = {k: _sample(k) for k in ("base", "v1", "v2")}
    figures = pca_figures(samples, "base", ["base", "v1", "v2"])
    assert [[p.sample.run for p in f] for f in figures] == [["base", "v1"], ["base", "v2"]]
    assert figures[0][0].coords.shape == (3, 2)
    assert [[p.sample.run for p in f] for f in pca_figures({"base": samples["base"]}, "base",
                                                           ["base", "v1"])] == [["base"]]
