"""analysis.alignment: rounds paired by number, images matched by name, scatter data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from iqabench import metrics
from iqabench.analysis.alignment import align, scatter_figures
from iqabench.analysis.loading import load_runs
from iqabench.compare import analyse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fake_runs as fr  # noqa: E402


@pytest.fixture
def images():
    return fr.make_images()


def test_partial_overlap_uses_shared_images_and_says_so(tmp_path, images):
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    part = images.iloc[:80]
    b = fr.write_round(tmp_path / "b", part, fr.predictor(part, seed=4), loss="l1+rank")
    runs, base = load_runs([a, b])
    aligned = align(base, runs[1], "synthetic")
    assert aligned.n_images == 80 and "partly overlap" in aligned.note


def test_rounds_pair_by_number(tmp_path, images):
    preds = [fr.predictor(images, seed=k) for k in range(3)]
    a = fr.write_multi_round(tmp_path / "a", [(images, p) for p in preds])
    b = fr.write_multi_round(tmp_path / "b", [(images, p) for p in preds[:2]], loss="l1+rank")
    runs, base = load_runs([a, b])
    aligned = align(base, runs[1], "synthetic")
    assert aligned.rounds == [0, 1]
    for (mos, pa, pb), k in zip(aligned.strata, aligned.rounds):
        assert np.allclose(pa, pb)  # round k of one with round k of the other


def test_disjoint_images_align_to_nothing(tmp_path, images):
    other = fr.make_images(prefix="other")
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    b = fr.write_round(tmp_path / "b", other, fr.predictor(other), loss="l1+rank")
    runs, base = load_runs([a, b])
    aligned = align(base, runs[1], "synthetic")
    assert aligned.strata == [] and aligned.note.startswith("not comparable")


def test_scatter_figures_pair_baseline_and_variant_on_the_same_images(tmp_path, images):
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    part = images.iloc[:60]
    b = fr.write_round(tmp_path / "b", part, fr.predictor(part, seed=4), loss="l1+rank")
    comp = analyse([a, b], n_boot=100)
    [figure] = scatter_figures(comp)
    assert figure.dataset == "synthetic" and figure.label == comp.runs[1].label
    base, variant = figure.panels
    assert len(base.mos) == len(variant.mos) == 60 and np.array_equal(base.mos, variant.mos)
    assert base.srcc == pytest.approx(metrics.srcc(base.pred, base.mos))
    assert base.fit_x.shape == base.fit_y.shape == (200,)


def test_content_ids_travel_through_alignment(tmp_path, images):
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    part = images.iloc[::-1].iloc[:90]  # another order, fewer images
    b = fr.write_round(tmp_path / "b", part, fr.predictor(part, seed=4), loss="l1+rank")
    runs, base = load_runs([a, b])
    aligned = align(base, runs[1], "synthetic")
    assert aligned.unit == "content group"
    [units], [(mos, _, _)] = aligned.units, aligned.strata
    by_mos = dict(zip(images["mos"], images["content_id"]))
    assert list(units) == [f"content:{by_mos[m]}" for m in mos]  # each image its own id


def test_images_without_shared_content_are_their_own_units(tmp_path, images):
    unique = images.assign(content_id=images["name"])
    a = fr.write_round(tmp_path / "a", unique, fr.predictor(unique))
    b = fr.write_round(tmp_path / "b", unique, fr.predictor(unique, seed=4), loss="l1+rank")
    runs, base = load_runs([a, b])
    aligned = align(base, runs[1], "synthetic")
    assert aligned.unit == "image" and len(set(aligned.units[0])) == len(unique)


def test_scatter_fit_is_monotonic_and_names_its_form(tmp_path, images):
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    [figure] = scatter_figures(analyse([a], n_boot=100))
    [panel] = figure.panels
    assert panel.fit_form == "monotonic 5-parameter logistic"
    assert np.all(np.diff(panel.fit_y) >= -1e-12)
