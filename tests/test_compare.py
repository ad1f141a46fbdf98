"""compare, the orchestrator: arguments checked, files written and listed, notes for
plots that could not be drawn, weights from a real checkpoint, no backend switch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from iqabench import runfolder
from iqabench.analysis.loading import load_run
import iqabench.compare as compare_module
from iqabench.compare import DESIGN_BACKBONES, NO_PROFILE, compare, weight_sample, weight_samples
from iqabench.data import load_dataset
from iqabench.errors import IqabenchError
from iqabench.models.hyperiqa import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fake_runs as fr  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def runs_backbones_only(monkeypatch):
    """The design card lists the runs' backbones only (ResNet-50 and Swin-T cost ~20 s
    to trace); the test of those rows puts them back."""
    monkeypatch.setattr(compare_module, "DESIGN_BACKBONES", ())


@pytest.fixture
def images():
    return fr.make_images()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    images = fr.make_images()
    p = fr.predictor(images)
    return [fr.write_round(root / "base", images, p, val_srcc=[0.6, 0.8, 0.79]),
            fr.write_round(root / "a05", images, fr.rerun(p, seed=1), loss="l1+rank", alpha=0.5),
            fr.write_multi_round(root / "ms", [(images, fr.predictor(images, 5, seed=k))
                                               for k in range(2)], hyper_input="multiscale")]


def test_compare_refuses_a_non_empty_out_folder(tmp_path, images):
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(IqabenchError, match="not empty"):
        compare([a], out=tmp_path / "out")


def test_compare_refuses_unknown_metrics_and_too_few_resamples(runs):
    with pytest.raises(IqabenchError, match="unknown metric 'mae'"):
        compare(runs, metrics=("srcc", "mae"))
    with pytest.raises(IqabenchError, match="too few resamples"):
        compare(runs, n_boot=50)


def test_tables_and_report_are_written(runs, tmp_path):
    out = tmp_path / "out"
    comp = compare(runs, out=out, n_boot=200, plots=False)
    for name in ("design_card", "runs", "ablation", "alpha_sweep", "paired"):
        assert (out / f"{name}.md").read_text().startswith("## ")
        assert len(pd.read_csv(out / f"{name}.csv")) > 0
        assert (out / f"{name}.tex").read_text().startswith("\\begin{table}")
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"run", "dataset", "srcc", "plcc", "srcc_mean", "srcc_std"} <= set(metrics.columns)
    assert len(metrics) == len(comp.summary)
    report = (out / "report.md").read_text()
    assert "Paired comparison against the baseline run" in report and "(baseline)" in report
    assert report.index("## Design card") < report.index("## Runs") < report.index("## Ablation")
    assert sorted(comp.files) == sorted(p for p in out.iterdir() if p.name != ".iqabench-compare-files")


def test_plots_are_listed_in_files_and_report_and_skips_are_noted(runs, tmp_path):
    out = tmp_path / "out"
    comp = compare(runs, out=out, n_boot=200, pca_limit=20)
    pngs = [p for p in comp.files if p.suffix == ".png"]
    assert {"curves_synthetic.png", "scatter.png", "dataflow_test-resnet.png"} <= {
        p.name for p in pngs}
    assert all(p.with_suffix(".pdf") in comp.files for p in pngs)
    report = (out / "report.md").read_text()
    assert all(f"({p.name})" in report and f"({p.stem}.pdf)" in report for p in pngs)
    assert any("best.pt not found" in n for n in comp.notes)  # fake runs have no checkpoint
    assert "weight PCA skipped for" in report
    comp = compare(runs[:1], out=tmp_path / "none", n_boot=200, pca_limit=0)
    assert "--pca-limit 0: weight PCA skipped" in comp.notes


@pytest.mark.slow
def test_design_card_lists_resnet50_and_swin_t_with_counted_params(runs, monkeypatch,
                                                                   tmp_path):
    """Without --profile: params and GFLOPs counted for every row, latency says why."""
    monkeypatch.setattr(compare_module, "DESIGN_BACKBONES", DESIGN_BACKBONES)
    out = tmp_path / "out"
    compare(runs, out=out, n_boot=100, plots=False)
    card = pd.read_csv(out / "design_card.csv")
    assert {"resnet50", "swin_tiny_patch4_window7_224"} <= set(card["backbone"])
    assert card["params_m"].notna().all() and card["gflops"].notna().all()
    resnet = card.set_index(["backbone", "hyper_input"]).loc[("resnet50", "last")]
    assert round(resnet["params_m"], 2) == 27.38 and resnet["input_size"] == 224
    shown = (out / "design_card.md").read_text()
    row = next(line for line in shown.splitlines() if line.startswith("| resnet50 ")
               and "| last " in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "27.38" and cells[5] == NO_PROFILE
    assert "no run (no ImageNet weights offline)" in cells


def test_weight_pca_skips_with_a_note_when_no_checkpoint(runs):
    loaded = [load_run(p) for p in runs]
    for run, label in zip(loaded, "abc"):
        run.label = label
    samples, notes = weight_samples(loaded, limit=20)
    assert samples == {} and len(notes) == len(runs)
    assert all("best.pt not found" in n for n in notes)


def test_weight_pca_from_a_real_checkpoint(tmp_path):
    """weight_sample: best.pt -> introspection.target_weights on the run's test images."""
    table = load_dataset("synthetic")
    frame = table.frame.iloc[:12]
    images = frame[["name", "mos", "content_id", "group"]].reset_index(drop=True)
    folder = fr.write_round(tmp_path / "run", images, images["mos"].to_numpy())
    model = build_model("test_resnet", "last", input_size=64)
    torch.save({"model": model.state_dict(), "model_config": model.config.to_dict(),
                "config": runfolder.read_config(folder).to_dict(), "epoch": 1,
                "label_range": [0.0, 100.0]}, folder / "best.pt")
    run = load_run(folder)
    run.label = "run"
    sample = weight_sample(run, limit=8)
    sizes = (224, 112, 56, 28, 14, 1)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))  # weights and biases
    assert sample.params.shape == (8, n_params)
    assert sample.group_kind == "group" and len(sample.groups) == 8
    assert set(sample.names) <= set(images["name"])


