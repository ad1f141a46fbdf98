"""check_dataset / skip_bad on tables made here: every fault found, named, and skippable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

from iqabench.data.check import check_dataset, format_report, scan_dataset, skip_bad, write_problems
from iqabench.data.table import COLUMNS, DatasetTable


def _table(root: Path, rows: list[tuple[str, float]], mos_range=(0.0, 5.0)) -> DatasetTable:
    frame = pd.DataFrame(
        {
            "name": [n for n, _ in rows],
            "path": [str(root / n) for n, _ in rows],
            "mos": [m for _, m in rows],
            "mos_std": np.nan,
            "content_id": [n for n, _ in rows],
            "official_split": "",
        },
        columns=list(COLUMNS),
    )
    return DatasetTable("toy", root, frame, mos_range)


@pytest.fixture
def toy(tmp_path: Path) -> DatasetTable:
    rng = np.random.default_rng(0)
    for i, size in enumerate([(64, 48), (64, 48), (48, 64), (30, 20), (64, 48), (64, 48)]):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.jpg", quality=95)
    data = (tmp_path / "4.jpg").read_bytes()
    (tmp_path / "4.jpg").write_bytes(data[: len(data) // 2])  # truncated
    (tmp_path / "5.jpg").write_bytes(b"not an image at all")  # unreadable
    rows = [("0.jpg", 1.0), ("1.jpg", float("nan")), ("2.jpg", 7.5), ("3.jpg", 2.0), ("4.jpg", 3.0),
            ("5.jpg", 3.0), ("missing.jpg", 2.0), ("3.jpg", 2.5)]  # fmt: skip
    return _table(tmp_path, rows)


def test_every_fault_is_found_with_its_file(toy: DatasetTable, tmp_path: Path):
    problems = check_dataset(toy, workers=2)
    found = {(Path(p.file).name, p.kind) for p in problems}
    assert found == {
        ("1.jpg", "bad-score"),
        ("2.jpg", "out-of-range"),
        ("3.jpg", "duplicate"),
        ("4.jpg", "truncated"),
        ("5.jpg", "unreadable"),
        ("missing.jpg", "missing"),
    }
    assert all(p.file.startswith(str(tmp_path)) for p in problems)


def test_report_summarises_sizes_and_lists_problems(toy: DatasetTable):
    report = scan_dataset(toy)
    assert report.n_images == 8
    assert (report.mos_min, report.mos_max) == (1.0, 7.5)
    # the truncated JPEG's header is readable, so its size counts too
    assert report.sizes == {(64, 48): 3, (48, 64): 1, (30, 20): 2}
    text = format_report(report)
    assert "3 distinct sizes" in text and "width 30..64" in text
    for name in ("1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg", "missing.jpg"):
        assert name in text


def test_clean_table_has_no_problems(toy: DatasetTable):
    clean = toy.frame[toy.frame["name"].isin(["0.jpg"])]
    report = scan_dataset(DatasetTable("toy", toy.root, clean, toy.mos_range))
    assert report.problems == [] and "no problems found" in format_report(report)


def test_truncation_is_not_hidden_by_the_global_switch(toy: DatasetTable, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    problems = check_dataset(DatasetTable("toy", toy.root, toy.frame.iloc[[4]], toy.mos_range))
    assert len(problems) == 1 and problems[0].kind == "unreadable" and "LOAD_TRUNCATED_IMAGES" in problems[0].detail


def test_skip_bad_drops_exactly_the_rows_at_fault(toy: DatasetTable, tmp_path: Path):
    problems = check_dataset(toy)
    kept, skipped = skip_bad(toy, problems)
    assert kept.frame["name"].tolist() == ["0.jpg"]
    assert kept.extras["skipped"] == 7 and len(toy) == 8  # the input table is untouched
    assert {Path(p.file).name for p in skipped} == {"1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg", "missing.jpg"}
    assert check_dataset(kept) == []
    write_problems(skipped, tmp_path / "skipped.csv")
    written = pd.read_csv(tmp_path / "skipped.csv")
    assert list(written.columns) == ["file", "kind", "detail"] and len(written) == len(skipped)
