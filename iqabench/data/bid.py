"""BID, the UFRJ Blurred Image Database (Ciancio et al., TIP 2011): 586 photos.

ROOT holds ``DatabaseGrades.xls`` (legacy Excel, read with xlrd; an ``.xlsx`` re-save is
accepted too) and the images ``DatabaseImageNNNN.JPG``, found case-insensitively
anywhere under ROOT. Sheet 1 has ``Image Number, Average Subjective Grade, Number of
Grades, Grade #1 .. Grade #20``; numbers run 1-590 with 2, 346, 413 and 439 absent.
MOS is the average grade (0-5, higher = better). No std is given, and none is derived:
the grade cells do not reproduce the average in 7 rows, so ``mos_std`` is NaN. Images are
resized to 512x512 when decoded.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import xlrd

from iqabench.data._native import dataset_root, file_index, find_file, make_table
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError

SCORE_FILES = ("DatabaseGrades.xls", "DatabaseGrades.xlsx")
NUMBER, GRADE = "Image Number", "Average Subjective Grade"


def read_bid(root: str | Path) -> DatasetTable:
    """BID: ROOT holds ``DatabaseGrades.xls`` and the ``DatabaseImageNNNN.JPG`` files."""
    root = dataset_root(root, "bid")
    path = find_file(root, SCORE_FILES, "bid")
    cells = _read_sheet(path)
    header = [str(c).strip() for c in cells[0]] if cells else []
    if NUMBER not in header or GRADE not in header:
        raise IqabenchError(f"{path}: expected columns '{NUMBER}', '{GRADE}' in the first sheet's first row")
    at_number, at_grade = header.index(NUMBER), header.index(GRADE)

    numbers, mos = [], []
    for row in cells[1:]:
        if all(c in ("", None) for c in row):
            continue
        try:
            numbers.append(int(float(row[at_number])))
        except (TypeError, ValueError):
            raise IqabenchError(f"{path}: '{NUMBER}' value {row[at_number]!r} is not a number") from None
        mos.append(_number(row[at_grade]))

    on_disk = file_index(root)
    files = [on_disk.get(_image_name(n).lower(), root / _image_name(n)) for n in numbers]
    return make_table(
        "bid",
        root,
        files,
        mos,
        mos_range=(0.0, 5.0),
        label_note=f"'{GRADE}' (0-5) from {path.name}; no std given",
        resize="512x512",
        extra_columns={"image_number": numbers},
    )


def _image_name(number: int) -> str:
    return f"DatabaseImage{number:04d}.JPG"


def _read_sheet(path: Path) -> list[list]:
    """All cells of the first sheet as rows of values."""
    try:
        if path.suffix.lower() == ".xls":
            sheet = xlrd.open_workbook(path).sheet_by_index(0)
            return [sheet.row_values(i) for i in range(sheet.nrows)]
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            return [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
        finally:
            book.close()
    except IqabenchError:
        raise
    except Exception as err:  # xlrd/openpyxl raise many unrelated types for a bad file
        raise IqabenchError(f"{path}: not a readable Excel workbook ({err})") from err


def _number(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")  # left for `iqabench data check` to report
