"""SPAQ: the attribute-scores workbook in Annotations/, images in TestImage/, short side 512."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from PIL import Image

from iqabench.data import load_dataset
from iqabench.data.check import check_dataset
from iqabench.errors import IqabenchError

HEADER = ("Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness")


def _write_workbook(path: Path, header: tuple, rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    book.active.append(header)
    for row in rows:
        book.active.append(row)
    book.save(path)


def test_fixture_release(tmp_path: Path):
    rows = [("00001.jpg", 42.0, 40, 50, 45, 30, 41), ("00002.jpg", 77.5, 70, 71, 72, 73, 74)]
    _write_workbook(tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx", HEADER, rows)
    (tmp_path / "TestImage").mkdir()
    for name, *_ in rows:
        Image.new("RGB", (40, 30), (10, 200, 10)).save(tmp_path / "TestImage" / name)

    table = load_dataset("spaq", tmp_path)
    assert table.frame["name"].tolist() == ["TestImage/00001.jpg", "TestImage/00002.jpg"]
    assert table.frame["mos"].tolist() == [42.0, 77.5]
    assert table.resize == "short512" and table.mos_range == (0.0, 100.0)
    assert check_dataset(table) == []


def test_wrong_columns_name_the_file(tmp_path: Path):
    _write_workbook(tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx", ("name", "score"), [("1.jpg", 3)])
    with pytest.raises(IqabenchError, match="MOS and Image attribute scores.xlsx: expected columns Image name, MOS"):
        load_dataset("spaq", tmp_path)
