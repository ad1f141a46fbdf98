"""CSIQ (Larson & Chandler, JEI 2010): 866 distorted images of 30 references.

Scores, in order of preference (the first found is read):

- the DMOS workbook ``csiq.DMOS.xlsx`` (official name) or ``csiq.beta.xlsx`` (the same
  workbook as some mirrors name it): sheet ``all_by_image``, header ``image, dst_idx,
  dst_type, dst_lev, dmos_std, dmos`` in row 4 from column D; the image ``1600`` is
  stored as a number;
- ``csiq_label.txt`` from Hyper-IQA: ``<file name> <dmos>`` per line, no std.

Images: ``dst_imgs/<folder>/<image>.<TYPE>.<level>.png`` with (workbook ``dst_type`` ->
folder, TYPE) noise -> awgn, AWGN; jpeg -> jpeg, JPEG; jpeg 2000 -> jpeg2000, jpeg2000;
fnoise -> fnoise, fnoise; blur -> blur, BLUR; contrast -> contrast, contrast. Names
are matched case-insensitively anywhere under ``dst_imgs/`` or Hyper-IQA's flattened
``dst_imgs_all/``. DMOS is 0-1, lower = better; the label is ``1 - dmos``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl

from iqabench.data._native import cell_text, dataset_root, file_index, make_table
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError

WORKBOOKS = ("csiq.DMOS.xlsx", "csiq.beta.xlsx")
LABEL_FILE = "csiq_label.txt"
SHEET = "all_by_image"
HEADER = ("image", "dst_type", "dst_lev", "dmos_std", "dmos")
#: workbook dst_type -> (folder under dst_imgs, TYPE token in the file name)
TYPES = {
    "noise": ("awgn", "AWGN"),
    "jpeg": ("jpeg", "JPEG"),
    "jpeg 2000": ("jpeg2000", "jpeg2000"),
    "fnoise": ("fnoise", "fnoise"),
    "blur": ("blur", "BLUR"),
    "contrast": ("contrast", "contrast"),
}
FOLDER_BY_TOKEN = {token.lower(): folder for folder, token in TYPES.values()}
IMAGE_FOLDERS = ("dst_imgs", "dst_imgs_all")


def read_csiq(root: str | Path) -> DatasetTable:
    """CSIQ: ROOT holds the DMOS workbook (or csiq_label.txt) and ``dst_imgs/``."""
    root = dataset_root(root, "csiq")
    workbook = next((root / w for w in WORKBOOKS if (root / w).is_file()), None)
    if workbook is not None:
        rows, source = _read_workbook(workbook), workbook.name
    elif (root / LABEL_FILE).is_file():
        rows, source = _read_label_file(root / LABEL_FILE), LABEL_FILE
    else:
        raise IqabenchError(f"csiq: no score file under {root} (looked for {', '.join(WORKBOOKS)}, {LABEL_FILE})")

    index: dict[str, Path] = {}
    for folder in IMAGE_FOLDERS:
        index.update({k: v for k, v in file_index(root / folder).items() if k not in index})
    files = [index.get(r["file"].lower(), root / "dst_imgs" / r["folder"] / r["file"]) for r in rows]
    dmos = np.array([r["dmos"] for r in rows], dtype=float)
    return make_table(
        "csiq",
        root,
        files,
        1.0 - dmos,
        mos_std=np.array([r["dmos_std"] for r in rows], dtype=float),
        content_id=[r["image"] for r in rows],
        mos_range=(0.0, 1.0),
        label_note=f"DMOS (0-1, lower = better) from {source} flipped: mos = 1 - dmos",
        extra_columns={"distortion": [r["folder"] for r in rows], "level": [r["level"] for r in rows]},
    )


def _read_workbook(path: Path) -> list[dict]:
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises several unrelated types for a bad file
        raise IqabenchError(f"{path}: not a readable .xlsx workbook ({err})") from err
    try:
        if SHEET not in book.sheetnames:
            raise IqabenchError(f"{path}: no sheet {SHEET!r} (found: {', '.join(book.sheetnames)})")
        cells = [list(r) for r in book[SHEET].iter_rows(values_only=True)]
    finally:
        book.close()
    header_at, columns = _find_header(cells)
    if header_at is None:
        raise IqabenchError(f"{path}: sheet {SHEET!r} has no header row with columns {', '.join(HEADER)}")
    rows = []
    for cells_row in cells[header_at + 1 :]:
        values = {name: cells_row[i] if i < len(cells_row) else None for name, i in columns.items()}
        if all(v is None for v in values.values()):
            continue
        dst_type = cell_text(values["dst_type"]).lower()
        if dst_type not in TYPES:
            known = ", ".join(TYPES)
            raise IqabenchError(f"{path}: unknown dst_type {values['dst_type']!r} (expected one of {known})")
        folder, token = TYPES[dst_type]
        image, level = cell_text(values["image"]), int(float(values["dst_lev"]))
        rows.append(
            {
                "image": image,
                "file": f"{image}.{token}.{level}.png",
                "folder": folder,
                "level": level,
                "dmos": _number(values["dmos"]),
                "dmos_std": _number(values["dmos_std"]),
            }
        )
    return rows


def _find_header(cells: list[list]) -> tuple[int | None, dict[str, int]]:
    """Row index and column positions of the header (row 4 in the release; searched)."""
    for at, row in enumerate(cells[:20]):
        labels = [cell_text(c).lower() if c is not None else "" for c in row]
        if all(h in labels for h in HEADER):
            return at, {h: labels.index(h) for h in HEADER}
    return None, {}


def _number(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")  # left for `iqabench data check` to report


def _read_label_file(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        pieces = parts[0].rsplit(".", 3) if len(parts) == 2 else []
        if len(pieces) != 4 or pieces[1].lower() not in FOLDER_BY_TOKEN or not pieces[2].isdigit():
            raise IqabenchError(
                f"{path}:{number}: expected '<image>.<TYPE>.<level>.png <dmos>' with TYPE one of "
                f"{', '.join(t for _, t in TYPES.values())}, got {line.strip()!r}"
            )
        rows.append(
            {
                "image": pieces[0],
                "file": parts[0],
                "folder": FOLDER_BY_TOKEN[pieces[1].lower()],
                "level": int(pieces[2]),
                "dmos": _number(parts[1]),
                "dmos_std": float("nan"),
            }
        )
    return rows
