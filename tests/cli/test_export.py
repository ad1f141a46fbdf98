"""`iqabench export`: a .safetensors file that predict, load_scorer and eval take in place
of the checkpoint, with the same scores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from iqabench.cli.app import app
from iqabench.config import EvalConfig
from iqabench.errors import IqabenchError
from iqabench.evaluation import evaluate_checkpoint
from iqabench.scoring import load_scorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_scoring import write_checkpoint  # noqa: E402  (tests/test_scoring.py)

runner = CliRunner()


def test_export_then_predict_load_scorer_and_eval(tmp_path):
    ckpt = tmp_path / "best.pt"
    write_checkpoint(ckpt, label_range=(0.0, 5.0))
    result = runner.invoke(app, ["export", str(ckpt)])
    assert result.exit_code == 0, result.output
    exported = tmp_path / "best.safetensors"  # default: beside the checkpoint
    assert exported.is_file() and "wrote" in result.output
    again = runner.invoke(app, ["export", str(ckpt), "--out", str(exported)])
    assert isinstance(again.exception, IqabenchError) and "--force" in str(again.exception)
    assert runner.invoke(app, ["export", str(ckpt), "--out", str(exported), "--force"]).exit_code == 0

    rng = np.random.default_rng(2)
    rows = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append({"path": f"{i}.png", "mos": float(i) * 5 / 3})
    pd.DataFrame(rows).to_csv(tmp_path / "scores.csv", index=False)
    paths = [str(tmp_path / f"{i}.png") for i in range(4)]
    np.testing.assert_array_equal(load_scorer(exported, device="cpu")(paths),
                                  load_scorer(ckpt, device="cpu")(paths))
    predicted = runner.invoke(app, ["predict", *paths, "--checkpoint", str(exported), "--out",
                                    str(tmp_path / "p.csv")])
    assert predicted.exit_code == 0, predicted.output
    evaluated = [evaluate_checkpoint(EvalConfig(checkpoint=str(c), dataset="csv", n_boot=0,
                                                root=str(tmp_path / "scores.csv"), device="cpu"))
                 for c in (ckpt, exported)]
    assert evaluated[0].metrics["srcc"] == evaluated[1].metrics["srcc"]
    by_name = evaluated[1].predictions.set_index("name")["pred"]
    scores = pd.read_csv(tmp_path / "p.csv")
    assert scores["score"].to_numpy() == pytest.approx([by_name[f"{i}.png"] for i in range(4)],
                                                       abs=1e-6)
