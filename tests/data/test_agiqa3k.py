"""AGIQA-3K: the genuine data.csv and images (prompt = content, generator = group)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iqabench.data import load_dataset
from iqabench.data.agiqa3k import generator
from iqabench.data.check import check_dataset
from iqabench.errors import IqabenchError


@pytest.fixture
def agiqa_root(shared_data: Path) -> Path:
    root = shared_data / "agiqa3k"
    if not (root / "data.csv").is_file():
        pytest.skip(f"{root / 'data.csv'} not present")
    return root


def test_genuine_scores(agiqa_root: Path):
    table = load_dataset("agiqa3k", agiqa_root)
    raw = pd.read_csv(agiqa_root / "data.csv")
    frame = table.frame
    assert len(frame) == 2982 and frame["name"].is_unique
    assert frame["content_id"].nunique() == 300
    np.testing.assert_allclose(frame["mos"], raw["mos_quality"])  # quality, not alignment
    np.testing.assert_allclose(frame["mos_std"], raw["std_quality"])
    assert set(frame["group"]) == {"AttnGAN", "DALLE2", "glide", "midjourney", "sd1.5", "xl2.2"}
    assert frame["mos"].between(*table.mos_range).all()
    assert frame["official_split"].eq("").all() and table.resize is None


def test_fixture_copy_of_a_few_images(agiqa_root: Path, tmp_path: Path):
    raw = pd.read_csv(agiqa_root / "data.csv")
    few = raw.groupby(raw["name"].map(generator)).head(1)  # one image per generator
    few.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "images").mkdir()
    for name in few["name"]:
        shutil.copy(agiqa_root / "images" / name, tmp_path / "images")
    table = load_dataset("agiqa3k", tmp_path)
    assert len(table) == 6 and table.frame["group"].nunique() == 6
    assert check_dataset(table) == []


def test_generator_from_name():
    assert generator("sd1.5_lowstep_267.jpg") == "sd1.5"
    assert generator("midjourney_normal_100.jpg") == "midjourney"
    assert generator("xl2.2_normal_054.jpg") == "xl2.2"


def test_wrong_columns_name_the_file(tmp_path: Path):
    (tmp_path / "data.csv").write_text("name,prompt,mos_align\na.jpg,cat,3.0\n")
    with pytest.raises(IqabenchError, match=r"data.csv: expected columns name, prompt, mos_quality, std_quality"):
        load_dataset("agiqa3k", tmp_path)
