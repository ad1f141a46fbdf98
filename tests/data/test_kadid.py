"""KADID-10k: dmos.csv as released ('dmos' is already higher = better)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iqabench.data import load_dataset
from iqabench.data.check import check_dataset
from iqabench.errors import IqabenchError


def test_fixture_release(tmp_path: Path):
    (tmp_path / "dmos.csv").write_text(
        "dist_img,ref_img,dmos,var\n"
        "I01_01_01.png,I01.png,4.57,0.496\n"
        "I01_01_02.png,I01.png,4.33,0.869\n"
        "I02_17_05.png,I02.png,1.2,0.16\n"
    )
    (tmp_path / "images").mkdir()
    for name in ("I01_01_01.png", "I01_01_02.png", "I02_17_05.png", "I01.png", "I02.png"):
        Image.new("RGB", (16, 12), (9, 9, 9)).save(tmp_path / "images" / name)

    table = load_dataset("kadid10k", tmp_path)
    assert table.frame["name"].tolist() == ["images/I01_01_01.png", "images/I01_01_02.png", "images/I02_17_05.png"]
    assert table.frame["mos"].tolist() == [4.57, 4.33, 1.2]  # not flipped
    np.testing.assert_allclose(table.frame["mos_std"], np.sqrt([0.496, 0.869, 0.16]))
    assert table.frame["content_id"].tolist() == ["I01.png", "I01.png", "I02.png"]
    assert table.frame["distortion"].tolist() == ["01", "01", "17"]
    assert table.mos_range == (1.0, 5.0)
    assert check_dataset(table) == []


def test_wrong_columns_name_the_file_and_columns(tmp_path: Path):
    (tmp_path / "dmos.csv").write_text("name\tdmos\nI01_01_01.png\t4.5\n")
    with pytest.raises(IqabenchError, match=r"dmos.csv: expected columns dist_img, ref_img, dmos, var"):
        load_dataset("kadid10k", tmp_path)
