"""Training batches of random crops, cut from an :class:`ImageCache`.

Each epoch takes ``crops_per_image`` random ``crop_size`` crops of every training image
(the original Hyper-IQA took 25 per image, each from a fresh decode), flips half of them
horizontally, shuffles all crops together and cuts them into batches. Pixels are already
decoded and resized, so an epoch costs only memory copies.

An epoch is a pure function of ``(seed, epoch)``: call :meth:`TrainBatches.set_epoch`
before iterating (as with torch's ``DistributedSampler``; iterating twice without it
repeats the same epoch), and a resumed run sees exactly the batches an uninterrupted one
would have. With ``world_size`` > 1 every rank draws the same epoch plan, pads it by
wrapping around to a multiple of ``world_size`` crops (so all ranks get equally many
batches and DDP never waits on a missing one), and takes every ``world_size``-th crop
starting at ``rank``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from iqabench.data.cache import ImageCache
from iqabench.data.transforms import crop_batch
from iqabench.errors import IqabenchError


class TrainBatches:
    """Iterable of ``(crops uint8 (B, 3, S, S), labels float32 (B,))`` for one epoch.

    ``names`` and ``labels`` are aligned (labels in whatever units the trainer uses).
    ``len()`` is the number of batches this rank yields per epoch. ``drop_last`` drops a
    final partial batch (useful when a batch of one would break BatchNorm). ``threads``
    background threads cut the next batches while the caller trains on the current one
    (0: cut each batch in the caller's thread); the batches are the same either way.
    """

    def __init__(
        self,
        cache: ImageCache,
        names: Sequence[str],
        labels: np.ndarray,
        crops_per_image: int,
        batch_size: int,
        crop_size: int = 224,
        seed: int = 0,
        flip: bool = True,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        threads: int = 2,
    ):
        labels = np.asarray(labels, dtype=np.float32).reshape(-1)
        if len(labels) != len(names):
            raise ValueError(f"{len(names)} names but {len(labels)} labels")
        if len(names) == 0:
            raise IqabenchError("no training images: the training subset is empty")
        if crops_per_image < 1 or batch_size < 1:
            raise IqabenchError(
                f"crops per image ({crops_per_image}) and batch size ({batch_size}) must be >= 1"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        missing = [n for n in names if n not in cache]
        if missing:
            raise IqabenchError(f"{len(missing)} training image(s) not in the image cache, e.g. {missing[0]!r}")
        self.cache = cache
        self.names = tuple(names)
        self.labels = labels
        self.crops_per_image = int(crops_per_image)
        self.batch_size = int(batch_size)
        self.crop_size = int(crop_size)
        self.seed = int(seed)
        self.flip = flip
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.drop_last = drop_last
        self.threads = max(0, int(threads))
        self.epoch = 0

        all_images = cache.arrays()
        self._images = [all_images[cache.index_of(n)] for n in self.names]  # numpy (3, H, W) views
        sizes = np.array([img.shape[1:] for img in self._images], dtype=np.int64)  # (N, 2) = (H, W)
        small = np.flatnonzero((sizes < self.crop_size).any(axis=1))
        if len(small):
            h, w = sizes[small[0]]
            raise IqabenchError(
                f"image {self.names[small[0]]!r} is {w}x{h}, smaller than the {self.crop_size} px crop; "
                f"build the ImageCache with min_size >= {self.crop_size}"
            )
        self._max_top = sizes[:, 0] - self.crop_size  # inclusive upper bounds of offsets
        self._max_left = sizes[:, 1] - self.crop_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops the next iteration yields."""
        self.epoch = int(epoch)

    @property
    def crops_per_rank(self) -> int:
        total = len(self.names) * self.crops_per_image
        return -(-total // self.world_size)  # ceil: padded so every rank gets as many

    def __len__(self) -> int:
        n = self.crops_per_rank
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch_plan(self, epoch: int | None = None) -> dict[str, np.ndarray]:
        """This rank's crops for ``epoch`` (default: the current one), in yield order.

        Keys: ``image`` (index into ``names``), ``top``, ``left``, ``flip`` (bool).
        The same for every rank given (seed, epoch); ranks take disjoint strides.
        """
        epoch = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
        n_images, k = len(self.names), self.crops_per_image
        image = np.repeat(np.arange(n_images), k)
        # one uniform draw per crop, scaled to each image's own range of offsets
        top = np.floor(rng.random(image.size) * (self._max_top[image] + 1)).astype(np.int64)
        left = np.floor(rng.random(image.size) * (self._max_left[image] + 1)).astype(np.int64)
        flip = rng.random(image.size) < 0.5 if self.flip else np.zeros(image.size, dtype=bool)
        order = rng.permutation(image.size)
        if self.world_size > 1:
            padded = self.crops_per_rank * self.world_size
            order = np.resize(order, padded)  # wraps around to pad
            order = order[self.rank :: self.world_size]
        return {"image": image[order], "top": top[order], "left": left[order], "flip": flip[order]}

    def _batch(self, plan: dict[str, np.ndarray], b: int) -> tuple[torch.Tensor, torch.Tensor]:
        sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
        idx = plan["image"][sl]
        crops = crop_batch(
            [self._images[i] for i in idx],
            plan["top"][sl].tolist(),
            plan["left"][sl].tolist(),
            self.crop_size,
            plan["flip"][sl],
        )
        return crops, torch.from_numpy(self.labels[idx])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        plan = self.epoch_plan()
        n_batches = len(self)
        if self.threads == 0:
            for b in range(n_batches):
                yield self._batch(plan, b)
            return
        depth = 2 * self.threads  # batches cut ahead of the caller
        with ThreadPoolExecutor(self.threads) as pool:
            pending: deque = deque()
            submitted = 0
            for _ in range(n_batches):
                while submitted < n_batches and len(pending) < depth:
                    pending.append(pool.submit(self._batch, plan, submitted))
                    submitted += 1
                yield pending.popleft().result()
