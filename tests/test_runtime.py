"""Runtime: one device resolution for every command, AMP dtypes, backend switches
restored, compilation, process context, RNG state round trip."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from iqabench import runtime
from iqabench.errors import IqabenchError
from iqabench.evaluation import predict
from iqabench.runtime import (
    DistContext,
    autocast,
    backend_flags,
    compile_for_inference,
    init_distributed,
    is_compiled,
    resolve_amp,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
)

SIZE = 32


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def images(tiny_images):
    return tiny_images


def test_resolve_device_accepts_auto_cpu_and_checks_cuda(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(IqabenchError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(IqabenchError, match="use auto, cpu or cuda"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(IqabenchError, match="only 1 CUDA"):
        resolve_device("cuda:1")


def test_resolve_amp():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_amp("auto", cpu) is None and resolve_amp("auto", cuda) is torch.bfloat16
    assert resolve_amp("none", cuda) is None and resolve_amp("bf16", cpu) is torch.bfloat16
    assert resolve_amp("fp16", cuda) is torch.float16
    with pytest.raises(IqabenchError, match="fp16 needs CUDA"):
        resolve_amp("fp16", cpu)
    with pytest.raises(IqabenchError, match="use auto"):
        resolve_amp("fp8", cpu)


def test_autocast_runs_matmuls_in_the_dtype_and_none_is_a_no_op():
    a = torch.ones(2, 2)
    with autocast(torch.device("cpu"), torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), None):
        assert (a @ a).dtype == torch.float32


def test_backend_flags_are_restored():
    before = torch.are_deterministic_algorithms_enabled()
    with backend_flags(torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before


def test_single_process_context(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    ctx = init_distributed("cpu")
    assert ctx == DistContext() and ctx.main and not ctx.active
    ctx.barrier()  # no process group: a no-op
    ctx.close()
    assert ctx.device(torch.device("cuda")) == torch.device("cuda")
    assert DistContext(1, 2, 1).device(torch.device("cuda")) == torch.device("cuda", 1)
    assert not DistContext(1, 2, 1).main


def test_one_process_torchrun_joins_a_process_group(monkeypatch):
    """`torchrun --nproc_per_node 1` (one GPU) must still train under DDP and record the
    backend, so the DDP path is what a single-GPU torchrun job runs."""
    import socket

    import torch.distributed as dist

    from iqabench.tracking import environment

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(key, value)
    ctx = init_distributed("cpu")
    try:
        assert ctx.launched and ctx.active and ctx.world_size == 1 and ctx.main
        assert dist.is_initialized() and dist.get_backend() == "gloo"
        assert environment("cpu", ctx.world_size)["dist_backend"] == "gloo"
        ctx.barrier()
    finally:
        ctx.close()
    assert not dist.is_initialized()
    assert environment("cpu")["dist_backend"] is None


def test_rng_state_round_trips_through_a_checkpoint_file(tmp_path):
    seed_everything(5)
    torch.save(rng_state(), tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(2).tolist())
    seed_everything(6)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(2).tolist()) == expected


@pytest.mark.slow  # TorchInductor compiles for ~30 s on a small CPU
def test_compile_for_inference_scores_like_eager(model, images):
    import shutil

    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        pytest.skip("no C++ compiler for TorchInductor on CPU")
    names = sorted(images)
    eager = predict(model, images, names, "grid", 4, SIZE, batch_size=8)
    compiled = compile_for_inference(model)
    assert is_compiled(compiled) and not is_compiled(model)
    got = predict(compiled, images, names, "grid", 4, SIZE, batch_size=8)
    np.testing.assert_allclose(got, eager, atol=1e-4)


def test_compile_without_a_compiler_is_one_clear_error(model, monkeypatch):
    monkeypatch.setattr(runtime.shutil, "which", lambda name: None)
    with pytest.raises(IqabenchError, match="C\\+\\+ compiler"):
        compile_for_inference(model)
