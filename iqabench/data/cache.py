"""Decode every image once, keep its resized uint8 pixels, crop from memory.

The original Hyper-IQA loader opened and decoded the full JPEG for every one of the 25
patches it took per image per epoch. :class:`ImageCache` decodes each image once (PIL,
in a thread pool), applies the dataset's resize rule and the minimum-size upscale (see
:mod:`iqabench.data.transforms`), and stores all pixels in one flat uint8 buffer laid out
image after image as (3, H, W). ``cache[name]`` is a zero-copy view of that buffer.

With ``cache_dir`` the buffer is a file (numpy memmap) plus a JSON index, so datasets
larger than RAM page in from disk and later runs skip decoding. The file name is a hash
of (dataset, root, the set of image names, resize rule, min size, format version); the
file holds the images in sorted name order, and a cache serves them in the order it was
asked for, so the rounds of a study (each its own split, the same images in another
order) share one file. The index holds a fingerprint of every source file (path, size,
mtime). A changed, added or removed file or a different resize rule therefore never
reuses stale pixels: the slot is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from iqabench.data._native import decode_threads
from iqabench.data.table import DatasetTable
from iqabench.data.transforms import check_resize_rule, resized_size
from iqabench.errors import IqabenchError

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the stored layout or the resampling changes
DEFAULT_MIN_SIZE = 224  # upscale anything whose short side is below one 224 crop


def _fingerprint(path: str) -> list:
    try:
        stat = os.stat(path)
    except OSError as err:
        raise IqabenchError(f"image not readable: {path} ({err.strerror})") from None
    return [path, stat.st_size, stat.st_mtime_ns]


def _header_size(path: str) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, Image.DecompressionBombError) as err:
        raise IqabenchError(f"not a readable image: {path} ({err})") from None


def rgb_pixels(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """``img`` as RGB, resized (bilinear) to ``size`` = (width, height): the one decode rule
    of training, evaluation and ``iqabench predict``. (3, H, W) uint8, a strided view."""
    img = img.convert("RGB")
    if img.size != size:
        img = img.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(img).transpose(2, 0, 1)


def decode_image(path: str, size: tuple[int, int]) -> np.ndarray:
    """Decode ``path`` with :func:`rgb_pixels`; returns (3, H, W) uint8 (a strided view,
    copied into the cache's buffer)."""
    try:
        with Image.open(path) as img:
            return rgb_pixels(img, size)
    except (OSError, Image.DecompressionBombError) as err:
        raise IqabenchError(f"could not decode image {path} ({err})") from None


class ImageCache:
    """Resized uint8 pixels of a set of images, decoded once.

    Build with :meth:`build`; ``cache[name]`` gives a (3, H, W) ``torch.uint8`` tensor,
    ``cache.names`` the image names in order, ``cache.sizes[i]`` = (H, W).
    """

    def __init__(
        self,
        names: Sequence[str],
        buffer: np.ndarray,
        offsets: np.ndarray,
        shapes: np.ndarray,
        resize: str | None,
        min_size: int,
        path: Path | None = None,
    ):
        self.names = tuple(names)
        self.resize = resize
        self.min_size = min_size
        self.path = path  # the memmap file, or None when held in memory
        self._array = buffer  # flat uint8
        self._buffer = torch.from_numpy(buffer)  # the same memory, as torch
        self._offsets = offsets
        self._shapes = shapes  # (N, 2) = (H, W)
        self._index = {name: i for i, name in enumerate(self.names)}
        self._tensors: list[torch.Tensor] | None = None
        self._arrays: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.image(self._index[name])
        except KeyError:
            raise KeyError(f"image {name!r} is not in this cache") from None

    def index_of(self, name: str) -> int:
        return self._index[name]

    @property
    def sizes(self) -> np.ndarray:
        """(N, 2) array of (H, W) per image."""
        return self._shapes

    @property
    def nbytes(self) -> int:
        return int(self._buffer.numel())

    def image(self, i: int) -> torch.Tensor:
        """The i-th image as a (3, H, W) uint8 view into the buffer (no copy)."""
        h, w = (int(v) for v in self._shapes[i])
        start = int(self._offsets[i])
        return self._buffer[start : start + 3 * h * w].view(3, h, w)

    def images(self) -> list[torch.Tensor]:
        """All images as views, in ``names`` order (built once, then reused)."""
        if self._tensors is None:
            self._tensors = [self.image(i) for i in range(len(self))]
        return self._tensors

    def arrays(self) -> list[np.ndarray]:
        """All images as numpy (3, H, W) views, in ``names`` order (for fast cropping)."""
        if self._arrays is None:
            self._arrays = []
            for i in range(len(self)):
                h, w = (int(v) for v in self._shapes[i])
                start = int(self._offsets[i])
                self._arrays.append(self._array[start : start + 3 * h * w].reshape(3, h, w))
        return self._arrays

    @classmethod
    def build(
        cls,
        table: DatasetTable,
        names: Sequence[str] | None = None,
        cache_dir: str | Path | None = None,
        progress: bool = False,
        min_size: int = DEFAULT_MIN_SIZE,
        threads: int | None = None,
    ) -> ImageCache:
        """Decode ``names`` (default: every image of ``table``) once.

        ``cache_dir`` None keeps pixels in RAM; a folder stores them there as a memmap and
        reuses them on the next call if nothing changed. ``min_size``: short sides below it
        are upscaled to it (0 disables). ``threads``: decode threads (default: cores, <= 8).
        """
        check_resize_rule(table.resize)
        frame = table.frame
        paths_by_name = dict(zip(frame["name"].astype(str), frame["path"].astype(str)))
        names = list(paths_by_name) if names is None else [str(n) for n in names]
        missing = [n for n in names if n not in paths_by_name]
        if missing:
            raise IqabenchError(
                f"{len(missing)} image name(s) not in dataset {table.name!r}, e.g. {missing[0]!r}"
            )
        if len(set(names)) != len(names):
            raise IqabenchError(f"image names given to the cache of {table.name!r} repeat")
        stored = sorted(names)  # the slot's layout: any order of one name set shares it
        order = {name: i for i, name in enumerate(stored)}
        perm = np.array([order[n] for n in names], dtype=np.int64)
        paths = [paths_by_name[n] for n in stored]
        threads = threads or decode_threads()

        def serve(buffer, offsets, shapes, path=None):
            return cls(names, buffer, offsets[perm], shapes[perm], table.resize, min_size, path)

        slot = None
        fingerprint = None
        if cache_dir is not None:
            cache_dir = Path(cache_dir)
            slot = cache_dir / _slot_name(table, stored, min_size)
            fingerprint = _files_digest(paths)
            cached = _open_slot(slot, stored, fingerprint)
            if cached is not None:
                log.info("image cache: reusing %s (%d images)", slot.with_suffix(".u8"), len(names))
                return serve(*cached, slot.with_suffix(".u8"))

        with ThreadPoolExecutor(threads) as pool:
            native = list(pool.map(_header_size, paths))
        shapes = np.array(
            [resized_size(w, h, table.resize, min_size)[::-1] for w, h in native], dtype=np.int64
        ).reshape(-1, 2)  # (N, 2) = (H, W)
        lengths = 3 * shapes[:, 0] * shapes[:, 1]
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        total = int(lengths.sum())

        if slot is None:
            buffer = np.empty(total, dtype=np.uint8)
        else:
            slot.parent.mkdir(parents=True, exist_ok=True)
            partial = slot.with_suffix(f".u8.partial-{os.getpid()}")  # ranks may build at once
            buffer = np.memmap(partial, dtype=np.uint8, mode="w+", shape=(max(total, 1),))

        def fill(i: int) -> None:
            h, w = (int(v) for v in shapes[i])
            view = buffer[offsets[i] : offsets[i] + lengths[i]].reshape(3, h, w)
            view[...] = decode_image(paths[i], (w, h))

        _run(pool_size=threads, fn=fill, count=len(names), progress=progress, label=table.name)

        if slot is None:
            return serve(buffer, offsets, shapes)

        buffer.flush()
        del buffer
        os.replace(partial, slot.with_suffix(".u8"))  # identical content whichever rank wins
        index = {
            "version": CACHE_VERSION,
            "dataset": table.name,
            "resize": table.resize,
            "min_size": min_size,
            "names": stored,
            "offsets": offsets.tolist(),
            "shapes": shapes.tolist(),
            "files_digest": fingerprint,
            "total_bytes": total,
        }
        tmp = slot.with_suffix(f".json.partial-{os.getpid()}")
        tmp.write_text(json.dumps(index))
        os.replace(tmp, slot.with_suffix(".json"))  # the index is written last: it marks completion
        log.info("image cache: wrote %s (%.1f MB)", slot.with_suffix(".u8"), total / 1e6)
        return serve(*_open_slot(slot, stored, fingerprint), slot.with_suffix(".u8"))


def _run(pool_size: int, fn, count: int, progress: bool, label: str) -> None:
    """Call ``fn(i)`` for every i in a thread pool (PIL releases the GIL while decoding)."""
    with ThreadPoolExecutor(pool_size) as pool:
        futures = [pool.submit(fn, i) for i in range(count)]
        if progress:
            from rich.progress import track

            for fut in track(futures, description=f"decoding {label}", total=count):
                fut.result()
        for fut in futures:
            fut.result()  # re-raise the first error


def _slot_name(table: DatasetTable, names: Sequence[str], min_size: int) -> str:
    """File stem naming what is cached (not whether the files changed: see the index)."""
    key = json.dumps(
        [CACHE_VERSION, table.name, str(table.root), table.resize, min_size, list(names)]
    )
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in table.name)
    return f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _files_digest(paths: Sequence[str]) -> str:
    """Hash of (path, size, mtime) of every source file: changes when any file changes."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(json.dumps(_fingerprint(path)).encode())
    return digest.hexdigest()


def _open_slot(slot: Path, names: Sequence[str], fingerprint: str):
    """(buffer, offsets, shapes) of a complete, current cache slot, else None."""
    index_path, data_path = slot.with_suffix(".json"), slot.with_suffix(".u8")
    if not (index_path.is_file() and data_path.is_file()):
        return None
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        return None
    if (
        index.get("version") != CACHE_VERSION
        or index.get("names") != list(names)
        or index.get("files_digest") != fingerprint
    ):
        log.info("image cache: %s is stale (files or settings changed), rebuilding", data_path)
        return None
    total = int(index["total_bytes"])
    if data_path.stat().st_size != max(total, 1):
        return None
    # copy-on-write: pages come from the file, writes (none expected) stay private
    buffer = np.memmap(data_path, dtype=np.uint8, mode="c", shape=(max(total, 1),))[:total]
    offsets = np.asarray(index["offsets"], dtype=np.int64)
    shapes = np.asarray(index["shapes"], dtype=np.int64).reshape(-1, 2)
    return buffer, offsets, shapes
