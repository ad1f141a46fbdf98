"""The run-folder format: names, writers and readers round-trip, one summary shape."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from iqabench import runfolder
from iqabench.config import TrainConfig
from iqabench.errors import IqabenchError


def test_config_round_trips_as_a_typed_train_config(tmp_path):
    cfg = TrainConfig.from_dict({"dataset": "livec", "epochs": 3, "loss": "l1+rank",
                                 "alpha": 0.25, "model": {"backbone": "test_resnet"}})
    runfolder.write_config(cfg, tmp_path)
    back = runfolder.read_config(tmp_path)
    assert isinstance(back, TrainConfig) and back == cfg
    assert runfolder.read_config(tmp_path / runfolder.CONFIG) == cfg


def test_read_config_names_what_is_wrong(tmp_path):
    with pytest.raises(IqabenchError, match="no config.yaml"):
        runfolder.read_config(tmp_path)
    (tmp_path / "config.yaml").write_text("epochs: [")
    with pytest.raises(IqabenchError, match="not valid YAML"):
        runfolder.read_config(tmp_path)
    (tmp_path / "config.yaml").write_text("epochs: 2\nbogus_key: 1\n")
    with pytest.raises(IqabenchError, match="bogus_key"):
        runfolder.read_config(tmp_path)


def test_round_dirs_in_numeric_order_or_the_folder_itself(tmp_path):
    assert runfolder.round_dirs(tmp_path) == [tmp_path]
    for k in (10, 2, 0):
        (tmp_path / runfolder.round_name(k)).mkdir()
    (tmp_path / "round_x").mkdir()
    (tmp_path / "round_03.txt").write_text("")
    assert [p.name for p in runfolder.round_dirs(tmp_path)] == ["round_00", "round_02", "round_10"]
    assert runfolder.round_index(tmp_path / "round_10") == 10
    assert runfolder.round_index(tmp_path) is None
    with pytest.raises(IqabenchError, match="does not exist"):
        runfolder.round_dirs(tmp_path / "missing")


def test_log_appends_in_column_order_and_truncates(tmp_path):
    for epoch in (1, 2, 3):
        runfolder.append_log(tmp_path, {"seconds": 1.0, "epoch": epoch, "extra": epoch * 2,
                                        "train_loss": 0.5, "val_srcc": float("nan")})
    frame = runfolder.read_log(tmp_path)
    assert list(frame.columns) == [*runfolder.LOG_COLUMNS, "extra"]
    assert frame["epoch"].tolist() == [1, 2, 3]
    lines = (tmp_path / runfolder.LOG_JSONL).read_text().splitlines()
    assert json.loads(lines[0])["val_srcc"] is None  # NaN is not valid JSON
    runfolder.truncate_log(tmp_path, 2)
    assert runfolder.read_log(tmp_path)["epoch"].tolist() == [1, 2]
    assert len((tmp_path / runfolder.LOG_JSONL).read_text().splitlines()) == 2
    assert runfolder.read_log(tmp_path / "nothing") is None


def test_steps_append_per_epoch_in_column_order_and_truncate_with_the_log(tmp_path):
    assert runfolder.read_steps(tmp_path) is None  # a run from before steps were logged
    for epoch in (1, 2, 3):
        runfolder.append_steps(tmp_path, [
            {"crops": 8, "loss": 0.1 * s, "l1": 0.1 * s, "head_lr": 1e-3, "lr": 1e-4,
             "epoch": epoch, "step": (epoch - 1) * 2 + s} for s in (1, 2)])
    runfolder.append_steps(tmp_path, [])  # an epoch without steps adds nothing
    frame = runfolder.read_steps(tmp_path)
    assert list(frame.columns) == [*runfolder.STEP_COLUMNS, "l1"]
    assert frame["step"].tolist() == [1, 2, 3, 4, 5, 6]
    with pytest.raises(IqabenchError, match="no column.*rank"):
        runfolder.append_steps(tmp_path, [{"epoch": 4, "step": 7, "loss": 0.1, "rank": 0.2}])
    runfolder.truncate_log(tmp_path, 2)  # resume after epoch 2
    assert runfolder.read_steps(tmp_path)["epoch"].tolist() == [1, 1, 2, 2]
    assert runfolder.STEPS_CSV in runfolder.RUN_FILES  # --force removes it


def test_environment_keeps_one_record_per_start_or_resume(tmp_path):
    assert runfolder.read_environment(tmp_path) is None
    runfolder.write_environment(tmp_path, {"device": "cpu", "start_epoch": 0,
                                           "threads": np.int64(2), "x": float("nan")})
    runfolder.write_environment(tmp_path, {"device": "cuda:0", "start_epoch": 3})
    first, resumed = runfolder.read_environment(tmp_path)
    assert first == {"device": "cpu", "start_epoch": 0, "threads": 2, "x": None}
    assert resumed["start_epoch"] == 3
    runfolder.write_environment(tmp_path, {"device": "cpu", "start_epoch": 0}, replace=True)
    assert runfolder.read_environment(tmp_path) == [{"device": "cpu", "start_epoch": 0}]
    assert runfolder.ENVIRONMENT in runfolder.RUN_FILES
    assert runfolder.TENSORBOARD in runfolder.RUN_DIRS
    (tmp_path / runfolder.ENVIRONMENT).write_text("{not json")
    with pytest.raises(IqabenchError, match="environment.json is not valid JSON"):
        runfolder.read_environment(tmp_path)


def test_predictions_and_metrics_get_their_column_order(tmp_path):
    preds = pd.DataFrame({"pred": [1.0, 2.0], "name": ["a", "b"], "mos": [1, 2],
                          "dataset": ["d", "d"], "group": ["g", "h"]})
    runfolder.write_predictions(tmp_path, preds)
    back = runfolder.read_predictions(tmp_path)
    assert list(back.columns) == ["dataset", "name", "mos", "pred", "group"]
    runfolder.write_test_metrics(tmp_path, [{"srcc": 0.5, "n": 2, "dataset": "d", "x": 1}])
    assert list(runfolder.read_test_metrics(tmp_path).columns) == ["dataset", "n", "srcc", "x"]
    (tmp_path / runfolder.PREDICTIONS).write_text("dataset,name\nd,a\n")
    with pytest.raises(IqabenchError, match="lacks column"):
        runfolder.read_predictions(tmp_path)


def test_aggregate_rounds_median_mean_std_per_key():
    per_round = pd.DataFrame({
        "run": ["b", "b", "b", "a", "b", "a"],
        "dataset": ["y", "y", "y", "y", "x", "x"],
        "round": [0, 1, 2, 0, 0, 0],
        "n": [10, 12, 14, 10, 5, 5],
        "srcc": [0.7, 0.9, 0.8, 0.5, 0.3, 0.4],
        "plcc": [0.6, 0.6, 0.9, 0.5, 0.3, 0.4],
    })
    out = runfolder.aggregate_rounds(per_round, ("run", "dataset"))
    # the first key keeps its order of appearance; the datasets are sorted within it
    assert list(zip(out["run"], out["dataset"])) == [("b", "x"), ("b", "y"), ("a", "x"),
                                                     ("a", "y")]
    row = out.iloc[1]
    assert row["rounds"] == 3 and row["n"] == 12
    assert row["srcc"] == pytest.approx(0.8) and row["plcc"] == pytest.approx(0.6)
    assert row["srcc_mean"] == pytest.approx(0.8)
    assert row["srcc_std"] == pytest.approx(0.1)  # sample std of 0.7, 0.8, 0.9
    assert row["plcc_std"] == pytest.approx(np.std([0.6, 0.6, 0.9], ddof=1))
    assert math.isnan(out.iloc[0]["srcc_std"])  # one round: no spread to report
    assert "krcc" not in out  # only the metrics the rows hold


def test_summarize_a_multi_round_run_writes_summary_and_all_rounds(tmp_path):
    for k, srcc in enumerate((0.7, 0.9, 0.8)):
        folder = tmp_path / runfolder.round_name(k)
        folder.mkdir()
        runfolder.write_test_metrics(folder, [
            {"dataset": "livec", "round": k, "n": 10, "srcc": srcc},
            {"dataset": "koniq10k", "round": k, "n": 20, "srcc": srcc - 0.3}])
    (tmp_path / "round_03").mkdir()  # unfinished: not counted
    summary = runfolder.summarize(tmp_path)
    assert summary["dataset"].tolist() == ["livec", "koniq10k"]
    assert summary["rounds"].tolist() == [3, 3]
    assert summary["srcc"].tolist() == pytest.approx([0.8, 0.5])
    assert runfolder.read_summary(tmp_path).equals(summary)
    assert len(runfolder.read_test_metrics(tmp_path)) == 6


def test_summarize_a_single_round_run_reads_it_without_writing(tmp_path):
    runfolder.write_test_metrics(tmp_path, {"dataset": "livec", "round": 0, "n": 10,
                                            "srcc": 0.5})
    summary = runfolder.summarize(tmp_path)
    assert summary.iloc[0]["rounds"] == 1 and summary.iloc[0]["srcc"] == 0.5
    assert not (tmp_path / runfolder.SUMMARY).exists()
    (tmp_path / runfolder.round_name(0)).mkdir()  # now a multi-round run, none finished
    with pytest.raises(IqabenchError, match="no finished rounds"):
        runfolder.summarize(tmp_path)
