"""SPAQ (Fang et al., CVPR 2020): 11,125 smartphone photos.

ROOT holds ``Annotations/MOS and Image attribute scores.xlsx`` (columns ``Image name,
MOS, Brightness, Colorfulness, Contrast, Noisiness, Sharpness``; MOS 0-100, higher =
better; the workbook directly in ROOT, or a CSV export of it, is accepted too) and the
images in ``TestImage/``. The photos are up to 4000x3000, so they are resized to a short
side of 512 (aspect ratio kept) when decoded; Hyper-IQA-style pipelines do the same.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from iqabench.data._native import dataset_root, find_file, make_table, require_columns
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError

SCORE_STEM = "MOS and Image attribute scores"
SCORE_FILES = tuple(f"{folder}{SCORE_STEM}.{ext}" for ext in ("xlsx", "csv") for folder in ("Annotations/", ""))


def read_spaq(root: str | Path) -> DatasetTable:
    """SPAQ: ROOT holds ``Annotations/MOS and Image attribute scores.xlsx`` and ``TestImage/``."""
    root = dataset_root(root, "spaq")
    path = find_file(root, SCORE_FILES, "spaq")
    try:
        scores = pd.read_excel(path, sheet_name=0) if path.suffix == ".xlsx" else pd.read_csv(path)
    except Exception as err:  # pandas/openpyxl raise many unrelated types for a bad file
        raise IqabenchError(f"{path}: not readable ({err})") from err
    scores.columns = [str(c).strip() for c in scores.columns]
    require_columns(scores, ("Image name", "MOS"), path)
    names = scores["Image name"].astype(str).str.strip()
    return make_table(
        "spaq",
        root,
        [root / "TestImage" / n for n in names],
        pd.to_numeric(scores["MOS"], errors="coerce").to_numpy(),
        mos_range=(0.0, 100.0),
        label_note=f"MOS (0-100) from {path.name}; resized to short side 512 when decoded",
        resize="short512",
    )
