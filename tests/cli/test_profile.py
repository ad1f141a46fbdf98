"""`iqabench profile` wiring: files, refusal to overwrite, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from iqabench.cli.app import app
from iqabench.errors import IqabenchError

runner = CliRunner()
SMALL = ["profile", "--backbone", "test_resnet", "--backbone", "test_convnext",
         "--input-size", "64", "--repeats", "2", "--warmup", "1"]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Profiling tests time forwards: one torch thread (see conftest)."""


def test_profile_writes_csv_and_markdown(tmp_path):
    out = tmp_path / "prof"
    result = runner.invoke(app, [*SMALL, "--eval-batch-size", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "profile.csv")
    assert list(frame["backbone"]) == ["test_resnet", "test_convnext"]
    assert (frame["batch_size"] == 2).all() and (frame["ms_per_patch"] > 0).all()
    text = (out / "profile.md").read_text()
    assert "iqabench profile --backbone test_resnet --backbone test_convnext" in text
    assert "--eval-batch-size 2" in text and "| test_convnext" in text
    assert "test_resnet" in result.output and "uncounted by fvcore" in result.output


def test_profile_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "prof"
    args = ["profile", "--backbone", "test_resnet", "--input-size", "64", "--repeats", "0",
            "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    before = (out / "profile.csv").read_text()
    refused = runner.invoke(app, args)
    assert refused.exit_code != 0 and isinstance(refused.exception, IqabenchError)
    assert "--force" in str(refused.exception)
    assert (out / "profile.csv").read_text() == before
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_amp_sets_the_autocast_dtype_and_device_defaults_to_auto(tmp_path):
    out = tmp_path / "prof"
    result = runner.invoke(app, ["profile", "--backbone", "test_resnet", "--input-size", "64",
                                 "--repeats", "0", "--amp", "bf16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "profile.csv")
    expected_device = "cuda" if torch.cuda.is_available() else "cpu"
    assert list(frame["dtype"]) == ["bf16"] and frame["device"].str.startswith(expected_device).all()
    assert (frame["n_crops"] == 9).all()  # --eval-crops defaults as in train
    text = (out / "profile.md").read_text()
    assert "--amp bf16" in text and "--eval-crops 9" in text


def test_profile_rejects_an_unknown_amp():
    result = runner.invoke(app, ["profile", "--backbone", "test_resnet", "--amp", "fp8"])
    assert result.exit_code == 2  # a usage error listing the choices


def test_cuda_without_cuda_is_one_line_and_exit_1(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = runner.invoke(app, ["profile", "--backbone", "test_resnet", "--device", "cuda"])
    assert isinstance(result.exception, IqabenchError)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "iqabench.cli.app", "profile", "--backbone",
                           "test_resnet", "--device", "cuda"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: ") and "CUDA" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
