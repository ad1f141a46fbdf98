"""analysis.loading: run folders (one round or round_XX/), labels, baseline order."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from iqabench import runfolder
from iqabench.analysis.loading import load_run, load_runs, parse_names, read_profiles
from iqabench.config import TrainConfig
from iqabench.errors import IqabenchError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fake_runs as fr  # noqa: E402


@pytest.fixture
def images():
    return fr.make_images()


def test_single_and_multi_round_folders_load(tmp_path, images):
    single = fr.write_round(tmp_path / "single", images, fr.predictor(images))
    multi = fr.write_multi_round(tmp_path / "multi", [(images, fr.predictor(images, seed=k))
                                                      for k in range(3)], loss="l1+rank", alpha=2)
    run = load_run(single)
    assert [r.round for r in run.rounds] == [0]
    assert run.config_label() == "test_resnet/last/l1"
    m = load_run(multi)
    assert [r.round for r in m.rounds] == [0, 1, 2]
    assert m.config_label() == "test_resnet/last/l1+rank(2)"
    assert m.alpha == 2.0 and run.alpha == 0.0


def test_run_config_is_the_typed_train_config(tmp_path, images):
    run = load_run(fr.write_round(tmp_path / "r", images, fr.predictor(images),
                                  hyper_input="multiscale", epochs=3))
    assert isinstance(run.config, TrainConfig)
    assert run.config.model.hyper_input == run.hyper_input == "multiscale"
    assert run.epochs == 3 and run.input_size == run.config.model.input_size
    assert run.rounds[0].checkpoint == tmp_path / "r" / "best.pt"


def test_run_knows_its_training_time_and_machines(tmp_path, images):
    """Wall time per round and the fastest epoch come from log.csv; the machines from every
    start and resume in environment.json (a GPU named before the CPU it sat in)."""
    multi = fr.write_multi_round(tmp_path / "m", [(images, fr.predictor(images, seed=k))
                                                  for k in range(2)], val_srcc=[0.6, 0.7])
    log = pd.read_csv(multi / "round_01" / "log.csv")
    log["seconds"] = [30.0, 50.0]  # round 0 keeps the writer's 1 s per epoch
    log.to_csv(multi / "round_01" / "log.csv", index=False)
    runfolder.write_environment(multi / "round_00", {"cpu": "CPU A", "gpu": None})
    runfolder.write_environment(multi / "round_00", {"cpu": "CPU B", "gpu": None})
    runfolder.write_environment(multi / "round_01", {"cpu": "CPU B", "gpu": "GPU G"})
    run = load_run(multi)
    assert run.train_seconds_per_round() == pytest.approx((2.0 + 80.0) / 2)
    assert run.fastest_epoch_seconds() == 1.0
    assert run.rounds[0].machines() == ["CPU A", "CPU B"]
    assert run.machines() == ["CPU A", "CPU B", "GPU G"]
    bare = load_run(fr.write_round(tmp_path / "bare", images, fr.predictor(images)))
    (bare.path / "log.csv").unlink()
    bare = load_run(bare.path)
    assert math.isnan(bare.train_seconds_per_round()) and bare.machines() == []


def test_not_a_run_folder_is_a_one_line_error(tmp_path, images):
    (tmp_path / "empty").mkdir()
    with pytest.raises(IqabenchError, match="not a run folder"):
        load_run(tmp_path / "empty")
    with pytest.raises(IqabenchError, match="does not exist"):
        load_run(tmp_path / "nope")
    folder = fr.write_round(tmp_path / "r", images, fr.predictor(images))
    (folder / "predictions.csv").unlink()
    with pytest.raises(IqabenchError, match="predictions.csv not found"):
        load_run(folder)


def test_duplicate_prediction_rows_are_refused(tmp_path, images):
    folder = fr.write_round(tmp_path / "r", images, fr.predictor(images))
    preds = pd.read_csv(folder / "predictions.csv")
    pd.concat([preds, preds.iloc[:1]]).to_csv(folder / "predictions.csv", index=False)
    with pytest.raises(IqabenchError, match="more than one row for synthetic/img_0000.png"):
        load_run(folder)


def test_equal_configs_get_their_folder_name(tmp_path, images):
    p = fr.predictor(images)
    a = fr.write_round(tmp_path / "seed0", images, p, seed=0)
    b = fr.write_round(tmp_path / "seed1", images, fr.rerun(p), seed=1)
    runs, base = load_runs([a, b])
    assert [r.label for r in runs] == ["test_resnet/last/l1@seed0", "test_resnet/last/l1@seed1"]
    assert base is runs[0]
    with pytest.raises(IqabenchError, match="given twice"):
        load_runs([a, a])


def test_baseline_run_goes_first_and_may_be_extra(tmp_path, images):
    p = fr.predictor(images)
    a = fr.write_round(tmp_path / "a", images, p)
    b = fr.write_round(tmp_path / "b", images, p, loss="l1+rank")
    c = fr.write_round(tmp_path / "c", images, p, hyper_input="multiscale")
    runs, base = load_runs([a, b], baseline=b)
    assert base.path == b and [r.path for r in runs] == [b, a]
    runs, base = load_runs([a, b], baseline=c)
    assert base.path == c and len(runs) == 3


def test_train_and_val_rows_never_count_as_test(tmp_path, images):
    folder = fr.write_round(tmp_path / "r", images, fr.predictor(images))
    preds = pd.read_csv(folder / "predictions.csv")
    leak = preds.iloc[:10].assign(subset="val", name=lambda f: "v_" + f["name"])
    pd.concat([preds, leak]).to_csv(folder / "predictions.csv", index=False)
    assert len(load_run(folder).rounds[0].predictions) == len(images)


def test_profiles_are_read_from_folders_or_files(tmp_path):
    (tmp_path / "p").mkdir()
    pd.DataFrame({"backbone": ["a"], "params_m": [1.0]}).to_csv(tmp_path / "p" / "profile.csv",
                                                                index=False)
    rows = read_profiles([tmp_path / "p", tmp_path / "p" / "profile.csv"])
    assert list(rows["source"]) == [str(tmp_path / "p" / "profile.csv")] * 2
    assert read_profiles([]) is None
    with pytest.raises(IqabenchError, match="iqabench profile --out"):
        read_profiles([tmp_path / "missing"])


def test_short_names_are_derived_from_the_config(tmp_path, images):
    p = fr.predictor(images)
    runs, _ = load_runs([
        fr.write_round(tmp_path / "a", images, p, backbone="tf_efficientnet_lite0",
                       hyper_input="multiscale", loss="l1+rank", alpha=2),
        fr.write_round(tmp_path / "b", images, p, backbone="swin_tiny_patch4_window7_224"),
        fr.write_round(tmp_path / "c", images, p, loss="rank")])
    assert [r.name for r in runs] == ["lite0 · multiscale · L1+2·rank", "swin-t · last · L1",
                                      "test_resnet · last · rank"]
    assert runs[0].label == "tf_efficientnet_lite0/multiscale/l1+rank(2)"  # identity unchanged


def test_equal_short_names_get_the_seed_or_the_folder(tmp_path, images):
    p = fr.predictor(images)
    seeds, _ = load_runs([fr.write_round(tmp_path / "s0", images, p, seed=0),
                          fr.write_round(tmp_path / "s1", images, p, seed=1)])
    assert [r.name for r in seeds] == ["test_resnet · last · L1 · seed 0",
                                       "test_resnet · last · L1 · seed 1"]
    same, _ = load_runs([fr.write_round(tmp_path / "x" / "one", images, p),
                         fr.write_round(tmp_path / "x" / "two", images, p)])
    assert [r.name for r in same] == ["test_resnet · last · L1 · one",
                                      "test_resnet · last · L1 · two"]


def test_label_flag_names_runs_and_refuses_bad_items(tmp_path, images):
    p = fr.predictor(images)
    a = fr.write_round(tmp_path / "a", images, p)
    b = fr.write_round(tmp_path / "b", images, p, loss="l1+rank")
    names = parse_names([f"ours={b}"], [a, b])
    runs, _ = load_runs([a, b], names=names)
    assert [r.name for r in runs] == ["test_resnet · last · L1", "ours"]
    with pytest.raises(IqabenchError, match="expected NAME=RUN"):
        parse_names(["ours"], [a, b])
    with pytest.raises(IqabenchError, match="is not among the runs compared"):
        parse_names([f"x={tmp_path / 'c'}"], [a, b])
    with pytest.raises(IqabenchError, match="given to two runs"):
        parse_names([f"x={a}", f"x={b}"], [a, b])
    with pytest.raises(IqabenchError, match="also another run's name"):
        load_runs([a, b], names=parse_names([f"test_resnet · last · L1={b}"], [a, b]))
