"""Scoring: batching across images changes nothing; checkpoints rebuild their model or
say exactly why they cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iqabench.config import HyperIQAConfig
from iqabench.errors import IqabenchError
from iqabench.data.transforms import eval_crops
from iqabench.evaluation import label_to_unit, predict, unit_to_mos
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
