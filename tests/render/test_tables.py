"""render.tables: design card, runs, ablation, alpha-sweep, paired and profile tables, in
Markdown, CSV and LaTeX."""

from __future__ import annotations

import dataclasses

import pandas as pd

from iqabench.compare import NO_PROFILE, NOT_PROFILED, analyse
from iqabench.render import tables

MS = "test_resnet · multiscale · L1"
A05, A2 = "test_resnet · last · L1+0.5·rank", "test_resnet · last · L1+2·rank"


def test_design_card_counts_cost_and_says_why_cells_are_empty(runs):
    comp = analyse(runs, n_boot=200, design_backbones=("test_efficientnet",))
    table = tables.design_table(comp)
    shown = table.display.set_index(["backbone", "hyper input"])
    assert list(shown.index) == [("test_resnet", "last"), ("test_resnet", "multiscale"),
                                 ("test_efficientnet", "last"),
                                 ("test_efficientnet", "multiscale")]
    last = shown.loc[("test_resnet", "last")]
    design = comp.design.set_index(["backbone", "hyper_input"])
    assert last["params (M)"] == f"{design.loc[('test_resnet', 'last'), 'params_m']:.2f}"
    assert float(last["GFLOPs/crop"]) > 0 and last["input (px)"] == "64"
    assert last["ms/image"] == NO_PROFILE
    # three last-stage runs: the best on validation is shown, with its interval
    assert last["run shown"] == f"{A05} (best on val of 3)"
    srcc = last["synthetic SRCC [95% CI]"]
    value, low, high = (float(v) for v in srcc.replace("[", "").replace("]", "")
                        .replace(",", "").split())
    assert low <= value <= high
    ms = shown.loc[("test_resnet", "multiscale")]
    assert ms["run shown"] == MS and ms["livec SRCC [95% CI]"] == "not tested"
    ref = shown.loc[("test_efficientnet", "last")]
    assert ref["input (px)"] == "224" and ref["run shown"] == "—"
    assert ref["synthetic SRCC [95% CI]"] == "no run (no ImageNet weights offline)"
    assert all(str(c).strip() for c in table.display.columns)


def test_design_card_takes_latency_from_profile_and_names_the_setting(runs, tmp_path):
    prof = pd.DataFrame({
        "backbone": ["test_resnet"] * 3, "hyper_input": ["last", "last", "multiscale"],
        "params_m": [1.14, 1.14, 1.16], "ms_per_image": [75.0, 5.0, 80.0],
        "device": ["cpu", "cuda", "cpu"], "dtype": ["fp32", "bf16", "fp32"],
        "batch_size": [16, 64, 16], "input_size": [64, 64, 32], "n_crops": [25] * 3})
    (tmp_path / "prof").mkdir()
    prof.to_csv(tmp_path / "prof" / "profile.csv", index=False)
    comp = analyse(runs[:1] + runs[3:], profiles=[tmp_path / "prof"], n_boot=200,
                   design_backbones=())
    shown = tables.design_table(comp).display.set_index("hyper input")
    assert shown.loc["last", "ms/image (cuda bf16, 25 crops)"] == "5.0"  # CUDA row preferred
    assert shown.loc["multiscale", "ms/image (cuda bf16, 25 crops)"] == NOT_PROFILED  # 32 px
    assert tables.profile_table(comp) is not None


def test_runs_table_gives_each_short_name_its_identity(comp):
    table = tables.runs_table(comp)
    shown = table.display.set_index("name")
    assert list(shown.index) == ["test_resnet · last · L1 (baseline)", A05, A2, MS]
    assert shown.loc[A2, "α"] == "2.00" and shown.loc[MS, "rounds"] == "2"
    assert set(table.data["label"]) == {r.label for r in comp.runs}
    assert table.data["path"].tolist() == [str(r.path) for r in comp.runs]
    # the budget that trained each run: fake logs hold 3 epochs of 1 s, no environment.json
    base = shown.loc["test_resnet · last · L1 (baseline)"]
    assert base["train time/round"] == "3 s (fastest epoch 1 s)"
    assert (base["crops/image"], base["test crops"], base["amp"]) == ("1", "9", "auto")
    assert base["machine"] == "—" and table.data["train_s_per_round"].tolist() == [3.0] * 4


def test_runs_table_writes_long_training_times_in_minutes_and_hours():
    assert [tables._duration(s) for s in (45.0, 1750.0, 8640.0)] == ["45 s", "29 min", "2.4 h"]


