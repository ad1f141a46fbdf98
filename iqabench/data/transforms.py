"""Resize rules, batched random training crops, deterministic test crops.

Images travel as ``torch.uint8`` tensors shaped (3, H, W); normalisation happens inside
the model (from the backbone's ``pretrained_cfg``), so nothing here converts to float.

Resize rules (``DatasetTable.resize``), applied once when an image is decoded:

- ``None``: keep the native size (LIVE, CSIQ, TID2013, LIVEC, AGIQA-3K);
- ``"WxH"``, e.g. ``"512x384"``: exactly width W by height H (KonIQ 1024x768 -> 512x384,
  BID ``"512x512"``); the original Hyper-IQA wrote ``Resize((512, 384))``, which
  torchvision reads as height 512 x width 384 and turns landscape images portrait;
- ``"shortN"``, e.g. ``"short512"``: short side to N, aspect ratio kept (SPAQ).

After the rule, an image whose short side is below the crop size is upscaled (aspect
kept) so its short side equals the crop size; otherwise no crop would fit. Resampling is
PIL bilinear, what torchvision's ``Resize`` uses on PIL images in the original code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import torch

from iqabench.errors import IqabenchError

EVAL_MODES = ("grid", "center", "random", "full")

_EXACT = re.compile(r"^(\d+)x(\d+)$")
_SHORT = re.compile(r"^short(\d+)$")


def check_resize_rule(rule: str | None) -> None:
    """Raise :class:`IqabenchError` unless ``rule`` is None, ``"WxH"`` or ``"shortN"``."""
    if rule is None:
        return
    if not isinstance(rule, str) or not (_EXACT.match(rule) or _SHORT.match(rule)):
        raise IqabenchError(
            f"resize rule {rule!r} not understood: use none, 'WxH' (e.g. '512x384') or 'shortN' (e.g. 'short512')"
        )
    numbers = [int(v) for v in re.findall(r"\d+", rule)]
    if min(numbers) < 1:
        raise IqabenchError(f"resize rule {rule!r} has a zero size")


def resized_size(width: int, height: int, rule: str | None, min_size: int = 0) -> tuple[int, int]:
    """(width, height) after the resize ``rule`` and the upscale to ``min_size`` short side."""
    check_resize_rule(rule)
    w, h = width, height
    if rule is not None:
        exact = _EXACT.match(rule)
        if exact:
            w, h = int(exact.group(1)), int(exact.group(2))
        else:
            short = int(_SHORT.match(rule).group(1))
            scale = short / min(w, h)
            w, h = _scaled(w, h, scale, short)
    if min_size and min(w, h) < min_size:
        w, h = _scaled(w, h, min_size / min(w, h), min_size)
    return w, h


def _scaled(w: int, h: int, scale: float, short: int) -> tuple[int, int]:
    """Scale (w, h) so the short side is exactly ``short``; the long side is rounded."""
    if w <= h:
        return short, max(short, round(h * scale))
    return max(short, round(w * scale)), short


def crop_batch(
    images: Sequence[torch.Tensor | np.ndarray],
    tops: Sequence[int],
    lefts: Sequence[int],
    size: int,
    flips: Sequence[bool] | np.ndarray | None = None,
) -> torch.Tensor:
    """Cut one ``size`` x ``size`` crop out of each image; flip those marked horizontally.

    ``images[i]`` is (3, H, W) uint8; the crop is ``[:, tops[i]:+size, lefts[i]:+size]``,
    mirrored left-right where ``flips[i]``. Returns (B, 3, size, size) uint8 (torch).
    Crops are copied by slicing, flip included (a reversed view copied once), with no
    decode and no float conversion. The copies go through numpy: many small torch copies
    on a busy CPU cost 100x more when torch splits each over its intra-op threads.
    Images on a GPU are cut there (:func:`crop_batch_torch`), and the crops stay there.
    """
    if images and isinstance(images[0], torch.Tensor) and images[0].device.type != "cpu":
        return crop_batch_torch(images, tops, lefts, size, flips)
    out = np.empty((len(images), 3, size, size), dtype=np.uint8)  # (B, 3, S, S)
    flips = np.zeros(len(images), dtype=bool) if flips is None else np.asarray(flips, dtype=bool)
    words = size % 8 == 0  # rows reverse as 8-byte words: fewer, wider element moves
    for i, (img, top, left) in enumerate(zip(images, tops, lefts)):
        pixels = img.numpy() if isinstance(img, torch.Tensor) else img
        crop = pixels[:, top : top + size, left : left + size]  # (3, S, S) view
        if not flips[i]:
            out[i] = crop
        elif words:
            out[i] = crop
            row = out[i].view(np.uint64)  # (3, S, S // 8)
            row.byteswap(inplace=True)  # reverse the bytes inside each word...
            row[...] = row[..., ::-1]  # ...and the order of the words: the row is mirrored
        else:
            out[i] = crop[:, :, ::-1]
    return torch.from_numpy(out)


def crop_batch_torch(
    images: Sequence[torch.Tensor],
    tops: Sequence[int],
    lefts: Sequence[int],
    size: int,
    flips: Sequence[bool] | np.ndarray | None = None,
) -> torch.Tensor:
    """:func:`crop_batch` with torch ops, on the images' device (the crops stay there)."""
    flips = np.zeros(len(images), dtype=bool) if flips is None else np.asarray(flips, dtype=bool)
    crops = [img[:, top : top + size, left : left + size] for img, top, left
             in zip(images, tops, lefts)]
    return torch.stack([c.flip(-1) if f else c for c, f in zip(crops, flips)])


