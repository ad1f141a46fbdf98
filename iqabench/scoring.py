"""Scoring one's own images with a checkpoint: :func:`load_scorer` and ``iqabench predict``.

::

    from iqabench import load_scorer
    scorer = load_scorer("runs/agiqa/best.pt")       # or an import / .safetensors export
    scorer("photo.jpg")                              # -> float, on the label scale
    scorer(["a.jpg", "b.png"])                       # -> np.ndarray (2,)

Scores are on the checkpoint's label scale: the MOS scale of the data it was trained
on (AGIQA-3K: 0-5; an imported KonIQ Hyper-IQA: 0-100), never rescaled. Images are
scored with the checkpoint's protocol (crop mode, crops, crop size, resize rule,
normalisation) unless overridden, exactly as ``iqabench eval`` scores a dataset: the
same decode (PIL, RGB, resize rule, short side upscaled to the crop size, bilinear),
the same crops and :func:`iqabench.evaluation.predict_crops`.

:meth:`Scorer.score_files` streams: images are decoded (in threads) and scored one
chunk at a time, a chunk being at most ``batch_size`` images (a whole number of
forward batches), and the chunk is released before the next is decoded, so memory does
not grow with the number of images. A file that cannot be decoded gives a row with its
reason instead of a score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from iqabench.checkpoint import ScoringInfo, load_checkpoint, scoring_info
from iqabench.data._native import decode_threads
from iqabench.data.cache import rgb_pixels
from iqabench.data.transforms import EVAL_MODES, resized_size
from iqabench.errors import IqabenchError
from iqabench.evaluation import crops_per_image, predict_crops
from iqabench.runtime import compile_for_inference, resolve_amp, resolve_device


@dataclass(frozen=True)
class ScoredImage:
    """One row of ``iqabench predict``: the score (label scale) and the standard
    deviation of its crops' scores (ddof 0; 0 for one crop), or why it has none."""

    path: str
    score: float = math.nan
    crop_std: float = math.nan
    error: str = ""  # empty when scored


def to_pixels(image: Image.Image, resize: str | None, min_size: int) -> torch.Tensor:
    """A PIL image as the (3, H, W) uint8 tensor scoring crops from: RGB, the resize
    rule, the short side upscaled to ``min_size`` (as :class:`iqabench.data.cache.ImageCache`
    decodes dataset images)."""
    size = resized_size(*image.size, resize, min_size)
    return torch.from_numpy(np.ascontiguousarray(rgb_pixels(image, size)))


def decode_image(path: str | Path, resize: str | None, min_size: int) -> torch.Tensor:
    """Decode an image file to (3, H, W) uint8; a file PIL cannot read fully (not an
    image, truncated, too large) raises :class:`IqabenchError` with PIL's reason."""
    try:
        with Image.open(path) as img:
            return to_pixels(img, resize, min_size)
    except IqabenchError:
        raise
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, bomb errors
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise IqabenchError(f"{path}: not a readable image ({reason})") from None


