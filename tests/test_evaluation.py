"""Scoring: batching across images changes nothing; checkpoints rebuild their model or
say exactly why they cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iqabench.config import HyperIQAConfig
from iqabench.errors import IqabenchError
from iqabench.evaluation import (
    label_to_unit,
    load_checkpoint,
    predict,
    read_checkpoint,
    save_checkpoint,
    unit_to_mos,
)
from iqabench.models.hyperiqa import HyperIQA

SIZE = 32


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HyperIQA(HyperIQAConfig(backbone="test_resnet", input_size=SIZE)).eval()


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(1)
    return {f"img{i}.png": torch.randint(0, 256, (3, 40 + i, 48), dtype=torch.uint8, generator=gen)
            for i in range(5)}


def one_by_one(model, images, names, n):
    """Reference: each image alone, crops in one batch, mean score."""
    from iqabench.data.transforms import eval_crops

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


def test_compile_for_inference_scores_like_eager(model, images):
    import shutil

    from iqabench.evaluation import compile_for_inference

    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        pytest.skip("no C++ compiler for TorchInductor on CPU")
    names = sorted(images)
    eager = predict(model, images, names, "grid", 4, SIZE, batch_size=8)
    compiled = compile_for_inference(model)
    got = predict(compiled, images, names, "grid", 4, SIZE, batch_size=8)
    np.testing.assert_allclose(got, eager, atol=1e-4)


def test_compile_without_a_compiler_is_one_clear_error(model, monkeypatch):
    from iqabench import evaluation

    monkeypatch.setattr(evaluation.shutil, "which", lambda name: None)
    with pytest.raises(IqabenchError, match="C\\+\\+ compiler"):
        evaluation.compile_for_inference(model)
