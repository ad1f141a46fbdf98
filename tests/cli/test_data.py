"""`iqabench data check` / `data list` through the CLI, on a reduced AGIQA-3K copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from iqabench.cli.app import app
from iqabench.data import DATASETS
from iqabench.errors import IqabenchError

runner = CliRunner()


@pytest.fixture
def agiqa_copy(shared_data: Path, tmp_path: Path) -> Path:
    """Eight genuine AGIQA-3K images with a data.csv for just those."""
    source = shared_data / "agiqa3k"
    if not (source / "data.csv").is_file():
        pytest.skip(f"{source / 'data.csv'} not present")
    rows = pd.read_csv(source / "data.csv").iloc[::373].head(8)
    root = tmp_path / "agiqa3k"
    (root / "images").mkdir(parents=True)
    rows.to_csv(root / "data.csv", index=False)
    for name in rows["name"]:
        shutil.copy(source / "images" / name, root / "images")
    return root


def test_check_passes_on_clean_copy(agiqa_copy: Path):
    result = runner.invoke(app, ["data", "check", "agiqa3k", str(agiqa_copy)])
    assert result.exit_code == 0, result.output
    prompts = pd.read_csv(agiqa_copy / "data.csv")["prompt"].nunique()
    assert f"agiqa3k: 8 images, {prompts} content ids" in result.output
    assert "512x512 x8" in result.output and "no problems found" in result.output


def test_check_names_truncated_and_missing_files(agiqa_copy: Path):
    names = pd.read_csv(agiqa_copy / "data.csv")["name"].tolist()
    truncated, deleted = agiqa_copy / "images" / names[1], agiqa_copy / "images" / names[5]
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    deleted.unlink()

    result = runner.invoke(app, ["data", "check", "agiqa3k", str(agiqa_copy)])
    assert result.exit_code != 0
    assert "2 problems" in result.output
    lines = result.output.splitlines()
    assert any("truncated" in line and str(truncated) in line for line in lines)
    assert any("missing" in line and str(deleted) in line for line in lines)


def test_check_csv_with_mos_range(tmp_path: Path):
    Image.new("RGB", (20, 10)).save(tmp_path / "a.png")
    (tmp_path / "s.csv").write_text("path,mos\na.png,12\n")
    result = runner.invoke(app, ["data", "check", "csv", str(tmp_path / "s.csv"), "--mos-range", "0", "10"])
    assert result.exit_code == 1
    assert "out-of-range" in result.output and "a.png" in result.output


def test_unknown_dataset_is_a_user_error():
    result = runner.invoke(app, ["data", "check", "agiqa", "/tmp"])
    assert isinstance(result.exception, IqabenchError)
    assert "did you mean 'agiqa3k'" in str(result.exception)


def test_list_names_every_dataset():
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.splitlines() if line.strip()}
    assert listed == set(DATASETS)
