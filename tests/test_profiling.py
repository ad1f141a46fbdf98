"""profiling: parameter and MAC counts, what fvcore leaves out, timing fields, writers."""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from iqabench import profiling
from iqabench.errors import IqabenchError
from iqabench.models.hyperiqa import build_model
from iqabench.profiling import (ProfileRow, count_macs, output_paths, profile_models, timed,
                                write_csv, write_markdown)

REQUIRED_COLUMNS = ["backbone", "hyper_input", "params_m", "gmacs", "gflops", "ms_per_patch",
                    "ms_per_image", "images_per_s", "device", "dtype", "batch_size"]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Profiling tests time forwards: one torch thread (see conftest)."""


def test_resnet50_params_and_gmacs_match_the_original():
    (row,) = profile_models(["resnet50"], repeats=0)  # counting only, no timing
    assert row.params == 27_375_369
    assert f"{row.params_m:.2f}" == "27.38"
    assert round(row.backbone_params_m * 1e6) == 23_508_032
    assert 4.11 <= row.gmacs <= 4.5  # ResNet-50 alone is 4.11 (fvcore); heads add a little
    assert row.gflops == pytest.approx(2 * row.gmacs)
    assert row.gmacs_per_image == pytest.approx(25 * row.gmacs)
    assert row.thop_gmacs == pytest.approx(row.gmacs, rel=0.05)  # the second counter agrees
    assert row.ms_per_patch is None and row.repeats == 0 and row.peak_mem_mb is None


def test_target_network_bmm_is_counted():
    model = build_model("test_resnet", input_size=64)
    counted = count_macs(model, torch.rand(1, 3, 64, 64))
    sizes = (model.config.target_in, *model.config.target_sizes, 1)  # 224..14 -> 1
    assert counted.by_operator["bmm"] == sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    assert "aten::bmm" not in counted.uncounted_calls


class _Attention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_fused_attention_is_counted():
    q, k, v = torch.rand(2, 3, 5, 8), torch.rand(2, 3, 7, 8), torch.rand(2, 3, 7, 4)
    counted = count_macs(_Attention(), (q, k, v))
    assert counted.macs == 2 * 3 * 5 * 7 * (8 + 4)  # QK^T (L*S*E) + attn V (L*S*Ev)
    assert counted.uncounted_calls == {}


class _Cumulative(nn.Module):
    """A linear layer fvcore counts, then an op it has no handle for."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 6)

    def forward(self, x):
        return torch.cumsum(self.fc(x), dim=1)


def test_an_op_fvcore_does_not_know_is_listed_not_dropped():
    counted = count_macs(_Cumulative(), torch.rand(4, 10))
    assert counted.macs == 4 * 10 * 6
    assert counted.uncounted_calls == {"aten::cumsum": 1}
    assert counted.uncounted_elems == {"aten::cumsum": 4 * 6}
    assert "aten::cumsum x1" in counted.describe_uncounted()


def test_uncounted_ops_reach_the_written_files(tmp_path):
    rows = profile_models(["test_resnet"], input_size=64, repeats=0)
    # the target network's sigmoids and the backbone's ReLUs are not MACs
    assert "aten::sigmoid x4" in rows[0].uncounted_ops
    assert "aten::relu" in rows[0].uncounted_ops and rows[0].uncounted_melems > 0
    csv = pd.read_csv(write_csv(rows, tmp_path / "p.csv"))
    assert "aten::sigmoid x4" in csv.loc[0, "uncounted_ops"]
    assert "aten::sigmoid x4" in write_markdown(rows, tmp_path / "p.md").read_text()


def test_timing_fields_are_consistent():
    rows = profile_models(["test_resnet", "test_convnext"], hyper_inputs=("last", "multiscale"),
                          input_size=64, batch_size=2, n_crops=5, repeats=3, warmup=1,
                          count_thop=False)
    assert [(r.backbone, r.hyper_input) for r in rows] == [
        ("test_resnet", "last"), ("test_resnet", "multiscale"),
        ("test_convnext", "last"), ("test_convnext", "multiscale")]
    assert rows[1].params > rows[0].params  # the multiscale hyper input widens one conv
    for row in rows:
        assert row.repeats == 3 and row.warmup == 1 and row.ms_per_patch > 0
        assert row.ms_per_image == pytest.approx(5 * row.ms_per_patch)
        assert row.images_per_s == pytest.approx(1000 / row.ms_per_image)
        assert row.peak_mem_mb is not None and row.peak_mem_mb >= 0
        assert row.device == "cpu" and row.device_name and row.torch == torch.__version__


