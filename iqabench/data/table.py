"""One table per dataset, whatever its native format.

Every reader in ``iqabench.data`` returns a :class:`DatasetTable`: one row per image with
its path, MOS (higher = better), std, content id and official split, plus the label
scale, so labels can be normalised explicitly and predictions traced back to files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

#: Columns every reader fills, in this order.
COLUMNS = ("name", "path", "mos", "mos_std", "content_id", "official_split")


@dataclass
class DatasetTable:
    """A dataset as one table.

    ``frame`` columns: ``name`` (unique key, the file's path relative to ``root``),
    ``path`` (absolute path as str), ``mos`` (float, higher = better, on ``mos_range``),
    ``mos_std`` (float, NaN where not given), ``content_id`` (str; images sharing content
    share it: reference image, prompt; else the image's own name), ``official_split``
    ("train"/"val"/"test", or "" where the dataset has none). Readers may add columns
    (e.g. ``distortion``, ``generator``) used to colour plots.
    """

    name: str  # short id: koniq10k, livec, live, csiq, tid2013, kadid10k, bid, spaq, agiqa3k, csv, synthetic
    root: Path | None
    frame: pd.DataFrame
    mos_range: tuple[float, float]  # nominal scale of `mos`, used to normalise labels to [0, 1]
    label_note: str = ""  # how `mos` was derived, e.g. "DMOS (0-1) flipped: mos = 1 - dmos"
    resize: str | None = None  # resize rule applied when decoding (see iqabench.data.transforms)
    extras: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)

    def normalised_mos(self) -> pd.Series:
        """``mos`` mapped linearly from ``mos_range`` to [0, 1]."""
        lo, hi = self.mos_range
        return (self.frame["mos"] - lo) / (hi - lo)
