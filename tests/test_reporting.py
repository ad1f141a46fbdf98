"""reporting: tables (CSV, Markdown), plots (PNG), the hyper-input trace."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from iqabench import reporting
from iqabench.compare import WeightSample, compare, load_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fake_runs as fr  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
    return compare(runs, n_boot=200, plots=False)


def test_backbone_table_without_profile_says_not_measured(comp):
    table = reporting.backbone_table(comp)
    shown = table.display.iloc[0]
    assert shown["params (M)"] == reporting.NOT_MEASURED
    assert shown["ms/image"] == reporting.NOT_MEASURED
    assert {"synthetic SRCC median", "livec PLCC mean ± std"} <= set(table.display.columns)
    ms = table.display.set_index("run").loc["test_resnet/multiscale/l1"]
    s = comp.summary.set_index(["run", "dataset"]).loc[("test_resnet/multiscale/l1", "synthetic")]
    assert ms["synthetic SRCC median"] == f"{s['srcc']:.3f}"
    assert ms["synthetic SRCC mean ± std"] == f"{s['srcc_mean']:.3f} ± {s['srcc_std']:.3f}"
    shown = table.display.set_index("run")
    assert shown.loc["test_resnet/last/l1+rank(2)", "livec SRCC median"] == "—"


def test_backbone_table_reads_profile_and_prefers_cuda(runs, tmp_path):
    prof = pd.DataFrame({
        "backbone": ["test_resnet"] * 3, "hyper_input": ["last", "last", "multiscale"],
        "params_m": [1.14, 1.14, 1.16], "gmacs": [0.05, 0.05, 0.06], "gflops": [0.1, 0.1, 0.12],
        "ms_per_patch": [3.0, 0.2, 3.3], "ms_per_image": [75.0, 5.0, 80.0],
        "images_per_s": [13.0, 200.0, 12.0], "device": ["cpu", "cuda", "cpu"],
        "dtype": ["fp32", "bf16", "fp32"], "batch_size": [16, 64, 16], "input_size": [64] * 3,
        "n_crops": [25] * 3})
    (tmp_path / "prof").mkdir()
    prof.to_csv(tmp_path / "prof" / "profile.csv", index=False)
    comp = compare(runs[:1] + runs[3:], profiles=[tmp_path / "prof"], n_boot=200, plots=False)
    shown = reporting.backbone_table(comp).display.set_index("run")
    assert shown.loc["test_resnet/last/l1", "ms/image"] == "5.0"
    measured = shown.loc["test_resnet/last/l1", "measured on"]
    assert measured == "cuda, bf16, batch 64, 64 px, 25 crops/image"
    assert shown.loc["test_resnet/multiscale/l1", "params (M)"] == "1.16"
    assert reporting.profile_table(comp) is not None


def test_ablation_reports_best_val_epoch_and_delta_against_last_l1(comp):
    table = reporting.ablation_table(comp).display.set_index("run")
    assert table.loc["test_resnet/last/l1", "Δ val SRCC vs last/L1"] == "ref"
    assert table.loc["test_resnet/last/l1+rank(0.5)", "val SRCC median"] == "0.820"
    assert table.loc["test_resnet/last/l1+rank(0.5)", "Δ val SRCC vs last/L1"] == "+0.020"
    assert table.loc["test_resnet/multiscale/l1", "Δ val SRCC vs last/L1"] == "+0.060"
    assert table.loc["test_resnet/last/l1+rank(2)", "loss"] == "L1 + α·rank"


def test_alpha_sweep_lists_alphas_with_l1_as_zero_and_marks_best(comp):
    table = reporting.alpha_table(comp)
    data = table.data
    last = data[data["hyper_input"] == "last"]
    assert list(last["alpha"]) == [0.0, 0.5, 2.0]
    assert list(last["best_on_val"]) == [False, True, False]
    assert "multiscale" not in set(data["hyper_input"])  # no rank run there: nothing swept


def test_alpha_sweep_absent_without_rank_runs(runs):
    comp = compare([runs[0], runs[3]], n_boot=200, plots=False)
    assert reporting.alpha_table(comp) is None


def test_paired_table_marks_reruns_not_significant_and_missing_sets_not_comparable(comp):
    data = reporting.paired_table(comp).data.set_index(["variant", "dataset", "metric"])
    reading = data["significance"]
    assert reading[("test_resnet/last/l1+rank(0.5)", "synthetic", "srcc")] == "not significant"
    assert reading[("test_resnet/last/l1+rank(2)", "livec", "srcc")] == "not comparable"
    better = data.loc[("test_resnet/multiscale/l1", "synthetic", "srcc")]
    assert better["significance"] == "significant" and better["diff"] > 0


def test_tables_and_report_are_written(runs, tmp_path):
    out = tmp_path / "out"
    comp = compare(runs, out=out, n_boot=200, plots=False)
    for name in ("backbones", "ablation", "alpha_sweep", "paired"):
        assert (out / f"{name}.md").read_text().startswith("## ")
        assert len(pd.read_csv(out / f"{name}.csv")) > 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"run", "dataset", "srcc", "plcc", "srcc_mean", "srcc_std"} <= set(metrics.columns)
    assert len(metrics) == len(comp.summary)
    report = (out / "report.md").read_text()
    assert "Paired comparison against the baseline run" in report and "(baseline)" in report


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000


def test_validation_curves_and_scatter_plots(comp, tmp_path):
    curves = reporting.plot_validation_curves(comp, tmp_path)
    assert [p.name for p in curves] == ["val_curves_synthetic.png"]
    scatter = reporting.plot_scatter(comp, tmp_path)
    names = {p.name for p in scatter}
    assert "scatter_synthetic_test-resnet-last-l1-rank-0.5.png" in names
    assert "scatter_livec_test-resnet-last-l1-rank-0.5.png" in names
    assert not any("livec" in n and "rank-2" in n for n in names)  # not scored by that run
    assert all(_is_png(p) for p in curves + scatter)


def test_hyper_flow_trace_reads_real_shapes():
    cfg = {"backbone": "test_resnet", "input_size": 64}
    last = reporting.trace_hyper_flow(cfg, "last")
    multi = reporting.trace_hyper_flow(cfg, "multiscale")
    channels = [s[1] for s in last["stages"]]
    assert channels == [32, 48, 192, 96]  # test_resnet's last four stages
    assert last["hyper_in_input"] == (1, 96, 7, 7)
    assert multi["hyper_in_input"] == (1, sum(channels), 7, 7)
    assert multi["pooled"] == [(1, c, 7, 7) for c in channels]
    assert last["map"] == multi["map"] == (1, 112, 7, 7)
    assert multi["params"]["w1"] == (1, 112, 224) and multi["params"]["b5"] == (1, 1)
    assert multi["hyper_in_params"] > last["hyper_in_params"]


def test_dataflow_plot_is_drawn(comp, tmp_path):
    paths = reporting.plot_dataflow(comp, tmp_path)
    assert [p.name for p in paths] == ["dataflow_test-resnet.png"]
    assert _is_png(paths[0])


def _sample(run: str, spread: float, seed: int) -> WeightSample:
    rng = np.random.default_rng(seed)
    groups = [fr.GROUPS[i % 4] for i in range(80)]
    centres = {g: rng.normal(0, spread, 30) for g in fr.GROUPS}
    params = np.stack([centres[g] + rng.normal(0, 1, 30) for g in groups])
    return WeightSample(run=run, dataset="synthetic", names=[f"i{i}" for i in range(80)],
                        params=params, groups=groups, group_kind="group",
                        mos=rng.uniform(0, 100, 80), round=0)


def test_weight_pca_plot_side_by_side(comp, tmp_path, monkeypatch):
    samples = {r.label: _sample(r.label, 1 + 3 * i, i) for i, r in enumerate(comp.runs)}
    monkeypatch.setattr("iqabench.compare.target_weights",
                        lambda run, limit, seed: samples[run.label])
    paths = reporting.plot_weight_pca(comp, tmp_path, limit=50)
    assert len(paths) == len(comp.runs) - 1  # baseline next to each variant
    assert all(_is_png(p) for p in paths)


def test_weight_pca_skips_with_a_note_when_no_checkpoint(comp, tmp_path):
    comp.notes.clear()
    assert reporting.plot_weight_pca(comp, tmp_path, limit=20) == []
    assert any("best.pt not found" in n for n in comp.notes)


def test_weight_pca_from_a_real_checkpoint(tmp_path):
    """target_weights: best.pt -> evaluation.predict(return_params) on the run's test images."""
    pytest.importorskip("iqabench.evaluation")
    torch = pytest.importorskip("torch")
    from iqabench.compare import target_weights
    from iqabench.data import load_dataset
    from iqabench.models.hyperiqa import build_model

    table = load_dataset("synthetic")
    frame = table.frame.iloc[:12]
    images = frame[["name", "mos", "content_id", "group"]].reset_index(drop=True)
    folder = fr.write_round(tmp_path / "run", images, images["mos"].to_numpy())
    model = build_model("test_resnet", "last", input_size=64)
    torch.save({"model": model.state_dict(), "model_config": model.config.to_dict(),
                "config": yaml.safe_load((folder / "config.yaml").read_text()), "epoch": 1,
                "label_range": [0.0, 100.0]}, folder / "best.pt")
    run = load_run(folder)
    run.label = "run"
    sample = target_weights(run, limit=8)
    sizes = (224, 112, 56, 28, 14, 1)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))  # weights and biases
    assert sample.params.shape == (8, n_params)
    assert sample.group_kind == "group" and len(sample.groups) == 8
    assert set(sample.names) <= set(images["name"])