class Scorer:
    """A checkpoint ready to score images; call it on images (see :meth:`__call__`)."""

    def __init__(self, model: torch.nn.Module, info: ScoringInfo,
                 device: torch.device = torch.device("cpu"),
                 amp_dtype: torch.dtype | None = None, channels_last: bool = True,
                 threads: int | None = None):
        if info.crop_mode not in EVAL_MODES:
            raise IqabenchError(f"crop mode {info.crop_mode!r} unknown: choose one of "
                                f"{', '.join(EVAL_MODES)}")
        self.model = model
        self.info = info
        self.device = device
        self.amp_dtype = amp_dtype
        self.channels_last = channels_last
        self.threads = threads or decode_threads()

    @property
    def crops(self) -> int:
        """Crops scored per image."""
        return crops_per_image(self.info.crop_mode, self.info.n_crops)

    @property
    def chunk_size(self) -> int:
        """Images decoded and held at once by :meth:`score_files`: the fewest whose crops
        fill whole forward batches, at most ``batch_size``."""
        return self.info.batch_size // math.gcd(self.info.batch_size, self.crops)

    # ------------------------------------------------------------------ inputs

    def __call__(self, images):
        """Scores on the label scale.

        - a path (str or Path), a PIL image, or a uint8 numpy array (H, W, 3) RGB:
          one float;
        - a float tensor (B, 3, H, W) (or (3, H, W)) of RGB values in [0, 1], not
          normalised (the model normalises with the checkpoint's mean/std): an array
          (B,) (a float). Values are quantised to 8 bits (round(x * 255)) and scored as a
          decoded image of that size would be, crops and all;
        - a list or tuple of any of the single-image kinds: an array (N,).

        An unreadable file raises :class:`IqabenchError` naming it.
        """
        if isinstance(images, torch.Tensor):
            if images.ndim == 3:
                return float(self(images.unsqueeze(0))[0])
            if images.ndim != 4 or images.shape[1] != 3:
                raise IqabenchError(f"expected a (B, 3, H, W) tensor, got "
                                    f"{tuple(images.shape)}")
            pixels = [self._tensor_pixels(x) for x in images]
            return self.score_pixels(pixels)[0]
        if isinstance(images, (list, tuple)):
            pixels = [self.pixels(x) for x in images]
            names = [str(x) if isinstance(x, (str, Path)) else str(i)
                     for i, x in enumerate(images)]
            return self.score_pixels(pixels, names)[0]
        name = str(images) if isinstance(images, (str, Path)) else "0"
        return float(self.score_pixels([self.pixels(images)], [name])[0][0])

    def pixels(self, image) -> torch.Tensor:
        """One image (path, PIL image, uint8 (H, W, 3) array) as (3, H, W) uint8."""
        if isinstance(image, (str, Path)):
            return decode_image(image, self.info.resize, self.info.crop_size)
        if isinstance(image, Image.Image):
            return to_pixels(image, self.info.resize, self.info.crop_size)
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise IqabenchError(f"expected a uint8 (H, W, 3) RGB array, got {image.dtype} "
                                    f"{image.shape}")
            return to_pixels(Image.fromarray(image), self.info.resize, self.info.crop_size)
        raise IqabenchError(f"cannot score a {type(image).__name__}: pass a path, a PIL "
                            "image, a uint8 (H, W, 3) array or a float (B, 3, H, W) tensor")

    def _tensor_pixels(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise IqabenchError(f"expected a float tensor in [0, 1], got {x.dtype}")
        u8 = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        _, h, w = u8.shape
        if resized_size(w, h, self.info.resize, self.info.crop_size) == (w, h):
            return u8.contiguous()
        return to_pixels(Image.fromarray(u8.permute(1, 2, 0).numpy()), self.info.resize,
                         self.info.crop_size)

    # ----------------------------------------------------------------- scoring

    def score_pixels(self, pixels: Sequence[torch.Tensor], names: Sequence[str] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, crop_std), each (N,), of decoded (3, H, W) uint8 images; ``names``
        seed random crops (as ``iqabench eval`` seeds them by image name)."""
        names = [str(i) for i in range(len(pixels))] if names is None else list(names)
        if len(set(names)) != len(names):  # the crop seed follows the name: keep them apart
            names = [f"{i}:{n}" for i, n in enumerate(names)]
        cache = dict(zip(names, pixels))
        info = self.info
        raw = predict_crops(self.model, cache, names, info.crop_mode, info.n_crops,
                            info.crop_size, info.batch_size, device=self.device,
                            amp_dtype=self.amp_dtype, channels_last=self.channels_last)
        return info.to_label(raw.mean(1)), info.to_label(raw).std(1)

    def score_files(self, paths: Sequence[str], on_done: Callable[[int], None] | None = None
                    ) -> Iterator[ScoredImage]:
        """Stream :class:`ScoredImage` rows for ``paths``, in order, one chunk of
        :attr:`chunk_size` images decoded and scored at a time; ``on_done(n)`` after
        each chunk of ``n`` images."""
        paths = [str(p) for p in paths]
        size = self.chunk_size
        with ThreadPoolExecutor(self.threads) as pool:
            for start in range(0, len(paths), size):
                chunk = paths[start:start + size]
                decoded = list(pool.map(self._try_decode, chunk))
                good = [(p, d) for p, d in zip(chunk, decoded) if isinstance(d, torch.Tensor)]
                scores: dict[str, tuple[float, float]] = {}
                if good:
                    values, spread = self.score_pixels([d for _, d in good],
                                                       [p for p, _ in good])
                    scores = {p: (float(v), float(s))
                              for (p, _), v, s in zip(good, values, spread)}
                rows = [ScoredImage(p, *scores[p]) if p in scores else ScoredImage(p, error=d)
                        for p, d in zip(chunk, decoded)]
                del decoded, good  # released before the next chunk is decoded
                if on_done is not None:
                    on_done(len(chunk))
                yield from rows

    def _try_decode(self, path: str) -> torch.Tensor | str:
        try:
            return decode_image(path, self.info.resize, self.info.crop_size)
        except IqabenchError as err:
            return str(err).removeprefix(f"{path}: ")


def load_scorer(checkpoint: str | Path, device: str | torch.device = "auto", amp: str = "auto",
                compile: bool = False, crop_mode: str | None = None,
                n_crops: int | None = None, batch_size: int | None = None,
                channels_last: bool = True) -> Scorer:
    """A :class:`Scorer` for a checkpoint (``best.pt``, ``last.pt``, an imported
    Hyper-IQA checkpoint or a ``.safetensors`` export).

    ``device``/``amp``/``compile`` as ``iqabench eval`` takes them (auto: CUDA and bf16
    when there is a GPU, fp32 on CPU). ``crop_mode``, ``n_crops`` and ``batch_size``
    override the checkpoint's protocol (None keeps it).
    """
    device = resolve_device(device)
    model, ckpt = load_checkpoint(checkpoint)
    info = scoring_info(ckpt)
    changes = {k: v for k, v in (("crop_mode", crop_mode), ("n_crops", n_crops),
                                 ("batch_size", batch_size)) if v is not None}
    info = replace(info, **changes)
    if info.crop_mode == "grid" and math.isqrt(info.n_crops) ** 2 != info.n_crops:
        raise IqabenchError(f"--eval-crops {info.n_crops}: grid crops need a square number "
                            "(4, 9, 16, 25)")
    if info.n_crops < 1 or info.batch_size < 1:
        raise IqabenchError("--eval-crops and --eval-batch-size must be at least 1")
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    scoring_model: torch.nn.Module = model
    if compile:
        scoring_model = compile_for_inference(model)
    return Scorer(scoring_model, info, device, resolve_amp(amp, device), channels_last)


__all__ = ["ScoredImage", "Scorer", "decode_image", "load_scorer", "to_pixels"]
