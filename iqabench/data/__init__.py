"""Datasets as their authors distribute them, each read into one :class:`DatasetTable`.

One explicit dict from short id to reader; :func:`load_dataset` is the one door in.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

from iqabench.data.agiqa3k import read_agiqa3k
from iqabench.data.bid import read_bid
from iqabench.data.csiq import read_csiq
from iqabench.data.csvfile import read_csv_table
from iqabench.data.kadid import read_kadid
from iqabench.data.koniq import read_koniq
from iqabench.data.live import read_live
from iqabench.data.livec import read_livec
from iqabench.data.spaq import read_spaq
from iqabench.data.table import DatasetTable
from iqabench.data.tid2013 import read_tid2013
from iqabench.errors import IqabenchError


def read_synthetic(root: str | Path | None = None) -> DatasetTable:
    """Synthetic: a small generated dataset (ROOT optional; generated once into a cache)."""
    from iqabench.data.synthetic import read_synthetic as read  # imported late: see iqabench.data.synthetic

    return read(None if root is None else Path(root))


DATASETS: dict[str, Callable[..., DatasetTable]] = {
    "koniq10k": read_koniq,
    "livec": read_livec,
    "live": read_live,
    "csiq": read_csiq,
    "tid2013": read_tid2013,
    "kadid10k": read_kadid,
    "bid": read_bid,
    "spaq": read_spaq,
    "agiqa3k": read_agiqa3k,
    "csv": read_csv_table,
    "synthetic": read_synthetic,
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
    if name == "csv":
        return read_csv_table(root, mos_range=mos_range)
    if mos_range is not None:
        raise IqabenchError(f"--mos-range applies only to the csv dataset; {name} has a known scale")
    if root is None and name != "synthetic":
        raise IqabenchError(f"dataset {name!r} needs ROOT, the folder as its authors distribute it")
    return DATASETS[name](root)


__all__ = ["DATASETS", "DatasetTable", "load_dataset"]
