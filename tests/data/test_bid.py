"""BID: the genuine legacy .xls grades with images found under any subfolder."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import xlrd
from PIL import Image

from iqabench.data import load_dataset
from iqabench.data.check import check_dataset
from iqabench.errors import IqabenchError


@pytest.fixture
def genuine_grades(shared_data: Path) -> Path:
    path = shared_data / "meta" / "bid" / "DatabaseGrades.xls"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def test_genuine_grades_with_images(genuine_grades: Path, tmp_path: Path):
    shutil.copy(genuine_grades, tmp_path)
    (tmp_path / "ImageDatabase").mkdir()
    for number in (1, 3, 590):
        Image.new("RGB", (40, 30), (70, 70, 70)).save(tmp_path / "ImageDatabase" / f"DatabaseImage{number:04d}.JPG")

    table = load_dataset("bid", tmp_path)
    frame = table.frame
    assert len(frame) == 586 and frame["name"].is_unique
    assert sorted(set(range(1, 591)) - set(frame["image_number"])) == [2, 346, 413, 439]
    sheet = xlrd.open_workbook(genuine_grades).sheet_by_index(0)
    expected = {int(sheet.cell_value(r, 0)): sheet.cell_value(r, 1) for r in range(1, sheet.nrows)}
    assert dict(zip(frame["image_number"], frame["mos"])) == expected
    assert frame["mos"].between(0, 5).all() and table.mos_range == (0.0, 5.0)
    assert table.resize == "512x512"
    found = frame[frame["image_number"].isin([1, 3, 590])]
    assert found["name"].tolist() == [f"ImageDatabase/DatabaseImage{n:04d}.JPG" for n in (1, 3, 590)]
    assert check_dataset(replace(table, frame=found)) == []
    problems = check_dataset(table)
    assert len(problems) == 583 and {p.kind for p in problems} == {"missing"}  # the rest are reported


def test_not_a_workbook_names_the_file(tmp_path: Path):
    (tmp_path / "DatabaseGrades.xls").write_text("not excel")
    with pytest.raises(IqabenchError, match="DatabaseGrades.xls: not a readable Excel workbook"):
        load_dataset("bid", tmp_path)