def test_ablation_reports_best_val_epoch_and_delta_against_last_l1(comp):
    table = tables.ablation_table(comp).display.set_index("run")
    assert table.loc["test_resnet · last · L1", "Δ val SRCC vs last/L1"] == "ref"
    assert table.loc[A05, "val SRCC median"] == "0.820"
    assert table.loc[A05, "Δ val SRCC vs last/L1"] == "+0.020"
    assert table.loc[MS, "Δ val SRCC vs last/L1"] == "+0.060"
    assert table.loc[A2, "loss"] == "L1 + α·rank"


def test_alpha_sweep_lists_alphas_with_l1_as_zero_and_marks_best(comp):
    table = tables.alpha_table(comp)
    data = table.data
    last = data[data["hyper_input"] == "last"]
    assert list(last["alpha"]) == [0.0, 0.5, 2.0]
    assert list(last["best_on_val"]) == [False, True, False]
    assert "multiscale" not in set(data["hyper_input"])  # no rank run there: nothing swept
    assert all(str(c).strip() for c in table.display.columns)
    assert table.footer == ("test_resnet · last on synthetic: among α = 0.5, 2 the sweep chose "
                            "α = 0.5 (val SRCC 0.820), and 1 of the 2 α values beat L1 alone "
                            "(α = 0, val SRCC 0.800).")


def test_alpha_sweep_says_when_l1_beat_every_alpha(runs):
    table = tables.alpha_table(analyse([runs[0], runs[2]], n_boot=200, design_backbones=()))
    assert table.footer == ("test_resnet · last on synthetic: the one α tried, 2 (val SRCC "
                            "0.750), but L1 alone (α = 0, val SRCC 0.800) scored at least as well "
                            "as it: no α beat L1.")
    assert table.footer in tables.markdown(table).split("\n")  # under the table


def test_alpha_sweep_absent_without_rank_runs(runs):
    comp = analyse([runs[0], runs[3]], n_boot=200, design_backbones=())
    assert tables.alpha_table(comp) is None


def test_paired_table_marks_reruns_not_significant_and_missing_sets_not_comparable(comp):
    data = tables.paired_table(comp).data.set_index(["variant", "dataset", "metric"])
    reading = data["significance"]
    assert reading[("test_resnet/last/l1+rank(0.5)", "synthetic", "srcc")] == "not significant"
    assert reading[("test_resnet/last/l1+rank(2)", "livec", "srcc")] == "not comparable"
    better = data.loc[("test_resnet/multiscale/l1", "synthetic", "srcc")]
    assert better["significance"] == "significant" and better["diff"] > 0


def test_paired_table_prints_small_p_values_and_the_resampled_unit(comp):
    paired = comp.paired.copy()
    paired.loc[paired["variant"] == "test_resnet/multiscale/l1", "p_value"] = 0.0004
    shown = tables.paired_table(dataclasses.replace(comp, paired=paired)).display
    row = shown[(shown["variant"] == MS) & (shown["metric"] == "SRCC")
                & (shown["test set"] == "synthetic")].iloc[0]
    assert row["p"] == "<0.001"  # never 0.000
    assert row["resampled"] == "content group (20 groups)"  # 120 images, 6 per content id
    assert row["verdict"] == "too few rounds to judge" and row["interval"] == "significant"
    assert tables.fmt_p(0.0004) == "<0.001" and tables.fmt_p(0.0123) == "0.012"
    assert all(str(c).strip() for c in shown.columns)


def test_design_card_intervals_resample_content_groups(comp):
    units = set(comp.intervals["unit"])
    few = "content group (7 groups; too few for a reliable interval)"  # 40 livec images
    assert units == {"content group (20 groups)", few}
    assert f"synthetic: content group (20 groups); livec: {few}" in tables.design_table(comp).note


def test_write_tables_returns_every_file_it_wrote(comp, tmp_path):
    written = tables.write_tables(comp, tmp_path)
    assert sorted(written.files) == sorted(tmp_path.iterdir())
    names = {p.name for p in written.files}
    assert {"metrics.csv", "paired.md", "design_card.csv", "runs.md"} <= names
    for table in tables.tables(comp):  # every table three times
        assert {f"{table.name}.{ext}" for ext in ("csv", "md", "tex")} <= names
    assert written.notes == [] and comp.files == []  # the comparison is left as it was


def test_latex_is_booktabs_with_escaped_cells(comp, tmp_path):
    tables.write_tables(comp, tmp_path)
    tex = (tmp_path / "alpha_sweep.tex").read_text()
    assert tex.startswith("\\begin{table}") and tex.rstrip().endswith("\\end{table}")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "$\\alpha$" in tex and "α" not in tex and "test\\_resnet" in tex
    assert tables.latex_escape("--profile — 5%") == "-{}-profile --- 5\\%"
    header = tex.split("\\toprule\n")[1].split("\n")[0]
    assert header.count("&") == len(tables.alpha_table(comp).display.columns) - 1
