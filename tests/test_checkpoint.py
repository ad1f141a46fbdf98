"""Checkpoints: atomic writes, the model they describe, clear errors, the training
state a resumed run continues from, and the resume compatibility check."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from iqabench.checkpoint import (
    TRAINING_ONLY,
    ScoringInfo,
    check_resumable,
    export_safetensors,
    load_checkpoint,
    load_state_checked,
    read_checkpoint,
    restore_training_state,
    save_checkpoint,
    scoring_info,
    scoring_state,
    training_state,
)
from iqabench.config import HyperIQAConfig, TrainConfig
from iqabench.errors import IqabenchError
from iqabench.evaluation import predict
from iqabench.models.hyperiqa import HyperIQA

SIZE = 32


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def images(tiny_images):
    return tiny_images


def test_checkpoint_round_trip(model, images, tmp_path):
    path = tmp_path / "best.pt"
    save_checkpoint({"model": model.state_dict(), "model_config": model.config.to_dict(),
                     "config": {"eval_crops": 4}, "label_range": [0.0, 100.0]}, path)
    assert not list(tmp_path.glob("*.tmp"))
    loaded, ckpt = load_checkpoint(path)
    assert ckpt["label_range"] == [0.0, 100.0] and not loaded.training
    names = sorted(images)
    np.testing.assert_allclose(predict(loaded, images, names, "grid", 4, SIZE),
                               predict(model, images, names, "grid", 4, SIZE), atol=1e-6)


def test_checkpoint_that_does_not_fit_names_keys_and_shapes(model, tmp_path):
    state = dict(model.state_dict())
    state.pop("weight_fc_last.bias")
    state["extra.weight"] = torch.zeros(1)
    state["bias_fcs.0.weight"] = torch.zeros(3, 3)
    path = tmp_path / "bad.pt"
    torch.save({"model": state, "model_config": model.config.to_dict()}, path)
    with pytest.raises(IqabenchError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "weight_fc_last.bias" in message and "extra.weight" in message
    assert "bias_fcs.0.weight" in message and "(3,3)" in message
    assert "\n" not in message


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(IqabenchError, match="not an iqabench checkpoint"):
        read_checkpoint(path)
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(IqabenchError, match="cannot read"):
        read_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(IqabenchError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")


def test_save_is_atomic_and_keeps_the_old_file_on_a_failed_write(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def crash(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}


def _parts(seed: int):
    torch.manual_seed(seed)
    model = HyperIQA(HyperIQAConfig(backbone="test_resnet", input_size=SIZE))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)
    return model, optimizer, scheduler


def test_training_state_restores_model_optimiser_schedule_rng_and_best(tmp_path):
    model, optimizer, scheduler = _parts(0)
    x = torch.randint(0, 256, (4, 3, SIZE, SIZE), dtype=torch.uint8)
    model(x).sum().backward()
    optimizer.step()
    scheduler.step()
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    cfg = TrainConfig(dataset="livec", label_scale="raw")
    state = training_state(cfg, model, optimizer, scheduler, None, epoch=3, best_val=0.8,
                           best_epoch=2, label_range=(1.0, 5.0), round_=1)
    save_checkpoint(state, tmp_path / "last.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())

    other, other_opt, other_sched = _parts(1)  # different weights and a fresh optimiser
    ckpt = read_checkpoint(tmp_path / "last.pt")
    progress = restore_training_state(ckpt, other, other_opt, other_sched, None)
    assert (progress.epoch, progress.best_val, progress.best_epoch) == (3, 0.8, 2)
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key
    assert other_opt.state_dict()["state"][0]["step"] == 1
    assert other_sched.last_epoch == 1 and other_opt.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert ckpt["label_range"] == [1.0, 5.0] and ckpt["label_scale"] == "raw"
    assert ckpt["round"] == 1 and ckpt["config"]["label_scale"] == "raw"


def test_restore_without_a_best_yet_starts_from_minus_infinity(tmp_path):
    model, optimizer, scheduler = _parts(0)
    state = training_state(TrainConfig(dataset="livec"), model, optimizer, scheduler, None, epoch=1,
                           best_val=-math.inf, best_epoch=None, label_range=(0, 1), round_=0)
    progress = restore_training_state(state, model, optimizer, scheduler, None)
    assert progress.best_val == -math.inf and progress.best_epoch is None


def test_resume_check_allows_runtime_settings_and_names_every_changed_setting():
    run = TrainConfig(dataset="livec", epochs=4, lr=1e-4, out="a")
    resumed = TrainConfig(dataset="livec", epochs=10, device="cpu", workers=3, n_boot=0,
                          out="b")
    check_resumable(resumed, run.to_dict(), "last.pt")
    changed = TrainConfig(dataset="livec", epochs=4, lr=2e-4,
                          model=HyperIQAConfig(hyper_input="multiscale"))
    with pytest.raises(IqabenchError) as err:
        check_resumable(changed, run.to_dict(), "last.pt")
    message = str(err.value)
    assert "lr: run 0.0001, now 0.0002" in message
    assert "model.hyper_input: run 'last', now 'multiscale'" in message
    assert "epochs" not in message and "out" not in message


def test_load_state_checked_loads_what_fits(model):
    torch.manual_seed(3)
    other = HyperIQA(HyperIQAConfig(backbone="test_resnet", input_size=SIZE))
    load_state_checked(other, model.state_dict(), "test")
    assert all(torch.equal(other.state_dict()[k], v) for k, v in model.state_dict().items())


# ------------------------------------------------------ scoring metadata and files


def test_training_state_records_the_scoring_protocol():
    model, optimizer, scheduler = _parts(0)
    cfg = TrainConfig(dataset="koniq10k", eval_crops=16, eval_batch_size=48, label_scale="raw")
    state = training_state(cfg, model, optimizer, scheduler, None, epoch=1, best_val=0.5,
                           best_epoch=1, label_range=(1.0, 5.0), round_=0, resize="512x384")
    info = scoring_info(state)
    assert info == ScoringInfo(label_scale="raw", label_range=(1.0, 5.0), dataset="koniq10k",
                               crop_mode="grid", n_crops=16, crop_size=SIZE, batch_size=48,
                               resize="512x384")
    assert state["protocol"]["mean"] == pytest.approx(model.mean.flatten().tolist())
    best = scoring_state(state)
    assert not set(TRAINING_ONLY) & set(best) and best["protocol"] == state["protocol"]
    assert ScoringInfo(label_range=(1.0, 5.0)).to_label([0.0, 0.5, 1.0]).tolist() == [1, 3, 5]


def test_checkpoints_without_a_protocol_take_it_from_their_run_config(model):
    old = {"model": {}, "model_config": model.config.to_dict(), "label_range": [0, 100],
           "config": {"eval_crops": 9, "eval_crop_mode": "center", "dataset": "spaq",
                      "eval_batch_size": 16, "label_scale": "unit"}}
    info = scoring_info(old)
    assert (info.n_crops, info.crop_mode, info.dataset, info.batch_size, info.label_range) == (
        9, "center", "spaq", 16, (0.0, 100.0))


def test_export_to_safetensors_reads_back_as_the_checkpoint(model, images, tmp_path):
    path = tmp_path / "best.pt"
    save_checkpoint({"model": model.state_dict(), "model_config": model.config.to_dict(),
                     "label_range": [0.0, 5.0], "label_scale": "unit", "optimizer": {"x": 1},
                     "protocol": {"crop_mode": "grid", "crops": 4, "batch_size": 8,
                                  "resize": None, "dataset": "agiqa3k"}}, path)
    out = export_safetensors(path, tmp_path / "model.safetensors")
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as f:
        meta = json.loads(f.metadata()["iqabench"])
        assert set(f.keys()) == set(model.state_dict())
    assert meta["label_range"] == [0.0, 5.0] and "optimizer" not in meta
    assert meta["protocol"]["dataset"] == "agiqa3k"
    loaded, ckpt = load_checkpoint(out)
    assert scoring_info(ckpt) == scoring_info(read_checkpoint(path))
    names = sorted(images)
    np.testing.assert_array_equal(predict(loaded, images, names, "grid", 4, SIZE),
                                  predict(model, images, names, "grid", 4, SIZE))
    with pytest.raises(IqabenchError, match="exists; pass --force"):
        export_safetensors(path, out)
    with pytest.raises(IqabenchError, match=r"\.safetensors file"):
        export_safetensors(path, tmp_path / "model.pt")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(IqabenchError, match="no 'iqabench' metadata"):
        read_checkpoint(tmp_path / "plain.safetensors")


@pytest.mark.slow
def test_best_pt_of_a_tiny_run_is_its_weights_and_resume_still_works(tmp_path):
    from iqabench.config import resolve_train_config
    from iqabench.data import load_dataset
    from iqabench.training import fit

    root = tmp_path / "synthetic"
    load_dataset("synthetic", root)
    settings = {"dataset": "synthetic", "root": str(root), "limit": 24, "epochs": 1,
                "crops_per_image": 1, "batch_size": 8, "eval_crops": 1, "val_crops": 1,
                "pretrained": False, "n_boot": 0, "workers": 1, "out": str(tmp_path / "run"),
                "model": {"backbone": "test_resnet", "input_size": SIZE}}
    fit(resolve_train_config(None, settings), progress=False)
    best = read_checkpoint(tmp_path / "run" / "best.pt")
    weights = sum(t.nbytes for t in best["model"].values())
    assert (tmp_path / "run" / "best.pt").stat().st_size < 1.2 * weights
    assert not set(TRAINING_ONLY) & set(best) and best["protocol"]["dataset"] == "synthetic"
    assert set(TRAINING_ONLY) <= set(read_checkpoint(tmp_path / "run" / "last.pt"))
    result = fit(resolve_train_config(None, {**settings, "epochs": 2}), resume=True,
                 progress=False)
    assert result.epochs_run == 2 and read_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2
