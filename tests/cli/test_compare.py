"""`iqabench compare` through the CLI: files written, the gate's exit codes, one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import iqabench.compare as compare_module
from iqabench.cli.app import app, main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fake_runs as fr  # noqa: E402


@pytest.fixture(autouse=True)
def runs_backbones_only(monkeypatch):
    """The design card lists the runs' backbone only (tests/test_compare.py checks the
    ResNet-50 and Swin-T rows)."""
    monkeypatch.setattr(compare_module, "DESIGN_BACKBONES", ())


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_runs")
    images = fr.make_images()
    p = fr.predictor(images)
    a = fr.write_round(root / "A", images, p)
    b = fr.write_round(root / "B", images, fr.rerun(p, seed=1), loss="l1+rank", alpha=0.5,
                       val_srcc=[0.5, 0.7, 0.82, 0.8])
    return a, b


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the real entry point (one-line errors, exit codes) and capture its output."""
    monkeypatch.setattr(sys, "argv", ["iqabench", "compare", *args])
    code = 0
    try:
        main()
    except SystemExit as exit_:
        code = exit_.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_compare_writes_markdown_csv_and_plots(two_runs, tmp_path):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["compare", *map(str, two_runs), "--out", str(out),
                                      "--n-boot", "200", "--pca-limit", "0"])
    assert result.exit_code == 0, result.output
    written = {p.name for p in out.iterdir()}
    assert {"design_card.md", "design_card.csv", "design_card.tex", "runs.md", "ablation.md",
            "alpha_sweep.md", "paired.md", "paired.csv", "paired.tex", "metrics.csv",
            "report.md"} <= written
    assert {"curves_synthetic.png", "curves_synthetic.pdf", "scatter.png", "scatter.pdf",
            "dataflow_test-resnet.png"} <= written
    assert "not significant" in result.output  # a re-run of the same predictor
    assert "--pca-limit 0" in result.output  # the skipped plot is said, not silent


def test_gate_passes_on_equal_and_fails_naming_metric_on_higher_baseline(two_runs, tmp_path,
                                                                         monkeypatch, capsys):
    runs = list(map(str, two_runs))
    code, _, err = _main(monkeypatch, capsys, *runs, "--out", str(tmp_path / "first"),
                         "--n-boot", "200", "--no-plots")
    assert code == 0, err
    report = (tmp_path / "first" / "report.md").read_text()
    assert f"- command: `iqabench compare {runs[0]}" in report
    baseline = tmp_path / "first" / "metrics.csv"
    code, out, err = _main(monkeypatch, capsys, *runs, "--baseline", str(baseline),
                           "--max-drop", "0.01", "--n-boot", "200")
    assert code == 0, err
    assert "regression gate passed" in out

    higher = pd.read_csv(baseline)
    higher[["srcc", "plcc"]] += 0.05
    higher.to_csv(tmp_path / "higher.csv", index=False)
    code, _, err = _main(monkeypatch, capsys, *runs, "--baseline", str(tmp_path / "higher.csv"),
                         "--max-drop", "0.01", "--n-boot", "200")
    assert code == 1
    assert err.startswith("error: regression gate failed:") and err.count("\n") == 1
    assert "srcc of test_resnet/last/l1 on synthetic" in err
    assert "plcc of test_resnet/last/l1+rank(0.5) on synthetic" in err


def test_gate_only_checks_the_metrics_asked_for(two_runs, tmp_path, monkeypatch, capsys):
    runs = list(map(str, two_runs))
    _main(monkeypatch, capsys, *runs, "--out", str(tmp_path / "first"), "--n-boot", "200",
          "--no-plots")
    worse = pd.read_csv(tmp_path / "first" / "metrics.csv")
    worse["plcc"] += 0.05
    worse.to_csv(tmp_path / "plcc_higher.csv", index=False)
    plcc_higher = str(tmp_path / "plcc_higher.csv")
    code, _, err = _main(monkeypatch, capsys, *runs, "--baseline", plcc_higher,
                         "--metric", "srcc", "--n-boot", "200")
    assert code == 0, err


def test_label_names_a_run_in_tables_and_a_bad_label_is_one_line(two_runs, tmp_path,
                                                                 monkeypatch, capsys):
    a, b = map(str, two_runs)
    code, out, err = _main(monkeypatch, capsys, a, b, "--label", f"ours={b}", "--out",
                           str(tmp_path / "named"), "--n-boot", "200", "--no-plots")
    assert code == 0, err
    runs = pd.read_csv(tmp_path / "named" / "runs.csv")
    assert runs["name"].tolist() == ["test_resnet · last · L1", "ours"]
    assert "| ours " in (tmp_path / "named" / "paired.md").read_text()
    code, _, err = _main(monkeypatch, capsys, a, b, "--label", "ours")
    assert code == 1 and err == "error: --label 'ours': expected NAME=RUN\n"


def test_bad_run_folder_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "nothing").mkdir()
    code, _, err = _main(monkeypatch, capsys, str(tmp_path / "nothing"))
    assert code == 1
    expected = f"{tmp_path / 'nothing'} is not a run folder: no config.yaml and no round_XX/ inside"
    assert err == f"error: {expected}\n"


def test_out_folder_is_not_overwritten_silently(two_runs, tmp_path, monkeypatch, capsys):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "report.md").write_text("earlier")
    code, _, err = _main(monkeypatch, capsys, str(two_runs[0]), "--out", str(tmp_path / "used"))
    assert code == 1 and "--force" in err
    assert (tmp_path / "used" / "report.md").read_text() == "earlier"


@pytest.mark.slow
def test_two_real_training_runs_compare_end_to_end(tmp_path, monkeypatch, capsys):
    """`iqabench train` L1 and L1 + rank on the embedded data, then compare them."""
    common = ["--dataset", "synthetic", "--backbone", "test_resnet", "--no-pretrained",
              "--epochs", "1", "--limit", "48", "--input-size", "32", "--eval-crops", "4",
              "--val-crops", "1", "--n-boot", "0", "--quiet"]
    for name, loss in (("A", "l1"), ("B", "l1+rank")):
        monkeypatch.setattr(sys, "argv", ["iqabench", "train", *common, "--loss", loss,
                                          "--out", str(tmp_path / name)])
        try:
            main()
        except SystemExit as exit_:
            assert not exit_.code, capsys.readouterr().err
    code, out, err = _main(monkeypatch, capsys, str(tmp_path / "A"), str(tmp_path / "B"),
                           "--out", str(tmp_path / "cmp"), "--n-boot", "200", "--pca-limit", "8")
    assert code == 0, err
    written = {p.name for p in (tmp_path / "cmp").iterdir()}
    assert {"curves_synthetic.png", "scatter.png", "dataflow_test-resnet.png",
            "pca_weights_test-resnet-last-L1-1-rank.png"} <= written
    paired = pd.read_csv(tmp_path / "cmp" / "paired.csv")
    assert set(paired["significance"]) <= {"significant", "not significant"}
    assert (paired["n_images"] > 0).all()