def test_overwrite_removes_only_the_previous_compares_own_files(tmp_path, images):
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    b = fr.write_round(tmp_path / "b", images, fr.predictor(images, seed=1), loss="l1+rank")
    out = tmp_path / "out"
    compare([a, b], out=out, n_boot=100)
    first = {f.name for f in out.iterdir()}
    b_files = {name for name in first if name.startswith(("alpha_sweep.", "paired."))}
    assert len(b_files) == 6, first  # tables that only exist with the second run
    (out / "notes.md").write_text("the user's own file")
    compare([a], out=out, n_boot=100, overwrite=True)
    second = {f.name for f in out.iterdir()}
    assert not b_files & second  # tables of the run no longer compared are gone
    assert "notes.md" in second and "report.md" in second
    assert (out / ".iqabench-compare-files").read_text().split() == sorted(second - {
        "notes.md", ".iqabench-compare-files"})


def test_importing_leaves_matplotlibs_backend_alone():
    """A notebook's backend stays what it was (svg here: a switch to Agg would show),
    after importing the renderers and after importing compare."""
    code = ("import matplotlib; print(matplotlib.get_backend()); "
            "import iqabench.render.tables, iqabench.render.plots, iqabench.render.diagram, "
            "iqabench.render.markdown; print(matplotlib.get_backend()); "
            "import iqabench.compare; print(matplotlib.get_backend())")
    env = {**os.environ, "MPLBACKEND": "svg", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["svg", "svg", "svg"]


def test_renderers_import_no_model_or_loader():
    code = ("import sys, iqabench.render.tables, iqabench.render.plots, iqabench.render.diagram, "
            "iqabench.render.markdown; "
            "print(' '.join(m for m in ('iqabench.analysis.loading', 'iqabench.evaluation', "
            "'iqabench.models.introspection', 'iqabench.compare', 'iqabench.data', "
            "'matplotlib.pyplot') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""
