"""ImageCache: decoded once, resized by the dataset's rule, and on disk only while valid."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import iqabench.data.cache as cache_module
from iqabench.data.cache import ImageCache
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError


def write_images(folder: Path, specs: dict[str, tuple[int, int, str]], seed: int = 0) -> None:
    """specs: name -> (width, height, PIL mode); random pixels."""
    rng = np.random.default_rng(seed)
    for name, (w, h, mode) in specs.items():
        channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
        pixels = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(folder / name)


def table_of(folder: Path, names: list[str], resize: str | None = None) -> DatasetTable:
    frame = pd.DataFrame(
        {
            "name": names,
            "path": [str(folder / n) for n in names],
            "mos": np.arange(len(names), dtype=float),
            "mos_std": np.nan,
            "content_id": names,
            "official_split": "",
        }
    )
    return DatasetTable("tiny", folder, frame, (0.0, 10.0), resize=resize)


def expected(path: Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    img = Image.open(path).convert("RGB")
    if size is not None and img.size != size:
        img = img.resize(size, Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(img).transpose(2, 0, 1).copy())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_images(
        tmp_path,
        {"a.png": (40, 30, "RGB"), "b.bmp": (36, 36, "L"), "c.png": (50, 34, "RGBA"), "d.jpg": (64, 48, "RGB")},
    )
    return tmp_path


def test_pixels_as_decoded_in_table_order(folder: Path):
    names = ["a.png", "b.bmp", "c.png", "d.jpg"]
    cache = ImageCache.build(table_of(folder, names), min_size=0, threads=2)
    assert cache.names == tuple(names) and len(cache) == 4
    for name in names:
        image = cache[name]
        assert image.dtype == torch.uint8 and image.shape[0] == 3
        assert torch.equal(image, expected(folder / name))  # grey and RGBA become RGB
    assert [tuple(s) for s in cache.sizes] == [(30, 40), (36, 36), (34, 50), (48, 64)]
    subset = ImageCache.build(table_of(folder, names), names=["d.jpg", "a.png"], min_size=0)
    assert subset.names == ("d.jpg", "a.png") and "b.bmp" not in subset


def test_resize_rule_and_upscale_of_small_images(folder: Path):
    table = table_of(folder, ["a.png", "d.jpg"], resize="48x32")
    cache = ImageCache.build(table, min_size=0)
    assert cache["a.png"].shape == (3, 32, 48)  # width 48 x height 32
    assert torch.equal(cache["d.jpg"], expected(folder / "d.jpg", (48, 32)))
    upscaled = ImageCache.build(table_of(folder, ["a.png", "d.jpg"]), min_size=32)
    assert upscaled["a.png"].shape == (3, 32, 43)  # 40x30 -> short side 32, aspect kept
    assert upscaled["d.jpg"].shape == (3, 48, 64)  # already large enough: untouched


def test_disk_cache_is_reused_and_matches_memory(folder: Path, tmp_path: Path, monkeypatch):
    table = table_of(folder, ["a.png", "b.bmp", "d.jpg"])
    in_memory = ImageCache.build(table, min_size=0)
    on_disk = ImageCache.build(table, cache_dir=tmp_path / "cache", min_size=0)
    assert on_disk.path is not None and on_disk.path.is_file()
    for name in table.frame["name"]:
        assert torch.equal(on_disk[name], in_memory[name])

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache was current")

    monkeypatch.setattr(cache_module, "decode_image", no_decoding)
    again = ImageCache.build(table, cache_dir=tmp_path / "cache", min_size=0)
    assert again.path == on_disk.path
    assert torch.equal(again["d.jpg"], in_memory["d.jpg"])


def test_disk_cache_shared_by_every_order_of_one_name_set(folder: Path, tmp_path: Path, monkeypatch):
    """Each round of a study asks for the same images in its split's order: one slot serves all."""
    names = ["a.png", "b.bmp", "c.png", "d.jpg"]
    table = table_of(folder, names)
    first = ImageCache.build(table, names=["d.jpg", "a.png", "c.png", "b.bmp"], cache_dir=tmp_path / "c",
                             min_size=0)
    assert first.names == ("d.jpg", "a.png", "c.png", "b.bmp")
    assert [tuple(s) for s in first.sizes] == [(48, 64), (30, 40), (34, 50), (36, 36)]
    assert [torch.equal(img, expected(folder / n)) for n, img in zip(first.names, first.images())] == [True] * 4

    monkeypatch.setattr(cache_module, "decode_image", lambda *a, **k: pytest.fail("decoded again"))
    second = ImageCache.build(table, names=["b.bmp", "c.png", "a.png", "d.jpg"], cache_dir=tmp_path / "c",
                              min_size=0)
    assert second.path == first.path and len(list((tmp_path / "c").glob("*.u8"))) == 1
    assert second.names == ("b.bmp", "c.png", "a.png", "d.jpg")
    assert [second.index_of(n) for n in names] == [2, 0, 1, 3]
    assert [torch.equal(img, expected(folder / n)) for n, img in zip(second.names, second.images())] == [True] * 4
    assert [torch.equal(torch.from_numpy(a), first[n]) for n, a in zip(second.names, second.arrays())] == [True] * 4
    assert [tuple(s) for s in second.sizes] == [(36, 36), (34, 50), (30, 40), (48, 64)]


def test_disk_cache_invalidated_by_changed_file_or_rule(folder: Path, tmp_path: Path):
    table = table_of(folder, ["a.png", "d.jpg"])
    first = ImageCache.build(table, cache_dir=tmp_path / "cache", min_size=0)
    old = first["a.png"].clone()
    write_images(folder, {"a.png": (40, 30, "RGB")}, seed=123)  # same size, new pixels
    stat = os.stat(folder / "a.png")
    os.utime(folder / "a.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # coarse mtime clocks
    second = ImageCache.build(table, cache_dir=tmp_path / "cache", min_size=0)
    assert not torch.equal(second["a.png"], old)
    assert torch.equal(second["a.png"], expected(folder / "a.png"))
    resized = ImageCache.build(
        table_of(folder, ["a.png", "d.jpg"], resize="20x20"), cache_dir=tmp_path / "cache", min_size=0
    )
    assert resized["a.png"].shape == (3, 20, 20)
    assert resized.path != second.path  # another rule, another slot; the old one stays valid


def test_bad_input_names_the_file(folder: Path):
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(IqabenchError, match="broken.jpg"):
        ImageCache.build(table_of(folder, ["a.png", "broken.jpg"]))
    with pytest.raises(IqabenchError, match="missing.png"):
        ImageCache.build(table_of(folder, ["a.png", "missing.png"]))
    with pytest.raises(IqabenchError, match="not in dataset"):
        ImageCache.build(table_of(folder, ["a.png"]), names=["zzz.png"])
