"""The original Hyper-IQA code path (SSL92/hyperIQA ``HyerIQASolver.py``, ``data_loader.py``,
``folders.py``), rebuilt from its description as the reference the benchmarks time iqabench
against. It runs iqabench's :class:`~iqabench.models.hyperiqa.HyperIQA` module, so both
sides have the same architecture, FLOPs and weights; only the code around the model is
the original's:

- loading: every image listed ``patch_num`` times; each sample opens and decodes its file
  with PIL, then ``RandomHorizontalFlip`` (training only) ``-> RandomCrop -> ToTensor ->
  Normalize``; a torch ``DataLoader`` (training: shuffled batches; test: batch 1);
  ``num_workers=0`` in the original;
- training: NCHW fp32, ``model.train()``, ``zero_grad -> forward -> L1 on the raw MOS ->
  loss.item() -> backward -> Adam step`` with the heads at ``lr x head_lr_ratio``;
- test: one forward and ``pred.item()`` per crop, the mean of each image's crops.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from iqabench.models.hyperiqa import HyperIQA

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def original_transform(train: bool, crop: int, mean: Sequence[float] = IMAGENET_MEAN,
                       std: Sequence[float] = IMAGENET_STD) -> transforms.Compose:
    """The per-sample transform (training: with a random flip; test: without)."""
    steps = [transforms.RandomHorizontalFlip()] if train else []
    steps += [transforms.RandomCrop(size=crop), transforms.ToTensor(),
              transforms.Normalize(mean=mean, std=std)]
    return transforms.Compose(steps)


class OriginalHyperIQAFolder(Dataset):
    """Samples as the original builds them: (path, label) repeated ``patch_num`` times, each
    decoded afresh when drawn."""

    def __init__(self, paths: Sequence[str], labels: np.ndarray, patch_num: int,
                 transform: transforms.Compose):
        self.samples = [(p, float(y)) for p, y in zip(paths, labels) for _ in range(patch_num)]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        with open(path, "rb") as f:
            image = Image.open(f).convert("RGB")
        return self.transform(image), label


def original_loader(paths: Sequence[str], labels: np.ndarray, crops: int, crop: int, train: bool,
                    batch_size: int, workers: int = 0, mean: Sequence[float] = IMAGENET_MEAN,
                    std: Sequence[float] = IMAGENET_STD, drop_last: bool = False) -> DataLoader:
    """The original's loader: training shuffles batches of ``batch_size``; test is batch 1."""
    data = OriginalHyperIQAFolder(paths, labels, crops, original_transform(train, crop, mean, std))
    return DataLoader(data, batch_size=batch_size if train else 1, shuffle=train,
                      num_workers=workers, drop_last=drop_last)


def original_model(model: HyperIQA, device: torch.device) -> HyperIQA:
    """A copy of ``model`` (same weights), NCHW fp32 on ``device``. The original normalises in
    the loader (ToTensor + Normalize), so the copy's in-graph normalisation is identity."""
    reference = HyperIQA(model.config, pretrained=False)
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        reference.mean.zero_()
        reference.std.fill_(1.0)
    return reference.to(device)


def original_optimizer(model: HyperIQA, lr: float, head_lr_ratio: float,
                       weight_decay: float) -> torch.optim.Optimizer:
    """Adam over the heads (``lr x head_lr_ratio``) and the backbone (``lr``), as the original
    solver builds it for epoch 1. (From epoch 2 on, the original's rebuilt Adam has no head
    parameters: their list is a ``filter`` object the first optimiser already consumed.)"""
    return torch.optim.Adam([{"params": model.head_parameters(), "lr": lr * head_lr_ratio},
                             {"params": list(model.backbone.parameters()), "lr": lr}],
                            weight_decay=weight_decay)


def original_train_epoch(model: HyperIQA, optimizer: torch.optim.Optimizer, loader: Iterable,
                         device: torch.device) -> int:
    """One epoch of the original solver's training loop; returns the patches seen."""
    model.train(True)
    l1 = nn.L1Loss()
    patches = 0
    for img, label in loader:
        img, label = img.to(device), label.to(device)
        optimizer.zero_grad()
        pred = model(img)
        loss = l1(pred.squeeze(), label.float().detach())
        loss.item()  # the original logs every step's loss (a device sync on CUDA)
        loss.backward()
        optimizer.step()
        patches += len(img)
    return patches


def original_test(model: HyperIQA, loader: Iterable, device: torch.device, crops: int,
                  autograd: bool = False) -> np.ndarray:
    """The original solver's test loop: batch 1, one forward per crop, the mean of each
    image's crops. The original runs it with autograd on (``autograd=True``)."""
    model.train(False)
    scores = []
    with contextlib.nullcontext() if autograd else torch.no_grad():
        for img, _ in loader:
            pred = model(img.to(device))
            scores.append(float(pred.item()))
    return np.mean(np.reshape(np.array(scores), (-1, crops)), axis=1)
