"""benchmarks.train_eval_speed on a few synthetic images: both sides run, the CSV holds
positive rates with the reference as the unit of the ratios."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from iqabench.errors import IqabenchError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speed(import_benchmark):
    return import_benchmark("train_eval_speed")


def test_speed_benchmark_writes_positive_rates(speed, tmp_path):
    out = tmp_path / "speed"
    argv = ["--dataset", "synthetic", "--images", "4", "--eval-images", "2", "--models", "test_resnet",
            "--input-size", "32", "--crops", "4", "--batch-size", "6", "--eval-batch-size", "3",
            "--threads", "1", "--out", str(out)]
    if any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        argv.append("--compile-eval")  # 8 crops in batches of 3: the last batch is padded
    threads = torch.get_num_threads()
    assert speed.main(argv) == out
    assert torch.get_num_threads() == threads  # --threads is undone on return

    with open(out / "speed.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == speed.COLUMNS
        rows = list(reader)
    assert [(r["phase"], r["side"]) for r in rows] == [
        ("train", "reference"), ("train", "iqabench"), ("eval", "reference"), ("eval", "iqabench")]
    for r in rows:
        assert r["model"] == "test_resnet" and r["device"] == "cpu"
        for column in ("seconds", "per_s", "patches_per_s", "per_s_with_setup", "ratio"):
            assert float(r[column]) > 0, (column, r)
    train_ref, train_ours, eval_ref, eval_ours = rows
    # 4 images x 4 crops = 16 patches per epoch in batches of 6 (6, 6, 4) on both sides
    assert train_ref["patches"] == train_ours["patches"] == "16"
    assert train_ref["batch_size"] == train_ours["batch_size"] == "6"
    assert eval_ref["patches"] == eval_ours["patches"] == "8" and eval_ref["batch_size"] == "1"
    assert float(train_ref["ratio"]) == float(eval_ref["ratio"]) == 1.0
    assert eval_ref["unit"] == "images/s"
    assert float(eval_ours["patches_per_s"]) == pytest.approx(4 * float(eval_ours["per_s"]), rel=1e-2)
    # iqabench decodes once, apart; the reference decodes inside its loader
    assert float(train_ours["decode_s"]) > 0 and train_ref["decode_s"] == ""
    assert float(train_ref["loader_wait_s"]) > 0
    if "--compile-eval" in argv:  # compile time is reported apart and charged in with_setup
        assert float(eval_ours["compile_s"]) > 0 and train_ours["compile_s"] == "0.0"
        assert float(eval_ours["per_s_with_setup"]) < float(eval_ours["per_s"])
    readme = (out / "README.md").read_text()
    assert "python -m benchmarks.train_eval_speed --dataset synthetic" in readme
    assert re.search(r"\| test_resnet +\| train \(patches/s\) +\|", readme) and "torch" in readme
    assert "$" not in readme  # every template field was filled in

    with pytest.raises(IqabenchError, match="--force"):
        speed.main(argv)


def test_speed_benchmark_rejects_bad_flags(speed):
    with pytest.raises(IqabenchError, match="square"):
        speed.parse_args(["--crops", "5"])
    with pytest.raises(IqabenchError, match="--eval-images"):
        speed.parse_args(["--eval-images", "0"])


def test_speed_benchmark_runs_as_a_script_too():
    """`python benchmarks/train_eval_speed.py` finds its package without `-m`."""
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "train_eval_speed.py"),
                           "--crops", "5"], cwd=REPO / "tests", capture_output=True, text=True)
    assert done.returncode == 1 and "square" in done.stderr
