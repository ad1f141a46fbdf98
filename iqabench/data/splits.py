"""Seeded train/val/test splits, written as files so every run can be reproduced.

Random rounds follow the field's protocol (10 rounds of 80/20 by default) with one
change: a validation slice is carved out of the training part, so a model is chosen on
validation data, never on the test set (the original reported its best test epoch).

Splits are drawn over *units*: content ids when images share content (reference images
of synthetic-distortion sets, prompts of AGIQA-3K), so no content ever lands on two
sides; single images otherwise. Units are sorted before shuffling, so a split depends
only on (set of units and their sizes, seed, round), not on the table's row order.
Test and validation take whole units in shuffled order until their image count is as
close as possible to the asked fraction of images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError

SUBSETS = ("train", "val", "test")
KINDS = ("random_by_content", "random_by_image", "official")


@dataclass(frozen=True)
class Split:
    """One split of a dataset into image ``name``s per subset (each tuple sorted).

    ``kind``: ``random_by_content``, ``random_by_image`` or ``official``; ``round`` and
    ``seed`` say which random draw it is (0 and 0 for the official split).
    """

    round: int
    seed: int
    kind: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def subset(self, name: str) -> tuple[str, ...]:
        if name not in SUBSETS:
            raise IqabenchError(f"subset {name!r} unknown: choose one of {', '.join(SUBSETS)}")
        return getattr(self, name)

    def counts(self) -> dict[str, int]:
        return {s: len(getattr(self, s)) for s in SUBSETS}


def _units(table: DatasetTable, by_content: bool) -> dict[str, list[str]]:
    """Map unit id -> image names in it; a unit is a content id or a single image."""
    frame = table.frame
    names = frame["name"].astype(str)
    if by_content and "content_id" in frame:
        content = frame["content_id"].fillna("").astype(str)
        keys = content.where(content != "", "image:" + names)  # no content id: its own unit
    else:
        keys = names
    units: dict[str, list[str]] = {}
    for key, name in zip(keys, names):
        units.setdefault(key, []).append(name)
    return units


def _take(sizes: np.ndarray, target: float, keep: int) -> int:
    """How many leading units bring the image count closest to ``target``.

    At least one unit, and at most ``len(sizes) - keep`` so ``keep`` units remain.
    """
    cumulative = np.cumsum(sizes)
    k = int(np.argmin(np.abs(cumulative - target))) + 1
    return max(1, min(k, len(sizes) - keep))


def make_splits(
    table: DatasetTable,
    rounds: int = 10,
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    by_content: bool = True,
) -> list[Split]:
    """``rounds`` random splits: test = ``test_fraction`` of the images, val =
    ``val_fraction`` of what remains (carved from the training part), rest train.

    Round r shuffles with ``numpy.random.default_rng(SeedSequence([seed, r]))``, so round
    r of seed s is the same whether 1 or 10 rounds are asked. ``by_content`` keeps images
    of one ``content_id`` together (a no-op when every image is its own content).
    """
    if rounds < 1:
        raise IqabenchError(f"rounds must be at least 1, got {rounds}")
    if not 0 < test_fraction < 1:
        raise IqabenchError(f"test fraction must be between 0 and 1, got {test_fraction}")
    if not 0 <= val_fraction < 1:
        raise IqabenchError(f"validation fraction must be in [0, 1), got {val_fraction}")
    names = table.frame["name"].astype(str)
    if names.duplicated().any():
        raise IqabenchError(f"dataset {table.name!r} has repeated image names, e.g. {names[names.duplicated()].iloc[0]!r}")
    units = _units(table, by_content)
    keys = sorted(units)
    sizes = np.array([len(units[k]) for k in keys])
    need = 3 if val_fraction > 0 else 2
    if len(keys) < need:
        raise IqabenchError(
            f"dataset {table.name!r} has {len(keys)} split unit(s); at least {need} are needed"
        )
    kind = "random_by_content" if by_content else "random_by_image"
    splits = []
    for r in range(rounds):
        rng = np.random.default_rng(np.random.SeedSequence([seed, r]))
        order = rng.permutation(len(keys))
        n_test = _take(sizes[order], test_fraction * sizes.sum(), keep=need - 1)
        test_units, rest = order[:n_test], order[n_test:]
        if val_fraction > 0:
            n_val = _take(sizes[rest], val_fraction * sizes[rest].sum(), keep=1)
            val_units, train_units = rest[:n_val], rest[n_val:]
        else:
            val_units, train_units = rest[:0], rest

        def images(idx: np.ndarray) -> tuple[str, ...]:
            return tuple(sorted(n for i in idx for n in units[keys[i]]))

        splits.append(
            Split(r, seed, kind, images(train_units), images(val_units), images(test_units))
        )
    return splits


_OFFICIAL_ALIASES = {"train": "train", "training": "train", "val": "val", "validation": "val", "test": "test"}


def official_split(table: DatasetTable) -> Split:
    """The dataset's own split from its ``official_split`` column (KonIQ: 7058/1000/2015)."""
    frame = table.frame
    column = frame["official_split"] if "official_split" in frame else pd.Series([""] * len(frame))
    labels = column.fillna("").astype(str).str.strip().str.lower()
    if (labels == "").all():
        raise IqabenchError(
            f"dataset {table.name!r} has no official split; use random rounds (make_splits) instead"
        )
    unknown = sorted(set(labels) - set(_OFFICIAL_ALIASES))
    if unknown:
        raise IqabenchError(
            f"dataset {table.name!r}: official_split value(s) {unknown} not one of train/val/test"
        )
    names = frame["name"].astype(str)
    subsets = labels.map(_OFFICIAL_ALIASES)
    parts = {s: tuple(sorted(names[subsets == s])) for s in SUBSETS}
    return Split(0, 0, "official", parts["train"], parts["val"], parts["test"])


