"""Resize rules, batched crops and flips, and the deterministic test-time crop grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iqabench.data.transforms import (crop_batch, crop_batch_torch, eval_crops, grid_offsets,
                                      resized_size)
from iqabench.errors import IqabenchError


def random_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)


def test_resize_rules():
    assert resized_size(1024, 768, None) == (1024, 768)
    assert resized_size(1024, 768, "512x384") == (512, 384)  # width x height: stays landscape
    assert resized_size(300, 900, "512x512") == (512, 512)
    assert resized_size(1000, 600, "short512") == (853, 512)
    assert resized_size(600, 1000, "short512") == (512, 853)
    # below the crop size after the rule: short side upscaled to it, aspect kept
    assert resized_size(100, 50, None, min_size=224) == (448, 224)
    assert resized_size(500, 500, None, min_size=224) == (500, 500)
    for rule in ("512", "512x", "short", "long512", "0x5"):
        with pytest.raises(IqabenchError, match="resize rule"):
            resized_size(10, 10, rule)


def test_grid_is_deterministic_and_reaches_every_corner_and_pixel():
    image = random_image(50, 70)
    crops = eval_crops(image, "grid", n=25, size=32)
    assert crops.shape == (25, 3, 32, 32) and crops.dtype == torch.uint8
    assert torch.equal(crops, eval_crops(image, "grid", n=25, size=32, seed=99))  # seed irrelevant
    assert torch.equal(crops[0], image[:, :32, :32])  # top-left
    assert torch.equal(crops[4], image[:, :32, -32:])  # top-right
    assert torch.equal(crops[20], image[:, -32:, :32])  # bottom-left
    assert torch.equal(crops[24], image[:, -32:, -32:])  # bottom-right
    covered = np.zeros((50, 70), dtype=bool)
    for top in grid_offsets(50, 32, 5):
        for left in grid_offsets(70, 32, 5):
            covered[top : top + 32, left : left + 32] = True
    assert covered.all()
    assert eval_crops(image, "grid", n=9, size=32).shape == (9, 3, 32, 32)
    with pytest.raises(IqabenchError, match="square"):
        eval_crops(image, "grid", n=10, size=32)


def test_other_modes():
    image = random_image(40, 60)
    center = eval_crops(image, "center", size=32)
    assert center.shape == (1, 3, 32, 32)
    assert torch.equal(center[0], image[:, 4:36, 14:46])
    full = eval_crops(image, "full")
    assert full.shape == (1, 3, 40, 60) and torch.equal(full[0], image)
    a = eval_crops(image, "random", n=6, size=32, seed=1)
    assert a.shape == (6, 3, 32, 32)
    assert torch.equal(a, eval_crops(image, "random", n=6, size=32, seed=1))
    assert not torch.equal(a, eval_crops(image, "random", n=6, size=32, seed=2))
    with pytest.raises(IqabenchError, match="crop mode"):
        eval_crops(image, "corners")
    with pytest.raises(IqabenchError, match="smaller than"):
        eval_crops(random_image(20, 60), "grid", size=32)


def test_crop_batch_cuts_and_flips():
    images = [random_image(30, 40, seed=i) for i in range(3)]
    crops = crop_batch(images, [0, 5, 14], [1, 8, 24], 16, flips=[False, True, False])
    assert crops.shape == (3, 3, 16, 16) and crops.dtype == torch.uint8
    assert torch.equal(crops[0], images[0][:, 0:16, 1:17])
    assert torch.equal(crops[1], images[1][:, 5:21, 8:24].flip(-1))
    assert torch.equal(crops[2], images[2][:, 14:30, 24:40])
    numpy_views = [img.numpy() for img in images]  # numpy views give the same crops
    assert torch.equal(crop_batch(numpy_views, [0, 5, 14], [1, 8, 24], 16, [False, True, False]), crops)
    odd = crop_batch(images, [3, 3], [7, 7], 15, flips=[True, False])  # width not a multiple of 8
    assert torch.equal(odd[0], images[0][:, 3:18, 7:22].flip(-1))
    assert torch.equal(odd[1], images[1][:, 3:18, 7:22])


def test_torch_crops_equal_numpy_crops():
    """The path GPU images take (torch ops on their device) cuts the same crops."""
    images = [random_image(30, 40, seed=i) for i in range(3)]
    for size, flips in ((16, [False, True, True]), (15, [True, False, True])):
        args = ([0, 5, 14], [1, 8, 24], size, flips)
        assert torch.equal(crop_batch_torch(images, *args), crop_batch(images, *args))
    assert torch.equal(crop_batch_torch(images, [2] * 3, [3] * 3, 16),
                       crop_batch(images, [2] * 3, [3] * 3, 16))
    grid = eval_crops(images[0], "grid", n=4, size=16)
    assert torch.equal(crop_batch_torch([images[0]] * 4, [0, 0, 14, 14], [0, 24, 0, 24], 16), grid)
