"""render.plots and render.diagram: PNGs drawn from analysis data, paths returned."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from iqabench.analysis.types import FlowDiagram, WeightSample
from iqabench.analysis.weights import pca_figures
from iqabench.compare import scatter_panels
from iqabench.models.introspection import trace_hyper_flow
from iqabench.render import diagram, plots

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fake_runs as fr  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000


def test_training_curves_and_one_scatter_figure(comp, tmp_path):
    curves = plots.plot_curves(comp, tmp_path)
    assert [p.name for p in curves.files] == ["curves_synthetic.png", "curves_synthetic.pdf"]
    assert curves.notes == ["curves_synthetic: no per-step loss file in the runs; the loss "
                            "panel shows log.csv's train_loss per epoch"]
    figures = scatter_panels(comp)
    assert [f.dataset for f in figures] == ["synthetic", "livec"]
    assert [p.label for p in figures[0].panels] == [r.name for r in comp.runs]
    assert [p.label for p in figures[1].panels] == [comp.runs[0].name, comp.runs[1].name]
    scatter = plots.plot_scatter(figures, tmp_path)
    assert [p.name for p in scatter.files] == ["scatter.png", "scatter.pdf"]
    assert all(_is_png(p) for p in curves.files + scatter.files if p.suffix == ".png")
    assert all(p.read_bytes()[:5] == b"%PDF-" for p in curves.files + scatter.files
               if p.suffix == ".pdf")
    assert comp.files == [] and comp.notes == []  # renderers return, never mutate


def test_loss_per_step_is_drawn_from_the_steps_file(comp, tmp_path, monkeypatch):
    for run in comp.runs:
        for rnd in run.rounds:
            steps = pd.DataFrame({"epoch": np.repeat([1, 2, 3], 20), "step": np.arange(1, 61),
                                  "loss": np.linspace(0.5, 0.1, 60)})
            monkeypatch.setattr(rnd, "steps", steps)
    written = plots.plot_curves(comp, tmp_path)
    assert written.notes == [] and _is_png(written.files[0])
    x = plots._step_positions(steps)
    assert x[0] == 1 / 20 and x[19] == 1.0 and x[-1] == 3.0  # fractional epochs


def test_epoch_axis_ticks_are_integers_even_for_one_epoch():
    ax = Figure().subplots()
    ax.plot([1], [0.5], "o")
    plots._epoch_axis(ax, 1)
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_curves_without_logs_say_so(comp, tmp_path, monkeypatch):
    for run in comp.runs:
        for rnd in run.rounds:
            monkeypatch.setattr(rnd, "log", None)
    written = plots.plot_curves(comp, tmp_path)
    assert written.files == [] and written.notes == [
        "no log.csv in any run: training curves skipped"]


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
    pngs = [p for p in written.files if p.suffix == ".png"]
    assert len(pngs) == len(comp.runs) - 1  # baseline next to each variant
    assert all(_is_png(p) for p in pngs)
    assert {p.with_suffix(".pdf") for p in pngs} == set(written.files) - set(pngs)


def test_weight_pca_without_groups_colours_by_mos(tmp_path):
    sample = _sample("solo", 2, 0)
    sample.groups, sample.group_kind = [], "none"
    written = plots.plot_weight_pca(pca_figures({"solo": sample}, "solo", ["solo"]), tmp_path)
    assert [p.name for p in written.files] == ["pca_weights_solo.png", "pca_weights_solo.pdf"]
    assert _is_png(written.files[0])


def test_dataflow_plot_is_drawn(comp, tmp_path):
    run = comp.runs[0]
    flow = FlowDiagram(run.backbone, run.input_size, trace_hyper_flow(run.config.model, "last"),
                       trace_hyper_flow(run.config.model, "multiscale"))
    written = diagram.plot_dataflow([flow], tmp_path)
    assert [p.name for p in written.files] == ["dataflow_test-resnet.png",
                                               "dataflow_test-resnet.pdf"]
    assert _is_png(written.files[0])