def test_bf16_autocast_runs_on_cpu():
    (row,) = profile_models(["test_convnext"], input_size=64, dtype="bf16", repeats=1,
                            warmup=0, count_thop=False)
    assert row.dtype == "bf16" and row.ms_per_patch > 0 and row.thop_gmacs is None


def test_adaptive_repeats_stay_within_bounds():
    (row,) = profile_models(["test_resnet"], input_size=64, budget_s=0.0, count_thop=False)
    assert row.repeats == 3  # the minimum when the time budget is already spent


def test_threads_apply_to_the_run_only():
    (row,) = profile_models(["test_resnet"], input_size=64, repeats=0, threads=2,
                            count_thop=False)
    assert row.threads == 2 and torch.get_num_threads() == 1


def test_cuda_unavailable_is_a_one_line_user_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(IqabenchError, match="CUDA is not available") as err:
        profile_models(["test_resnet"], device="cuda")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(backbones=["resnet5O"]), "unknown timm backbone"),
    (dict(backbones=["test_resnet"], hyper_inputs=("first",)), "--hyper-input"),
    (dict(backbones=["test_resnet"], batch_size=0), "--eval-batch-size 0"),
    (dict(backbones=["test_resnet"], dtype="fp8"), "dtype 'fp8'"),
    (dict(backbones=["test_resnet"], device="tpu"), "--device"),
    (dict(backbones=[]), "no backbone"),
    (dict(backbones=["test_resnet"], threads=0), "--threads 0"),
])
def test_bad_arguments_fail_before_any_work(kwargs, message):
    with pytest.raises(IqabenchError, match=message):
        profile_models(**kwargs)


def test_output_paths_refuse_to_overwrite(tmp_path):
    csv_path, md_path = output_paths(tmp_path / "out")
    csv_path.write_text("x")
    with pytest.raises(IqabenchError, match="--force"):
        output_paths(tmp_path / "out")
    assert output_paths(tmp_path / "out", force=True) == (csv_path, md_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(IqabenchError, match="not a directory"):
        output_paths(tmp_path / "file")


def _row(**changes) -> ProfileRow:
    values = dict(backbone="b", hyper_input="last", params_m=1.234567, gmacs=0.5, gflops=1.0,
                  ms_per_patch=None, ms_per_image=None, images_per_s=None, device="cpu",
                  dtype="fp32", batch_size=1, params=1_234_567, backbone_params_m=1.0,
                  gmacs_per_image=12.5, thop_gmacs=0.49, uncounted_ops="", uncounted_melems=0.0,
                  peak_mem_mb=None, input_size=224, n_crops=25, repeats=0, warmup=0, threads=1,
                  torch=torch.__version__, device_name="cpu model", notes="")
    return ProfileRow(**{**values, **changes})


def test_writers_keep_columns_units_and_provenance(tmp_path):
    rows = [_row(), _row(backbone="c", ms_per_patch=2.0, ms_per_image=50.0, images_per_s=20.0)]
    frame = pd.read_csv(write_csv(rows, tmp_path / "profile.csv"))
    assert list(frame.columns[:len(REQUIRED_COLUMNS)]) == REQUIRED_COLUMNS
    assert frame.loc[0, "params_m"] == 1.23 and math.isnan(frame.loc[0, "ms_per_patch"])
    text = write_markdown(rows, tmp_path / "profile.md", command="iqabench profile --x").read_text()
    assert "- command: `iqabench profile --x`" in text
    assert "- date: " in text and "- git commit: " in text and "- machine: " in text
    assert "MACs" in text and "`gflops` = 2 x `gmacs`" in text and "random" in text
    header = next(line for line in text.splitlines() if line.startswith("| backbone"))
    assert [c.strip() for c in header.strip("|").split("|")][:len(REQUIRED_COLUMNS)] \
        == REQUIRED_COLUMNS


def test_timed_measures_the_block_and_its_peak_memory():
    with timed(torch.device("cpu")) as timing:
        assert math.isnan(timing.seconds)  # filled in when the block ends
        time.sleep(0.05)
    assert 0.05 <= timing.seconds < 1.0 and timing.peak_mb is None
    with timed(torch.device("cpu"), peak_memory=True) as timing:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del block
    assert timing.peak_mb is not None and timing.peak_mb >= 32  # the 64 MiB block shows


def test_device_defaults_to_auto(monkeypatch):
    """Like train and eval: the GPU when torch sees one (faked here; counting only, so
    nothing runs on it), else the CPU."""
    monkeypatch.setattr(profiling, "device_name", lambda device: "a GPU")
    for available, expected in ((True, "cuda"), (False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        (row,) = profile_models(["test_resnet"], input_size=64, repeats=0, count_thop=False)
        assert row.device == expected
