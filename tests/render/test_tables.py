"""render.tables: backbone, ablation, alpha-sweep, paired and profile tables."""

from __future__ import annotations

import pandas as pd

from iqabench.compare import analyse
from iqabench.render import tables


def test_backbone_table_without_profile_says_not_measured(comp):
    table = tables.backbone_table(comp)
    shown = table.display.iloc[0]
    assert shown["params (M)"] == tables.NOT_MEASURED
    assert shown["ms/image"] == tables.NOT_MEASURED
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
    comp = analyse(runs[:1] + runs[3:], profiles=[tmp_path / "prof"], n_boot=200)
    shown = tables.backbone_table(comp).display.set_index("run")
    assert shown.loc["test_resnet/last/l1", "ms/image"] == "5.0"
    measured = shown.loc["test_resnet/last/l1", "measured on"]
    assert measured == "cuda, bf16, batch 64, 64 px, 25 crops/image"
    assert shown.loc["test_resnet/multiscale/l1", "params (M)"] == "1.16"
    assert tables.profile_table(comp) is not None


def test_ablation_reports_best_val_epoch_and_delta_against_last_l1(comp):
    table = tables.ablation_table(comp).display.set_index("run")
    assert table.loc["test_resnet/last/l1", "Δ val SRCC vs last/L1"] == "ref"
    assert table.loc["test_resnet/last/l1+rank(0.5)", "val SRCC median"] == "0.820"
    assert table.loc["test_resnet/last/l1+rank(0.5)", "Δ val SRCC vs last/L1"] == "+0.020"
    assert table.loc["test_resnet/multiscale/l1", "Δ val SRCC vs last/L1"] == "+0.060"
    assert table.loc["test_resnet/last/l1+rank(2)", "loss"] == "L1 + α·rank"


def test_alpha_sweep_lists_alphas_with_l1_as_zero_and_marks_best(comp):
    table = tables.alpha_table(comp)
    data = table.data
    last = data[data["hyper_input"] == "last"]
    assert list(last["alpha"]) == [0.0, 0.5, 2.0]
    assert list(last["best_on_val"]) == [False, True, False]
    assert "multiscale" not in set(data["hyper_input"])  # no rank run there: nothing swept


def test_alpha_sweep_absent_without_rank_runs(runs):
    comp = analyse([runs[0], runs[3]], n_boot=200)
    assert tables.alpha_table(comp) is None


def test_paired_table_marks_reruns_not_significant_and_missing_sets_not_comparable(comp):
    data = tables.paired_table(comp).data.set_index(["variant", "dataset", "metric"])
    reading = data["significance"]
    assert reading[("test_resnet/last/l1+rank(0.5)", "synthetic", "srcc")] == "not significant"
    assert reading[("test_resnet/last/l1+rank(2)", "livec", "srcc")] == "not comparable"
    better = data.loc[("test_resnet/multiscale/l1", "synthetic", "srcc")]
    assert better["significance"] == "significant" and better["diff"] > 0


def test_write_tables_returns_every_file_it_wrote(comp, tmp_path):
    written = tables.write_tables(comp, tmp_path)
    assert sorted(written.files) == sorted(tmp_path.iterdir())
    assert {"metrics.csv", "paired.md", "backbones.csv"} <= {p.name for p in written.files}
    assert written.notes == [] and comp.files == []  # the comparison is left as it was
