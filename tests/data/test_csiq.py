"""CSIQ: the DMOS workbook (either name) and Hyper-IQA's label list agree; DMOS flipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from PIL import Image

from iqabench.data import load_dataset
from iqabench.data.check import check_dataset
from iqabench.errors import IqabenchError


@pytest.fixture
def genuine_csiq(shared_data: Path) -> Path:
    folder = shared_data / "meta" / "csiq"
    if not (folder / "csiq.beta.xlsx").is_file() or not (folder / "csiq_label.txt").is_file():
        pytest.skip(f"CSIQ score files not present in {folder}")
    return folder


def test_genuine_workbook_and_label_list_agree(genuine_csiq: Path, tmp_path: Path):
    (tmp_path / "book").mkdir()
    (tmp_path / "txt").mkdir()
    shutil.copy(genuine_csiq / "csiq.beta.xlsx", tmp_path / "book" / "csiq.DMOS.xlsx")  # the official name
    shutil.copy(genuine_csiq / "csiq_label.txt", tmp_path / "txt")
    book = load_dataset("csiq", tmp_path / "book").frame
    label = load_dataset("csiq", tmp_path / "txt").frame
    assert len(book) == len(label) == 866
    assert book["name"].is_unique and set(book["name"]) == set(label["name"])
    merged = book.merge(label, on="name", suffixes=("_book", "_txt"))
    np.testing.assert_allclose(merged["mos_book"], merged["mos_txt"], atol=1e-6)  # the txt rounds to 6 decimals
    assert (merged["content_id_book"] == merged["content_id_txt"]).all()
    assert book["content_id"].nunique() == 30 and "1600" in set(book["content_id"])
    assert book["distortion"].value_counts().to_dict() == {
        "awgn": 150, "jpeg": 150, "jpeg2000": 150, "fnoise": 150, "blur": 150, "contrast": 116
    }  # fmt: skip
    assert book["mos_std"].notna().all() and label["mos_std"].isna().all()

    lines = (genuine_csiq / "csiq_label.txt").read_text().splitlines()
    raw = {line.split()[0]: float(line.split()[1]) for line in lines}
    first = label.iloc[0]
    assert first["mos"] == pytest.approx(1.0 - raw[Path(first["name"]).name])  # flipped: higher = better
    assert label["mos"].between(0, 1).all()


def test_beta_name_is_accepted(genuine_csiq: Path, tmp_path: Path):
    shutil.copy(genuine_csiq / "csiq.beta.xlsx", tmp_path)
    table = load_dataset("csiq", tmp_path)
    assert len(table) == 866 and "csiq.beta.xlsx" in table.label_note


def _write_workbook(path: Path, rows: list[tuple]) -> None:
    """The release's layout: sheet all_by_image, header in row 4 from column D."""
    book = openpyxl.Workbook()
    book.active.title = "z_crit"
    sheet = book.create_sheet("all_by_image")
    sheet["A1"] = "CSIQ DMOS"
    for col, value in zip("DEFGHI", ("image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos")):
        sheet[f"{col}4"] = value
    for r, row in enumerate(rows, start=5):
        for col, value in zip("DEFGHI", row):
            sheet[f"{col}{r}"] = value
    book.save(path)


def test_fixture_workbook_and_images(tmp_path: Path):
    rows = [
        (1600, 1, "noise", 1, 0.06, 0.062),  # 1600 stored as a number, as in the release
        ("woman", 2, "jpeg", 3, 0.05, 0.4),
        ("woman", 3, "jpeg 2000", 5, 0.07, 0.9),
        ("aerial_city", 4, "fnoise", 2, 0.02, 0.2),
        ("aerial_city", 5, "blur", 4, 0.03, 0.7),
        ("1600", 6, "contrast", 1, 0.01, 0.1),
    ]
    _write_workbook(tmp_path / "csiq.DMOS.xlsx", rows)
    files = {
        "awgn/1600.AWGN.1.png", "jpeg/woman.JPEG.3.png", "jpeg2000/woman.jpeg2000.5.png",
        "fnoise/aerial_city.fnoise.2.png", "blur/aerial_city.BLUR.4.png", "contrast/1600.contrast.1.png",
    }  # fmt: skip
    for name in files:
        (tmp_path / "dst_imgs" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (5, 5, 5)).save(tmp_path / "dst_imgs" / name)

    table = load_dataset("csiq", tmp_path)
    assert set(table.frame["name"]) == {f"dst_imgs/{f}" for f in files}
    np.testing.assert_allclose(table.frame["mos"], [1 - r[5] for r in rows])
    np.testing.assert_allclose(table.frame["mos_std"], [r[4] for r in rows])
    assert table.frame["content_id"].tolist() == ["1600", "woman", "woman", "aerial_city", "aerial_city", "1600"]
    assert check_dataset(table) == []


def test_label_list_with_hyperiqa_flat_folder(tmp_path: Path):
    (tmp_path / "csiq_label.txt").write_text("1600.AWGN.1.png 0.061989\nbridge.BLUR.2.png 0.5\n")
    (tmp_path / "dst_imgs_all").mkdir()
    for name in ("1600.AWGN.1.png", "bridge.BLUR.2.png"):
        Image.new("L", (8, 8)).save(tmp_path / "dst_imgs_all" / name)
    table = load_dataset("csiq", tmp_path)
    assert table.frame["name"].tolist() == ["dst_imgs_all/1600.AWGN.1.png", "dst_imgs_all/bridge.BLUR.2.png"]
    assert table.frame["distortion"].tolist() == ["awgn", "blur"]
    assert check_dataset(table) == []


def test_workbook_without_the_sheet_names_the_file(tmp_path: Path):
    book = openpyxl.Workbook()
    book.active.title = "Sheet1"
    book.save(tmp_path / "csiq.DMOS.xlsx")
    with pytest.raises(IqabenchError, match="csiq.DMOS.xlsx: no sheet 'all_by_image'"):
        load_dataset("csiq", tmp_path)


def test_workbook_without_the_header_names_the_columns(tmp_path: Path):
    book = openpyxl.Workbook()
    book.active.title = "all_by_image"
    book.active["A1"] = "image"
    book.save(tmp_path / "csiq.DMOS.xlsx")
    with pytest.raises(IqabenchError, match="image, dst_type, dst_lev, dmos_std, dmos"):
        load_dataset("csiq", tmp_path)
