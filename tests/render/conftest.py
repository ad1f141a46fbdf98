"""Run folders and one comparison shared by the render tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from iqabench.compare import analyse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fake_runs as fr  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Baseline L1, two alphas of L1 + rank, a multiscale 2-round run; a cross-dataset set."""
    root = tmp_path_factory.mktemp("runs")
    images, other = fr.make_images(), fr.make_images(40, seed=3, prefix="x")
    p, po = fr.predictor(images), fr.predictor(other, seed=7)
    extra = {"livec": (other, po)}
    paths = [
        fr.write_round(root / "base", images, p, extra=extra, val_srcc=[0.6, 0.8, 0.79]),
        fr.write_round(root / "a05", images, fr.rerun(p, seed=1), loss="l1+rank", alpha=0.5,
                       extra={"livec": (other, fr.rerun(po, seed=1))}, val_srcc=[0.6, 0.82, 0.81]),
        fr.write_round(root / "a2", images, fr.rerun(p, seed=2), loss="l1+rank", alpha=2.0,
                       val_srcc=[0.55, 0.7, 0.75]),
        fr.write_multi_round(root / "ms", [(images, fr.predictor(images, 5, seed=k))
                                           for k in range(2)],
                             hyper_input="multiscale", val_srcc=[0.7, 0.85, 0.86]),
    ]
    return paths


@pytest.fixture(scope="module")
def comp(runs):
    """The comparison of ``runs``; its design card lists the runs' backbone only."""
    return analyse(runs, n_boot=200, design_backbones=())
