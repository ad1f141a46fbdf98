"""TrainBatches: shapes, every crop from its own image, epochs as a function of (seed, epoch)."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from iqabench.data.cache import ImageCache
from iqabench.data.loader import TrainBatches
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError

N_IMAGES, CROP = 7, 16


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> ImageCache:
    """Image i: red channel = i everywhere, green = column index (a left-to-right ramp)."""
    folder = tmp_path_factory.mktemp("loader")
    names = []
    for i in range(N_IMAGES):
        h, w = 20 + i, 24 + 2 * i
        pixels = np.zeros((h, w, 3), dtype=np.uint8)
        pixels[..., 0] = i
        pixels[..., 1] = np.arange(w)[None, :]
        names.append(f"img{i}.png")
        Image.fromarray(pixels).save(folder / names[-1])
    frame = pd.DataFrame(
        {"name": names, "path": [str(folder / n) for n in names], "mos": np.arange(N_IMAGES, dtype=float),
         "mos_std": np.nan, "content_id": names, "official_split": ""}
    )
    return ImageCache.build(DatasetTable("ramp", folder, frame, (0.0, 10.0)), min_size=0)


def batches(cache: ImageCache, **kwargs) -> TrainBatches:
    options = dict(crops_per_image=5, batch_size=4, crop_size=CROP, seed=0)
    options.update(kwargs)
    labels = np.arange(N_IMAGES, dtype=np.float32)
    return TrainBatches(cache, list(cache.names), labels, **options)


def collect(loader: TrainBatches) -> tuple[torch.Tensor, torch.Tensor]:
    crops, labels = zip(*loader)
    return torch.cat(crops), torch.cat(labels)


def test_shapes_labels_and_counts(cache: ImageCache):
    loader = batches(cache)
    assert len(loader) == 9  # 7 images x 5 crops = 35 -> 8 full batches of 4 + 3
    sizes = [len(c) for c, _ in loader]
    assert sizes == [4] * 8 + [3]
    crops, labels = collect(loader)
    assert crops.dtype == torch.uint8 and crops.shape == (35, 3, CROP, CROP)
    assert labels.dtype == torch.float32
    # each crop comes from the image its label names: red channel == label
    assert torch.equal(crops[:, 0].float().amax(dim=(1, 2)), labels)
    assert torch.equal(crops[:, 0].float().amin(dim=(1, 2)), labels)
    assert torch.bincount(labels.long()).tolist() == [5] * N_IMAGES
    assert len(batches(cache, drop_last=True)) == 8


def test_flips_and_offsets(cache: ImageCache):
    crops, _ = collect(batches(cache, crops_per_image=40))
    ramp = crops[:, 1].long()  # green channel: column index, reversed where flipped
    steps = ramp[:, 0, 1:] - ramp[:, 0, :-1]
    flipped = (steps == -1).all(dim=1)
    assert ((steps == 1).all(dim=1) | flipped).all()  # every crop a contiguous window
    assert 0.3 < flipped.float().mean() < 0.7
    no_flip, _ = collect(batches(cache, crops_per_image=40, flip=False))
    assert (no_flip[:, 1, 0, 1:].long() - no_flip[:, 1, 0, :-1].long() == 1).all()
    assert len(set(ramp[:, 0].amin(dim=1).tolist())) > 5  # offsets vary


def test_epochs_are_a_function_of_seed_and_epoch(cache: ImageCache):
    loader = batches(cache)
    loader.set_epoch(2)
    epoch2 = collect(loader)
    assert all(torch.equal(a, b) for a, b in zip(epoch2, collect(loader)))  # same epoch again
    resumed = batches(cache, threads=0)  # a new process resuming at epoch 2, cutting inline
    resumed.set_epoch(2)
    assert all(torch.equal(a, b) for a, b in zip(epoch2, collect(resumed)))
    loader.set_epoch(3)
    assert not torch.equal(collect(loader)[0], epoch2[0])
    other_seed = batches(cache, seed=1)
    other_seed.set_epoch(2)
    assert not torch.equal(collect(other_seed)[0], epoch2[0])


def test_ranks_share_the_epoch_without_overlap(cache: ImageCache):
    whole = batches(cache).epoch_plan(4)
    ranks = [batches(cache, rank=r, world_size=3) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1  # equal batch counts: no rank waits in DDP
    plans = [r.epoch_plan(4) for r in ranks]
    assert all(len(p["image"]) == 12 for p in plans)  # 35 crops padded to 36
    seen = {(i, t, left, f) for p in plans for i, t, left, f in zip(p["image"], p["top"], p["left"], p["flip"])}
    assert seen == set(zip(whole["image"], whole["top"], whole["left"], whole["flip"]))


def test_crop_larger_than_an_image(cache: ImageCache):
    with pytest.raises(IqabenchError, match="smaller than the 22 px crop"):
        batches(cache, crop_size=22)
    with pytest.raises(IqabenchError, match="not in the image cache"):
        TrainBatches(cache, ["nope.png"], np.zeros(1, np.float32), 1, 1, crop_size=CROP)
