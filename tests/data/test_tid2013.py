"""TID2013: the release's mixed-case names matched to the files case-insensitively."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iqabench.data import load_dataset
from iqabench.data.check import check_dataset
from iqabench.errors import IqabenchError


@pytest.fixture
def genuine_scores(shared_data: Path) -> Path:
    path = shared_data / "meta" / "tid2013" / "mos_with_names.txt"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def test_genuine_scores_with_lower_case_files(genuine_scores: Path, tmp_path: Path):
    shutil.copy(genuine_scores, tmp_path)
    listed = [line.split()[1] for line in genuine_scores.read_text().splitlines()]
    odd_case = [n for n in listed if n != n.lower()]
    assert len(odd_case) == 75  # the release's I01_01_1.bmp, I01_11_1.BMP, ...
    (tmp_path / "distorted_images").mkdir()
    for name in odd_case[:3] + [n for n in listed if n == n.lower()][:2]:
        Image.new("RGB", (12, 8), (1, 1, 1)).save(tmp_path / "distorted_images" / name.lower(), format="BMP")

    table = load_dataset("tid2013", tmp_path)
    frame = table.frame
    assert len(frame) == 3000 and frame["name"].is_unique
    assert frame["content_id"].nunique() == 25
    assert frame.groupby("content_id").size().eq(120).all()  # 24 types x 5 levels per reference
    assert frame["mos"].between(0, 9).all() and table.mos_range == (0.0, 9.0)
    mos = [float(line.split()[0]) for line in genuine_scores.read_text().splitlines()]
    np.testing.assert_allclose(frame["mos"], mos)
    # the listed upper-case names resolve to the lower-case files on disk
    for name in odd_case[:3]:
        row = frame.loc[frame["name"].str.lower() == f"distorted_images/{name.lower()}"]
        assert len(row) == 1 and Path(row["path"].iloc[0]).name == name.lower()
        assert Path(row["path"].iloc[0]).is_file()
    found = frame[frame["path"].map(lambda p: Path(p).is_file())]
    assert len(found) == 5
    assert check_dataset(replace(table, frame=found)) == []


def test_fixture_with_std_file(tmp_path: Path):
    (tmp_path / "mos_with_names.txt").write_bytes(b"5.51429 I01_01_1.bmp\r\n4.0 i02_11_3.BMP\r\n")
    (tmp_path / "mos_std.txt").write_text("0.11\n0.22\n")
    (tmp_path / "distorted_images").mkdir()
    for name in ("i01_01_1.bmp", "i02_11_3.bmp"):
        Image.new("RGB", (8, 8)).save(tmp_path / "distorted_images" / name, format="BMP")
    table = load_dataset("tid2013", tmp_path)
    assert table.frame["mos"].tolist() == [5.51429, 4.0]
    assert table.frame["mos_std"].tolist() == [0.11, 0.22]
    assert table.frame["content_id"].tolist() == ["01", "02"]
    assert table.frame["distortion"].tolist() == [1, 11]
    assert check_dataset(table) == []


def test_bad_line_names_file_and_line(tmp_path: Path):
    (tmp_path / "mos_with_names.txt").write_text("5.1 i01_01_1.bmp\nfoo\n")
    with pytest.raises(IqabenchError, match=r"mos_with_names.txt:2: expected '<MOS> iXX_YY_Z.bmp'"):
        load_dataset("tid2013", tmp_path)
