"""The embedded synthetic set: deterministic, labelled as synthetic, content-aware, reused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import iqabench.data.synthetic as synthetic
from iqabench.data.splits import make_splits
from iqabench.data.synthetic import read_synthetic
from iqabench.errors import IqabenchError


@pytest.fixture
def two_references(monkeypatch):
    """One colour and one grey reference keep generation well under a second."""
    monkeypatch.setattr(synthetic, "COLOUR_REFERENCES", ("chelsea",))
    monkeypatch.setattr(synthetic, "GREY_REFERENCES", ("camera",))


@pytest.fixture
def one_reference(monkeypatch):
    monkeypatch.setattr(synthetic, "COLOUR_REFERENCES", ("chelsea",))
    monkeypatch.setattr(synthetic, "GREY_REFERENCES", ())


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generation_is_deterministic_given_the_seed(tmp_path: Path, one_reference):
    a = read_synthetic(tmp_path / "a")
    b = read_synthetic(tmp_path / "b")
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    assert a.frame.drop(columns="path").equals(b.frame.drop(columns="path"))
    other = read_synthetic(tmp_path / "c", seed=1)
    noisy = other.frame["group"] == "noise"
    assert not np.array_equal(other.frame.loc[noisy, "mos"], a.frame.loc[noisy, "mos"])  # seed drives noise
    assert np.array_equal(other.frame.loc[~noisy, "mos"], a.frame.loc[~noisy, "mos"])


def test_table_is_labelled_synthetic_and_graded(tmp_path: Path, two_references):
    table = read_synthetic(tmp_path / "s")
    frame = table.frame
    assert table.name == "synthetic" and table.mos_range == (0.0, 100.0)
    assert "synthetic" in table.label_note and "not human" in table.label_note
    meta = json.loads((tmp_path / "s" / "metadata.json").read_text())
    assert meta["human_opinions"] is False
    assert "not human opinions" in (tmp_path / "s" / "README.md").read_text()
    assert len(frame) == 31 + 26  # colour: ref + 6 types x 5 levels; grey: no saturation type
    assert set(frame["content_id"]) == {"chelsea", "camera"}
    assert set(frame["group"]) == {"reference", *synthetic.DISTORTIONS}
    assert (frame.loc[frame["group"] == "reference", "mos"] == 100).all()
    assert frame["mos"].between(0, 100).all() and (frame["official_split"] == "").all()
    for _, part in frame[frame["level"] > 0].groupby(["content_id", "group"]):
        assert (np.diff(part.sort_values("level")["mos"].to_numpy()) < 0).all()  # worse with level
    assert all(Path(p).is_file() for p in frame["path"])
    # content-aware splits keep a photograph's versions together
    split = make_splits(table, rounds=1, test_fraction=0.5, val_fraction=0.0)[0]
    refs = {side: {n.split("/")[1].split("_")[0].split(".")[0] for n in getattr(split, side)} for side in ("train", "test")}
    assert not refs["train"] & refs["test"]


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(48, 40, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, size=a.shape), 0, 255).astype(np.uint8)
    want = structural_similarity(a, b, channel_axis=-1, data_range=255)
    assert synthetic.ssim(a, b) == pytest.approx(want, abs=1e-5)


def test_default_root_is_generated_once_then_reused(tmp_path: Path, monkeypatch, two_references):
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "cache"))
    first = read_synthetic()
    assert first.root == tmp_path / "cache" / "synthetic" / "v1-seed0"
    stamp = (first.root / "scores.csv").stat().st_mtime_ns
    second = read_synthetic()
    assert (second.root / "scores.csv").stat().st_mtime_ns == stamp
    assert second.frame.equals(first.frame)


def test_foreign_or_mismatched_folders_are_refused(tmp_path: Path, two_references):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(IqabenchError, match="not empty"):
        read_synthetic(tmp_path / "busy")
    read_synthetic(tmp_path / "s", seed=3)
    assert read_synthetic(tmp_path / "s").extras["seed"] == 3  # no seed asked: take what is there
    with pytest.raises(IqabenchError, match="seed 3"):
        read_synthetic(tmp_path / "s", seed=0)


@pytest.mark.slow
def test_full_default_set(tmp_path: Path):
    table = read_synthetic(tmp_path / "full")
    frame = table.frame
    assert len(frame) == 352 and frame["content_id"].nunique() == 12
    assert frame.groupby("group").size().to_dict() == {
        "blur": 60, "contrast": 60, "jpeg": 60, "noise": 60, "pixelate": 60, "reference": 12, "saturation": 40
    }


def test_reading_the_synthetic_set_needs_no_torch():
    """``iqabench data check synthetic`` stays free of torch; skimage loads only to generate."""
    code = "import sys, iqabench.data.synthetic; print(sorted(m for m in ('torch', 'skimage') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
