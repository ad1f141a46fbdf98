"""benchmarks.study_budget on run folders written by the run-folder writers: epochs per hour
from the logged epoch seconds, the last epoch's validation gain, test means over finished
rounds only, the budget plot, PROVENANCE.md from the stage records, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iqabench import runfolder
from tests.fake_runs import make_images, predictor, write_multi_round, write_round


@pytest.fixture(scope="module")
def budget(import_benchmark):
    return import_benchmark("study_budget")


def _set_test(round_dir: Path, srcc: float, plcc: float) -> None:
    metrics = runfolder.read_test_metrics(round_dir).assign(srcc=srcc, plcc=plcc)
    runfolder.write_test_metrics(round_dir, metrics)


@pytest.fixture()
def work(tmp_path):
    images = make_images(30)
    pred = predictor(images)
    base = write_multi_round(tmp_path / "lite0_baseline", [(images, pred), (images, pred)],
                             epochs=3, val_srcc=[0.5, 0.7, 0.72])
    _set_test(base / "round_00", 0.80, 0.85)
    _set_test(base / "round_01", 0.82, 0.87)
    rank = write_round(tmp_path / "lite0_rank" / "round_00", images, pred, loss="l1+rank",
                       alpha=2.0, epochs=2, val_srcc=[0.6, 0.75], rounds=2)
    _set_test(rank, 0.83, 0.88)
    # an unfinished round: log and config, no test_metrics.csv
    unfinished = write_round(tmp_path / "lite0_rank" / "round_01", images, pred, loss="l1+rank",
                             alpha=2.0, epochs=2, val_srcc=[0.1, 0.2], round_=1, rounds=2)
    (unfinished / runfolder.TEST_METRICS).unlink()
    (tmp_path / "cache").mkdir()  # not a run: ignored
    return tmp_path


def test_budget_table(budget, work, tmp_path):
    out = tmp_path / "out"
    table = budget.write_budget(work, out).set_index("run")
    assert list(table.index) == ["lite0_baseline", "lite0_rank"]
    base, rank = table.loc["lite0_baseline"], table.loc["lite0_rank"]
    assert base["rounds_finished"] == 2 and rank["rounds_finished"] == 1
    # the fake logs say 1 s per epoch
    assert base["s_per_epoch"] == pytest.approx(1.0)
    assert base["epochs_per_hour"] == pytest.approx(3600.0)
    assert base["hours_per_round"] == pytest.approx(3 / 3600)
    assert base["last_epoch_val_gain"] == pytest.approx(0.02)
    assert base["val_srcc_best"] == pytest.approx(0.72)
    assert base["test_srcc_mean"] == pytest.approx(0.81)
    assert base["test_plcc_mean"] == pytest.approx(0.86)
    # only the finished round counts
    assert rank["test_srcc_mean"] == pytest.approx(0.83)
    assert rank["last_epoch_val_gain"] == pytest.approx(0.15)
    assert rank["alpha"] == 2.0 and np.isnan(base["alpha"])
    assert (out / "budget_curve.png").stat().st_size > 0
    assert (out / "budget_curve.pdf").stat().st_size > 0
    text = (out / "budget.md").read_text()
    assert "| lite0_baseline" in text and "+0.0200" in text
    assert pd.read_csv(out / "budget.csv")["run"].tolist() == ["lite0_baseline", "lite0_rank"]


def test_fastest_epoch_estimates_the_rate_of_a_machine_to_itself(budget, work, tmp_path):
    # round 1 of the baseline shared the machine: its epochs took 4, 2 and 6 s, round 0's 1 s
    log_path = work / "lite0_baseline" / "round_01" / runfolder.LOG_CSV
    log = pd.read_csv(log_path).assign(seconds=[4.0, 2.0, 6.0])
    log.to_csv(log_path, index=False)
    out = tmp_path / "out"
    base = budget.write_budget(work, out).set_index("run").loc["lite0_baseline"]
    assert base["s_per_epoch"] == pytest.approx(15 / 6)
    assert base["s_per_epoch_fastest"] == pytest.approx(1.0)
    assert "## Epochs per hour per backbone and precision" in (out / "budget.md").read_text()
    rates = budget.backbone_rates(budget.run_rows(work)[0])
    # one backbone and precision: both runs, planned from the fastest epoch of either
    assert len(rates) == 1 and rates.loc[0, "runs"] == 2
    assert rates.loc[0, "s_per_epoch_fastest"] == pytest.approx(1.0)
    assert rates.loc[0, "epochs_per_hour_fastest"] == pytest.approx(3600.0)
    # the budget curve costs each epoch at the fastest rate, not at the slowed wall time
    curve = budget.run_rows(work)[1]["lite0_baseline"]
    assert curve["hours"].tolist() == pytest.approx([1 / 3600, 2 / 3600, 3 / 3600])


def test_provenance_from_stage_records(budget, work, tmp_path):
    (work / "stages.tsv").write_text(
        "stage\tstarted\tfinished\tcommit\tmachine\tsettings\n"
        "alpha\t2026-01-01T10:00:00Z\t2026-01-01T12:00:00Z\tabc123\tCPU X, 2 cores\tEPOCHS=5\n"
        "variants\t2026-01-02T09:00:00Z\t2026-01-02T15:00:00Z\tabc123\tCPU X, 2 cores\tEPOCHS=5\n")
    out = tmp_path / "out"
    out.mkdir()
    text = budget.write_provenance(work, out, "STAGES=alpha bash x.sh").read_text()
    assert "`STAGES=alpha bash x.sh`" in text
    assert "finished: 2026-01-02T15:00:00Z" in text
    assert "| variants" in text and "abc123" in text


def test_provenance_names_every_sitting_of_every_round(budget, work, tmp_path):
    (work / "stages.tsv").write_text(
        "stage\tstarted\tfinished\tcommit\tmachine\tsettings\n"
        "variants\t2026-01-02T09:00:00Z\t2026-01-02T15:00:00Z\tccc333\tCPU X, 2 cores\tEPOCHS=5\n")
    base0 = work / "lite0_baseline" / "round_00"
    runfolder.write_environment(base0, {"started": "2026-01-01T08:00:00+00:00", "commit": "aaa111",
                                        "start_epoch": 0, "cpu": "CPU X", "cpu_count": 2})
    runfolder.write_environment(base0, {"started": "2026-01-01T20:00:00+00:00", "commit": "bbb222",
                                        "start_epoch": 2, "cpu": "CPU X", "cpu_count": 2})
    unfinished = work / "lite0_rank" / "round_01"
    runfolder.write_environment(unfinished, {"started": "2026-01-02T10:00:00+00:00",
                                             "commit": "ccc333", "start_epoch": 0,
                                             "cpu": "CPU X", "cpu_count": 2, "gpu": "GPU Y"})
    table = budget.sittings_table(work)
    assert table[["run", "round", "from_epoch", "commit", "round_finished"]].values.tolist() == [
        ["lite0_baseline", 0, 1, "aaa111", "yes"], ["lite0_baseline", 0, 3, "bbb222", "yes"],
        ["lite0_rank", 1, 1, "ccc333", "no"]]
    assert table["machine"].tolist() == ["CPU X, 2 cores, no GPU"] * 2 + ["CPU X, 2 cores, GPU Y"]
    out = tmp_path / "out"
    out.mkdir()
    text = budget.write_provenance(work, out, "bash x.sh").read_text()
    # the first sitting, not the stage that finished last, is when the study started
    assert "started: 2026-01-01T08:00:00+00:00" in text
    assert "## Training sittings" in text and "bbb222" in text and "aaa111" in text


def test_errors_are_one_line(budget, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert budget.main([str(empty), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no finished round" in err and str(empty) in err
    assert budget.main([str(tmp_path / "absent"), "--out", str(tmp_path / "o")]) == 1
    assert "no such folder" in capsys.readouterr().err
    images = make_images(10)
    write_round(tmp_path / "w" / "r" / "round_00", images, predictor(images), round_=0)
    assert budget.main([str(tmp_path / "w"), "--out", str(tmp_path / "o2"), "--provenance"]) == 1
    assert "stages.tsv" in capsys.readouterr().err
