"""Generic CSV: relative and absolute paths, optional std/content, the MOS scale."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from iqabench.data import load_dataset
from iqabench.data.check import check_dataset
from iqabench.errors import IqabenchError


def _images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (10, 10), (3, 4, 5)).save(folder / name)


def test_relative_and_absolute_paths(tmp_path: Path):
    _images(tmp_path / "set" / "imgs", ["a.png", "b.png"])
    _images(tmp_path / "elsewhere", ["c.png"])
    absolute = tmp_path / "elsewhere" / "c.png"
    (tmp_path / "set" / "scores.csv").write_text(
        f"path,mos,std,content\nimgs/a.png,1.5,0.2,x\nimgs/b.png,4.5,0.3,x\n{absolute},3.0,0.1,y\n"
    )
    table = load_dataset("csv", tmp_path / "set" / "scores.csv")
    assert table.frame["name"].tolist() == ["imgs/a.png", "imgs/b.png", str(absolute)]
    assert table.frame["path"].tolist() == [
        str(tmp_path / "set" / "imgs" / "a.png"), str(tmp_path / "set" / "imgs" / "b.png"), str(absolute)
    ]  # fmt: skip
    assert table.frame["content_id"].tolist() == ["x", "x", "y"]
    assert table.frame["mos_std"].tolist() == [0.2, 0.3, 0.1]
    assert table.mos_range == (1.5, 4.5) and "from the data" in table.label_note
    assert check_dataset(table) == []


def test_mos_range_given_and_minimal_columns(tmp_path: Path):
    (tmp_path / "s.csv").write_text("path,mos\na.png,3\nb.png,7\n")
    table = load_dataset("csv", tmp_path / "s.csv", mos_range=(0, 10))
    assert table.mos_range == (0.0, 10.0)
    assert table.frame["content_id"].tolist() == ["a.png", "b.png"]
    assert table.frame["mos_std"].isna().all()


def test_wrong_columns_and_missing_file(tmp_path: Path):
    (tmp_path / "s.csv").write_text("image,score\na.png,3\n")
    with pytest.raises(IqabenchError, match=r"s.csv: expected columns path, mos"):
        load_dataset("csv", tmp_path / "s.csv")
    with pytest.raises(IqabenchError, match="is not a file"):
        load_dataset("csv", tmp_path / "nope.csv")