def split_frame(split: Split) -> pd.DataFrame:
    """The split as rows ``name, subset, round, seed, kind`` (train, then val, then test)."""
    rows = [(n, s) for s in SUBSETS for n in getattr(split, s)]
    frame = pd.DataFrame(rows, columns=["name", "subset"])
    frame["round"] = split.round
    frame["seed"] = split.seed
    frame["kind"] = split.kind
    return frame


def write_split(split: Split, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``split`` as CSV: columns ``name,subset`` plus ``round,seed,kind`` per row.

    Writing the identical split again is a no-op; a different existing file is kept and
    an error raised unless ``overwrite``.
    """
    path = Path(path)
    text = split_frame(split).to_csv(index=False, lineterminator="\n")
    if path.exists() and not overwrite:
        if path.read_text() == text:
            return path
        raise IqabenchError(f"split file {path} already exists with a different split; not overwriting")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def read_split(path: str | Path) -> Split:
    """Read a split written by :func:`write_split` (or any CSV with ``name,subset``).

    Files without ``round``/``seed``/``kind`` columns read as round 0, seed 0 and kind
    ``"file"``, which marks a split whose origin the file does not record.
    """
    path = Path(path)
    if not path.is_file():
        raise IqabenchError(f"split file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise IqabenchError(f"split file {path} is not a readable CSV ({err})") from None
    missing = [c for c in ("name", "subset") if c not in frame.columns]
    if missing:
        raise IqabenchError(f"split file {path} lacks column(s) {', '.join(missing)}")
    bad = sorted(set(frame["subset"]) - set(SUBSETS))
    if bad:
        raise IqabenchError(f"split file {path}: subset value(s) {bad} not one of train/val/test")
    dup = frame["name"][frame["name"].duplicated()]
    if len(dup):
        raise IqabenchError(f"split file {path}: image {dup.iloc[0]!r} listed more than once")
    meta = {}
    for column, default in (("round", "0"), ("seed", "0"), ("kind", "file")):
        values = set(frame[column]) if column in frame.columns else {default}
        if len(values) > 1:
            raise IqabenchError(f"split file {path}: column {column} holds several values {sorted(values)}")
        meta[column] = values.pop() if values else default
    try:
        round_, seed = int(meta["round"]), int(meta["seed"])
    except ValueError:
        raise IqabenchError(f"split file {path}: round/seed are not integers") from None
    parts = {s: tuple(sorted(frame["name"][frame["subset"] == s])) for s in SUBSETS}
    return Split(round_, seed, meta["kind"], parts["train"], parts["val"], parts["test"])


def check_split(split: Split, names: Sequence[str], source: str = "split") -> None:
    """Raise unless every image of ``split`` is among ``names`` (e.g. a dataset's)."""
    known = set(names)
    for subset in SUBSETS:
        unknown = [n for n in getattr(split, subset) if n not in known]
        if unknown:
            raise IqabenchError(
                f"{source}: {len(unknown)} {subset} image(s) not in the dataset, e.g. {unknown[0]!r}"
            )
