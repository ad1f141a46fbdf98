"""LIVE Challenge: .mat files in the release's layout, first 7 entries left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from iqabench.data import load_dataset
from iqabench.data.check import check_dataset
from iqabench.errors import IqabenchError


def _cell(strings: list[str]) -> np.ndarray:
    """A MATLAB Nx1 cell array of strings, as savemat writes it."""
    cell = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        cell[i, 0] = s
    return cell


def _write_release(root: Path, names: list[str], mos: np.ndarray, std: np.ndarray | None) -> None:
    data = root / "Data"
    data.mkdir(parents=True)
    scipy.io.savemat(data / "AllImages_release.mat", {"AllImages_release": _cell(names)})
    scipy.io.savemat(data / "AllMOS_release.mat", {"AllMOS_release": mos.reshape(1, -1)})
    if std is not None:
        scipy.io.savemat(data / "AllStdDev_release.mat", {"AllStdDev_release": std.reshape(1, -1)})


def test_fixture_release(tmp_path: Path):
    names = [f"t{i}.bmp" for i in range(1, 8)] + ["3.bmp", "100.JPG", "1001.JPG"]
    mos = np.array([50.0] * 7 + [63.9, 25.5, 81.2])
    std = np.array([10.0] * 7 + [18.1, 20.2, 12.3])
    _write_release(tmp_path, names, mos, std)
    (tmp_path / "Images" / "trainingImages").mkdir(parents=True)
    for name in names[7:]:
        Image.new("RGB", (20, 20), (200, 10, 10)).save(tmp_path / "Images" / name)

    table = load_dataset("livec", tmp_path)
    assert table.frame["name"].tolist() == ["Images/3.bmp", "Images/100.JPG", "Images/1001.JPG"]
    np.testing.assert_allclose(table.frame["mos"], mos[7:])
    np.testing.assert_allclose(table.frame["mos_std"], std[7:])
    assert table.frame["content_id"].tolist() == table.frame["name"].tolist()
    assert table.mos_range == (0.0, 100.0) and table.resize is None
    assert check_dataset(table) == []


def test_std_file_is_optional(tmp_path: Path):
    _write_release(tmp_path, [f"{i}.bmp" for i in range(9)], np.linspace(10, 90, 9), None)
    table = load_dataset("livec", tmp_path)
    assert len(table) == 2 and table.frame["mos_std"].isna().all()


def test_counts_must_agree(tmp_path: Path):
    _write_release(tmp_path, [f"{i}.bmp" for i in range(9)], np.linspace(10, 90, 8), None)
    with pytest.raises(IqabenchError, match="lists 9 images but there are 8"):
        load_dataset("livec", tmp_path)


def test_wrong_variable_names_the_file(tmp_path: Path):
    _write_release(tmp_path, [f"{i}.bmp" for i in range(9)], np.linspace(10, 90, 9), None)
    scipy.io.savemat(tmp_path / "Data" / "AllMOS_release.mat", {"mos": np.ones((1, 9))})
    with pytest.raises(IqabenchError, match="AllMOS_release.mat: expected variable 'AllMOS_release'"):
        load_dataset("livec", tmp_path)
