"""KonIQ-10k: the authors' sets file, the scores file, both together, and the image folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iqabench.data import load_dataset
from iqabench.data.check import check_dataset
from iqabench.errors import IqabenchError

SETS = "koniq10k_distributions_sets.csv"
SCORES = "koniq10k_scores_and_distributions.csv"


@pytest.fixture
def genuine_sets(shared_data: Path) -> Path:
    path = shared_data / "meta" / "koniq10k" / SETS
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def test_genuine_sets_file_gives_official_split(genuine_sets: Path, tmp_path: Path):
    shutil.copy(genuine_sets, tmp_path / SETS)
    table = load_dataset("koniq10k", tmp_path)
    raw = pd.read_csv(genuine_sets)
    assert len(table) == len(raw) == 10073
    assert table.frame["name"].is_unique
    counts = table.frame["official_split"].value_counts().to_dict()
    assert counts == {"train": 7058, "val": 1000, "test": 2015}
    np.testing.assert_allclose(table.frame["mos"], raw["MOS"])  # the 0-100 score
    np.testing.assert_allclose(table.frame["sd_1to5"], raw["SD"])
    assert table.frame["mos_std"].isna().all()  # SD is on another scale: recorded, not mixed in
    assert table.mos_range == (0.0, 100.0)
    assert table.frame["mos"].between(0, 100).all()
    assert table.resize == "512x384"  # no 512x384 folder given: the 1024x768 images are resized
    assert table.frame["name"].iloc[0] == f"1024x768/{raw['image_name'].iloc[0]}"


def _write_release(root: Path, rows: pd.DataFrame, with_sets: bool, with_scores: bool) -> None:
    """KonIQ's two CSVs for ``rows`` (image_name, c1..c5, c_total, MOS_zscore, SD, set)."""
    dist = rows[["c1", "c2", "c3", "c4", "c5"]].to_numpy()
    mos_1to5 = dist @ np.arange(1, 6)
    if with_scores:
        scores = rows[["image_name", "c1", "c2", "c3", "c4", "c5", "c_total"]].copy()
        scores["MOS"], scores["SD"], scores["MOS_zscore"] = mos_1to5, rows["SD"], rows["MOS"]
        scores.to_csv(root / SCORES, index=False, quoting=1)  # the release quotes its header
    if with_sets:
        rows[["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "set"]].to_csv(
            root / SETS, index=False
        )


def _tiny_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_name": ["1.jpg", "2.jpg", "3.jpg"],
            "c1": [0.0, 0.5, 0.1], "c2": [0.0, 0.5, 0.2], "c3": [0.2, 0.0, 0.3],
            "c4": [0.5, 0.0, 0.2], "c5": [0.3, 0.0, 0.2], "c_total": [100, 120, 110],
            "MOS": [80.5, 10.25, 50.0], "SD": [0.7, 0.5, 1.1], "set": ["training", "validation", "test"],
        }
    )  # fmt: skip


@pytest.mark.parametrize("folder, resize", [("1024x768", "512x384"), ("512x384", None)])
def test_fixture_with_images_and_both_files(tmp_path: Path, folder: str, resize: str | None):
    rows = _tiny_rows()
    _write_release(tmp_path, rows, with_sets=True, with_scores=True)
    (tmp_path / folder).mkdir()
    size = (32, 24) if folder == "1024x768" else (16, 12)
    for name in rows["image_name"]:
        Image.new("RGB", size, (90, 120, 30)).save(tmp_path / folder / name, quality=90)

    table = load_dataset("koniq10k", tmp_path)
    assert table.resize == resize
    assert table.frame["name"].tolist() == [f"{folder}/{n}" for n in rows["image_name"]]
    assert table.frame["official_split"].tolist() == ["train", "val", "test"]
    np.testing.assert_allclose(table.frame["mos"], rows["MOS"])  # MOS_zscore of the scores file
    mean_rating = rows[["c1", "c2", "c3", "c4", "c5"]].to_numpy() @ np.arange(1, 6)
    np.testing.assert_allclose(table.frame["mos_1to5"], mean_rating)
    assert check_dataset(table) == []


def test_scores_file_alone_has_no_official_split(tmp_path: Path):
    _write_release(tmp_path, _tiny_rows(), with_sets=False, with_scores=True)
    table = load_dataset("koniq10k", tmp_path)
    assert table.frame["official_split"].tolist() == ["", "", ""]
    assert table.frame["mos"].tolist() == [80.5, 10.25, 50.0]


def test_files_that_disagree_are_refused(tmp_path: Path):
    rows = _tiny_rows()
    _write_release(tmp_path, rows, with_sets=True, with_scores=False)
    other = rows.copy()
    other.loc[0, "MOS"] = 12.0
    _write_release(tmp_path, other, with_sets=False, with_scores=True)
    with pytest.raises(IqabenchError, match="disagrees"):
        load_dataset("koniq10k", tmp_path)


def test_wrong_columns_name_the_file(tmp_path: Path):
    (tmp_path / SETS).write_text("image,score\n1.jpg,3\n")
    with pytest.raises(IqabenchError, match=f"{SETS}.*expected columns image_name, MOS, SD, set"):
        load_dataset("koniq10k", tmp_path)


def test_no_score_file(tmp_path: Path):
    with pytest.raises(IqabenchError, match="no score file"):
        load_dataset("koniq10k", tmp_path)
