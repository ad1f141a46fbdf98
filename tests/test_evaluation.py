"""Scoring: batching across images changes nothing, label units convert, and
``evaluate_checkpoint`` takes a run's dataset from the run and says when it scores every
image of a dataset."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from iqabench import runfolder
from iqabench.checkpoint import save_checkpoint
from iqabench.config import EvalConfig, TrainConfig
from iqabench.data import load_dataset
from iqabench.data.splits import Split, write_split
from iqabench.data.transforms import eval_crops
from iqabench.errors import IqabenchError
from iqabench.evaluation import (
    ScoreSettings,
    common_scale,
    eval_dataset,
    evaluate_checkpoint,
    label_to_unit,
    predict,
    unit_to_mos,
)

SIZE = 32


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def images(tiny_images):
    return tiny_images


def one_by_one(model, images, names, n):
    """Reference: each image alone, crops in one batch, mean score."""
    with torch.no_grad():
        return np.array([model(eval_crops(images[name], "grid", n, SIZE)).double().mean().item()
                         for name in names])


def test_batching_across_images_gives_per_image_means(model, images):
    names = sorted(images)
    expected = one_by_one(model, images, names, 4)
    for batch_size in (3, 7, 64):  # batches that split images across them
        got = predict(model, images, names, "grid", 4, SIZE, batch_size=batch_size,
                      channels_last=False)
        assert got.shape == (5,)
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_predict_params_center_and_full(model, images):
    names = sorted(images)
    scores, params = predict(model, images, names, "center", 25, SIZE, batch_size=4,
                             return_params=True)
    assert scores.shape == (5,) and params.shape[0] == 5 and params.shape[1] > 1000
    full = predict(model, images, names, "full", 1, SIZE)
    assert full.shape == (5,) and np.all(np.isfinite(full))
    rand1 = predict(model, images, names, "random", 3, SIZE, batch_size=5)
    rand2 = predict(model, images, list(reversed(names)), "random", 3, SIZE, batch_size=2)
    np.testing.assert_allclose(rand1, rand2[::-1], atol=1e-5)  # crops follow the image name


def test_label_units():
    assert label_to_unit(np.array([0.25]), "unit", (0, 100))[0] == 0.25
    assert label_to_unit(np.array([25.0]), "raw", (0, 100))[0] == 0.25
    assert unit_to_mos(np.array([0.5]), (1, 5))[0] == 3.0


class RecordingCompiled(torch.nn.Module):
    """Stands in for a compiled module (it has ``_orig_mod``) and records batch sizes."""

    def __init__(self, model):
        super().__init__()
        self._orig_mod = model
        self.sizes: list[int] = []

    def forward(self, x, return_params=False):
        self.sizes.append(x.shape[0])
        return self._orig_mod(x, return_params=return_params)


def test_compiled_model_gets_full_batches_and_padding_is_dropped(model, images):
    names = sorted(images)
    expected = one_by_one(model, images, names, 4)  # 20 crops
    wrapped = RecordingCompiled(model)
    got, params = predict(wrapped, images, names, "grid", 4, SIZE, batch_size=8,
                          channels_last=False, return_params=True)
    assert wrapped.sizes == [8, 8, 8]  # 20 crops: the last batch of 4 is padded to 8
    np.testing.assert_allclose(got, expected, atol=1e-5)
    _, eager_params = predict(model, images, names, "grid", 4, SIZE, batch_size=8,
                              channels_last=False, return_params=True)
    np.testing.assert_allclose(params, eager_params, atol=1e-5)


# --------------------------------------------------------------- evaluate_checkpoint


@pytest.fixture(scope="module")
def run(tmp_path_factory, model):
    """A run folder on a 10-image CSV dataset: config.yaml, split.csv, best.pt."""
    folder = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")
        rows.append({"path": f"{i}.png", "mos": float(i)})
    csv = folder / "scores.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    run = folder / "run"
    run.mkdir()
    cfg = TrainConfig(dataset="csv", root=str(csv), eval_crops=4, val_crops=4,
                      model={"backbone": "test_resnet", "input_size": SIZE})
    runfolder.write_config(cfg, run)
    names = sorted(load_dataset("csv", csv).frame["name"].astype(str))
    write_split(Split(0, 0, "random_by_image", tuple(names[:5]), tuple(names[5:6]),
                      tuple(names[6:])), run / runfolder.SPLIT)
    save_checkpoint({"model": model.state_dict(), "model_config": model.config.to_dict(),
                     "config": cfg.to_dict(), "label_range": [0.0, 9.0], "label_scale": "unit"},
                    run / runfolder.BEST)
    return run


def test_eval_of_a_run_takes_dataset_and_root_from_the_run(run):
    for split in (run, run / runfolder.SPLIT):
        cfg = EvalConfig(checkpoint=str(run / runfolder.BEST), split=str(split), n_boot=0,
                         device="cpu")
        assert eval_dataset(cfg) == ("csv", runfolder.read_config(run).root)
        result = evaluate_checkpoint(cfg)
        assert result.metrics["dataset"] == "csv" and result.metrics["n"] == 4
        assert set(result.predictions["name"]) == set(pd.read_csv(run / "split.csv").query(
            "subset == 'test'")["name"])
        assert result.warnings == []


def test_eval_without_a_split_says_it_scores_every_image(run, caplog):
    root = runfolder.read_config(run).root
    cfg = EvalConfig(checkpoint=str(run / runfolder.BEST), dataset="csv", root=root, n_boot=0,
                     device="cpu")
    with caplog.at_level(logging.WARNING, logger="iqabench"):
        result = evaluate_checkpoint(cfg)
    assert result.metrics["n"] == 10 and set(result.predictions["subset"]) == {"all"}
    assert len(result.warnings) == 1 and "ALL 10 images" in result.warnings[0]
    assert "including any the checkpoint was trained on" in result.warnings[0]
    assert result.warnings[0] in caplog.text


def test_eval_without_dataset_or_run_config_says_what_to_pass(run, tmp_path):
    with pytest.raises(IqabenchError, match="pass --dataset"):
        evaluate_checkpoint(EvalConfig(checkpoint=str(run / runfolder.BEST), device="cpu"))
    alone = tmp_path / "split.csv"
    alone.write_text((run / runfolder.SPLIT).read_text())  # no config.yaml beside it
    with pytest.raises(IqabenchError, match="no config.yaml beside"):
        eval_dataset(EvalConfig(checkpoint="x.pt", split=str(alone)))


def test_eval_on_another_scale_keeps_the_model_scale_and_leaves_rmse_out(run, tmp_path):
    """The checkpoint learnt MOS 0-9; the same images with MOS x10 (0-90) are another
    scale: predictions are not mapped onto 0-90, SRCC/PLCC are as on 0-9, RMSE is NaN."""
    root = runfolder.read_config(run).root
    same = evaluate_checkpoint(EvalConfig(checkpoint=str(run / runfolder.BEST), dataset="csv",
                                          root=root, n_boot=0, device="cpu"))
    rows = pd.read_csv(root)
    rows["path"] = [str(Path(root).parent / p) for p in rows["path"]]
    rows["mos"] *= 10
    rows.to_csv(tmp_path / "x10.csv", index=False)
    other = evaluate_checkpoint(EvalConfig(checkpoint=str(run / runfolder.BEST), dataset="csv",
                                           root=str(tmp_path / "x10.csv"), n_boot=0,
                                           device="cpu"))
    np.testing.assert_allclose(other.predictions["pred"], same.predictions["pred"])
    assert other.predictions["pred"].between(-5, 15).all()  # the model's 0-9 scale
    for metric in ("srcc", "plcc", "krcc"):
        assert other.metrics[metric] == pytest.approx(same.metrics[metric]), metric
    assert np.isfinite(same.metrics["rmse"]) and np.isnan(other.metrics["rmse"])
    note = [w for w in other.warnings if "common scale" in w]
    assert len(note) == 1 and "0-9" in note[0] and "0-90" in note[0]
    assert not [w for w in same.warnings if "common scale" in w]


def test_common_scale_needs_the_same_range_and_dataset():
    table = type("T", (), {"name": "agiqa3k", "mos_range": (0.0, 5.0)})()
    assert common_scale(ScoreSettings(label_range=(0.0, 5.0), label_dataset="agiqa3k"), table)
    assert common_scale(ScoreSettings(label_range=(0.0, 5.0)), table)  # dataset not recorded
    assert not common_scale(ScoreSettings(label_range=(0.0, 5.0), label_dataset="koniq10k"), table)
    assert not common_scale(ScoreSettings(label_range=(0.0, 100.0), label_dataset="agiqa3k"), table)


def test_eval_of_a_csv_without_mos_says_to_predict(run, tmp_path):
    (tmp_path / "images.csv").write_text("path\n0.png\n1.png\n")
    with pytest.raises(IqabenchError, match=r"no 'mos' column.*iqabench predict"):
        evaluate_checkpoint(EvalConfig(checkpoint=str(run / runfolder.BEST), dataset="csv",
                                       root=str(tmp_path / "images.csv"), device="cpu"))
    (tmp_path / "dummy.csv").write_text("path,mos\n0.png,1\n1.png,1\n")  # dummy MOS
    with pytest.raises(IqabenchError, match=r"1 distinct value.*iqabench predict"):
        evaluate_checkpoint(EvalConfig(checkpoint=str(run / runfolder.BEST), dataset="csv",
                                       root=str(tmp_path / "dummy.csv"), device="cpu"))