def grid_offsets(length: int, size: int, steps: int) -> list[int]:
    """``steps`` evenly spaced crop offsets from 0 to ``length - size`` inclusive.

    The first and last crops touch the image borders, so a grid covers every pixel
    whenever ``steps * size >= length``.
    """
    if steps == 1:
        return [(length - size) // 2]
    return [int(round(v)) for v in np.linspace(0, length - size, steps)]


def eval_crops(
    image: torch.Tensor, mode: str = "grid", n: int = 25, size: int = 224, seed: int = 0
) -> torch.Tensor:
    """Test-time crops of one (3, H, W) uint8 image.

    - ``grid`` (default): a deterministic k x k grid, ``n = k * k`` (25 -> 5 x 5), evenly
      spaced from corner to corner; the same image always gets the same score, which the
      original's 25 random test crops did not. Returns (n, 3, size, size).
    - ``center``: one central crop, (1, 3, size, size); ``n`` is ignored.
    - ``random``: ``n`` uniformly placed crops drawn from a generator seeded with ``seed``
      (the original protocol, made repeatable). Returns (n, 3, size, size).
    - ``full``: the whole image, (1, 3, H, W), for models that accept any size.
    No flips at test time, as in the original.
    """
    if mode not in EVAL_MODES:
        raise IqabenchError(f"crop mode {mode!r} unknown: choose one of {', '.join(EVAL_MODES)}")
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image, got shape {tuple(image.shape)}")
    if mode == "full":
        return image.unsqueeze(0)
    _, height, width = image.shape
    if height < size or width < size:
        raise IqabenchError(
            f"image of {width}x{height} is smaller than the {size} px crop; "
            "build the ImageCache with min_size >= crop size so small images are upscaled"
        )
    if n < 1:
        raise IqabenchError(f"number of crops must be at least 1, got {n}")
    if mode == "center":
        tops, lefts = [(height - size) // 2], [(width - size) // 2]
    elif mode == "grid":
        steps = math.isqrt(n)
        if steps * steps != n:
            raise IqabenchError(f"grid crops need a square number (4, 9, 16, 25, ...), got {n}")
        rows = grid_offsets(height, size, steps)
        cols = grid_offsets(width, size, steps)
        tops = [t for t in rows for _ in cols]
        lefts = [left for _ in rows for left in cols]
    else:
        gen = torch.Generator().manual_seed(int(seed))
        tops = torch.randint(0, height - size + 1, (n,), generator=gen).tolist()
        lefts = torch.randint(0, width - size + 1, (n,), generator=gen).tolist()
    return crop_batch([image] * len(tops), tops, lefts, size)
