"""benchmarks.predict_speed on 4 synthetic images: one row per (crops, mode), images/s
through the predict code path, a README with the command and provenance."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iqabench.errors import IqabenchError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_scoring import write_checkpoint  # noqa: E402  (tests/test_scoring.py)


@pytest.fixture(scope="module")
def speed(import_benchmark):
    return import_benchmark("predict_speed")


def test_predict_speed_on_four_synthetic_images(speed, tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            tmp_path / "imgs" / f"{i}.png")
    write_checkpoint(tmp_path / "tiny.pt")
    argv = ["--images", str(tmp_path / "imgs"), "--n", "4", "--checkpoint",
            str(tmp_path / "tiny.pt"), "--eval-crops", "1", "4", "--eval-batch-size", "4",
            "--modes", "fp32", "bf16", "--out", str(tmp_path / "out")]
    out = speed.main(argv)
    table = pd.read_csv(out / "results.csv")
    assert table[["eval_crops", "mode"]].values.tolist() == [[1, "fp32"], [1, "bf16"],
                                                             [4, "fp32"], [4, "bf16"]]
    assert (table["n"] == 4).all() and (table["images_per_s"] > 0).all()
    text = (out / "README.md").read_text()
    assert "python -m benchmarks.predict_speed --images" in text and "commit:" in text
    assert "| fp32 " in text and "$" not in text
    with pytest.raises(IqabenchError, match="--force"):
        speed.main(argv)
    with pytest.raises(IqabenchError, match="4 image"):
        speed.main([*argv[:2], "--n", "5", "--out", str(tmp_path / "other")])
