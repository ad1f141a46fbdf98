"""Datasets as their authors distribute them, each read into one :class:`DatasetTable`.

One explicit dict from short id to reader; :func:`load_dataset` is the one door in.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from iqabench.errors import IqabenchError

if TYPE_CHECKING:
    from iqabench.data.table import DatasetTable


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset: where its reader lives and what ROOT it expects."""

    reader: str  # "module:function", imported on first use so listing datasets loads no reader (nor pandas, torch)
    summary: str  # one line: the dataset and what ROOT holds

    def load_reader(self) -> Callable[..., DatasetTable]:
        module, _, function = self.reader.partition(":")
        return getattr(importlib.import_module(module), function)


DATASETS: dict[str, DatasetEntry] = {
    "koniq10k": DatasetEntry(
        "iqabench.data.koniq:read_koniq", "KonIQ-10k: ROOT holds the score CSV(s) and 1024x768/ or 512x384/."
    ),
    "livec": DatasetEntry(
        "iqabench.data.livec:read_livec", "LIVE Challenge: ROOT is ChallengeDB_release (Data/*.mat and Images/)."
    ),
    "live": DatasetEntry(
        "iqabench.data.live:read_live",
        "LIVE R2: ROOT is databaserelease2 (the .mat files and jp2k/jpeg/wn/gblur/fastfading).",
    ),
    "csiq": DatasetEntry(
        "iqabench.data.csiq:read_csiq", "CSIQ: ROOT holds the DMOS workbook (or csiq_label.txt) and dst_imgs/."
    ),
    "tid2013": DatasetEntry(
        "iqabench.data.tid2013:read_tid2013", "TID2013: ROOT holds mos_with_names.txt and distorted_images/."
    ),
    "kadid10k": DatasetEntry("iqabench.data.kadid:read_kadid", "KADID-10k: ROOT holds dmos.csv and images/."),
    "bid": DatasetEntry(
        "iqabench.data.bid:read_bid", "BID: ROOT holds DatabaseGrades.xls and the DatabaseImageNNNN.JPG files."
    ),
    "spaq": DatasetEntry(
        "iqabench.data.spaq:read_spaq",
        "SPAQ: ROOT holds Annotations/MOS and Image attribute scores.xlsx and TestImage/.",
    ),
    "agiqa3k": DatasetEntry("iqabench.data.agiqa3k:read_agiqa3k", "AGIQA-3K: ROOT holds data.csv and images/."),
    "csv": DatasetEntry(
        "iqabench.data.csvfile:read_csv_table",
        "A CSV with columns path,mos[,std,content]; ROOT is the CSV file itself.",
    ),
    "synthetic": DatasetEntry(
        "iqabench.data.synthetic:read_synthetic",
        "Synthetic: a small generated dataset (ROOT optional; generated once into a cache).",
    ),
}


def load_dataset(
    name: str, root: str | Path | None = None, *, mos_range: tuple[float, float] | None = None
) -> DatasetTable:
    """Read dataset ``name`` from ``root`` (its folder as distributed; the file for ``csv``).

    ``mos_range`` sets the scale of a ``csv`` dataset; the others know their own scale.
    """
    if name not in DATASETS:
        close = difflib.get_close_matches(name.lower(), DATASETS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise IqabenchError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)}){hint}")
    root = None if root is None else Path(root)
    if name == "csv":
        return DATASETS[name].load_reader()(root, mos_range=mos_range)
    if mos_range is not None:
        raise IqabenchError(f"--mos-range applies only to the csv dataset; {name} has a known scale")
    if root is None and name != "synthetic":
        raise IqabenchError(f"dataset {name!r} needs ROOT, the folder as its authors distribute it")
    return DATASETS[name].load_reader()(root)


__all__ = ["DATASETS", "DatasetEntry", "load_dataset"]
