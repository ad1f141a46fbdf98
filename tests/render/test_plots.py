"""render.plots and render.diagram: PNGs drawn from analysis data, paths returned."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from iqabench.analysis.alignment import scatter_figures
from iqabench.analysis.types import FlowDiagram, WeightSample
from iqabench.analysis.weights import pca_figures
from iqabench.models.introspection import trace_hyper_flow
from iqabench.render import diagram, plots

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fake_runs as fr  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000


def test_validation_curves_and_scatter_plots(comp, tmp_path):
    curves = plots.plot_validation_curves(comp, tmp_path)
    assert [p.name for p in curves.files] == ["val_curves_synthetic.png"] and not curves.notes
    scatter = plots.plot_scatter(scatter_figures(comp), tmp_path)
    names = {p.name for p in scatter.files}
    assert "scatter_synthetic_test-resnet-last-l1-rank-0.5.png" in names
    assert "scatter_livec_test-resnet-last-l1-rank-0.5.png" in names
    assert not any("livec" in n and "rank-2" in n for n in names)  # not scored by that run
    assert all(_is_png(p) for p in curves.files + scatter.files)
    assert comp.files == [] and comp.notes == []  # renderers return, never mutate


def test_validation_curves_without_logs_say_so(comp, tmp_path, monkeypatch):
    for run in comp.runs:
        for rnd in run.rounds:
            monkeypatch.setattr(rnd, "log", None)
    written = plots.plot_validation_curves(comp, tmp_path)
    assert written.files == [] and written.notes == [
        "no log.csv in any run: validation curves skipped"]


def _sample(run: str, spread: float, seed: int) -> WeightSample:
    rng = np.random.default_rng(seed)
    groups = [fr.GROUPS[i % 4] for i in range(80)]
    centres = {g: rng.normal(0, spread, 30) for g in fr.GROUPS}
    params = np.stack([centres[g] + rng.normal(0, 1, 30) for g in groups])
    return WeightSample(run=run, dataset="synthetic", names=[f"i{i}" for i in range(80)],
                        params=params, groups=groups, group_kind="group",
                        mos=rng.uniform(0, 100, 80), round=0)


def test_weight_pca_plot_side_by_side(comp, tmp_path):
    samples = {r.label: _sample(r.label, 1 + 3 * i, i) for i, r in enumerate(comp.runs)}
    figures = pca_figures(samples, comp.baseline.label, [r.label for r in comp.runs])
    written = plots.plot_weight_pca(figures, tmp_path)
    assert len(written.files) == len(comp.runs) - 1  # baseline next to each variant
    assert all(_is_png(p) for p in written.files)


def test_weight_pca_without_groups_colours_by_mos(tmp_path):
    sample = _sample("solo", 2, 0)
    sample.groups, sample.group_kind = [], "none"
    written = plots.plot_weight_pca(pca_figures({"solo": sample}, "solo", ["solo"]), tmp_path)
    assert [p.name for p in written.files] == ["pca_weights_solo.png"]
    assert _is_png(written.files[0])


def test_dataflow_plot_is_drawn(comp, tmp_path):
    run = comp.runs[0]
    flow = FlowDiagram(run.backbone, run.input_size, trace_hyper_flow(run.config.model, "last"),
                       trace_hyper_flow(run.config.model, "multiscale"))
    written = diagram.plot_dataflow([flow], tmp_path)
    assert [p.name for p in written.files] == ["dataflow_test-resnet.png"]
    assert _is_png(written.files[0])
