"""Where and how torch runs: device, mixed precision, backend switches, compilation,
the torchrun process group, seeds and RNG state.

Training, evaluation, profiling and the benchmarks resolve these settings here, so a
setting such as ``device="auto"`` means the same thing in every command.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from iqabench.errors import IqabenchError

# ------------------------------------------------------------------------ devices


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (cuda when torch sees one, else cpu), ``cpu`` or ``cuda[:N]``, checked
    against what this machine has; anything else is a user error."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not re.fullmatch(r"cuda(:\d+)?", name):
        raise IqabenchError(f"--device {name!r}: use auto, cpu or cuda")
    if not torch.cuda.is_available():
        raise IqabenchError(f"--device {name}: CUDA is not available on this machine "
                            f"(torch {torch.__version__}); use --device cpu or auto")
    device = torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise IqabenchError(f"--device {name}: only {torch.cuda.device_count()} CUDA "
                            "device(s) here")
    return device


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``--amp``: ``auto`` -> bf16 on CUDA, none on CPU; ``none``;
    ``bf16``; ``fp16`` (CUDA only)."""
    if mode == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if mode == "none":
        return None
    if mode == "fp16" and device.type != "cuda":
        raise IqabenchError("--amp fp16 needs CUDA; on CPU use --amp bf16 or none")
    if mode not in ("bf16", "fp16"):
        raise IqabenchError(f"--amp {mode!r}: use auto, none, bf16 or fp16")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``; a no-op context for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


# ---------------------------------------------------------------- backend switches


def set_backend_flags(device: torch.device) -> Callable[[], None]:
    """Set torch's global switches for a run; returns the function that restores them.

    CPU: deterministic kernels (so a resumed run reproduces an uninterrupted one).
    CUDA: cuDNN autotuning and TF32 matmuls. The autotuning costs 11-36 s per new batch shape
    in a fresh process on an H200 (Lite0, ResNet-50, bf16) for no steady gain at batch 32;
    it stays on until larger batches and the compiled paths are measured without it.
    """
    saved = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    def restore() -> None:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = saved[2:]

    return restore


@contextlib.contextmanager
def backend_flags(device: torch.device) -> Iterator[None]:
    """:func:`set_backend_flags` for the duration of a ``with`` block."""
    restore = set_backend_flags(device)
    try:
        yield
    finally:
        restore()


# --------------------------------------------------------------------- compilation


def compile_for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """The eval-mode model compiled by TorchInductor with its weights frozen as constants.

    Only for scoring a fixed checkpoint: freezing bakes the current weights into the
    graph, so a model that is still training must not go through here. Compilation
    happens on the first call (tens of seconds for ResNet-50 on a small CPU) and needs a
    C++ compiler on CPU.
    """
    device = next(model.parameters()).device
    if device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise IqabenchError("--compile on CPU needs a C++ compiler (g++ or clang++) on PATH; "
                            "install one or drop --compile")
    model.eval()
    return torch.compile(model, dynamic=False, options={"freezing": True})


def is_compiled(model: torch.nn.Module) -> bool:
    """Whether ``model`` is a ``torch.compile`` wrapper."""
    return hasattr(model, "_orig_mod")


# ------------------------------------------------------------------- processes


@dataclass(frozen=True)
class DistContext:
    """This process's place in a torchrun job (rank 0 of 1 without one). ``launched``:
    started by torchrun, so a process group was joined, even with one process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launched: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether the model trains under DistributedDataParallel: in every torchrun job
        (a one-process job too, the usual launch on a single-GPU machine), never without."""
        return self.world_size > 1 or self.launched

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def device(self, device: torch.device) -> torch.device:
        """This rank's GPU under a multi-process CUDA job, else ``device``."""
        if device.type == "cuda" and self.active:
            return torch.device("cuda", self.local_rank)
        return device

    def close(self) -> None:
        """Leave the process group (a no-op for one process)."""
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device_name: str) -> DistContext:
    """Read RANK/WORLD_SIZE/LOCAL_RANK (set by torchrun) and join the process group:
    nccl on CUDA, gloo on CPU. Without torchrun's variables: one process, no group."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistContext()
    ctx = DistContext(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                      int(os.environ.get("LOCAL_RANK", "0")), launched=True)
    if not dist.is_initialized():
        cuda = device_name != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    return ctx


# ------------------------------------------------------------------- randomness


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global generator's state, as tensors and plain values a checkpoint can hold
    (``torch.load(weights_only=True)`` reads it back)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": _numpy_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state() -> list:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss]


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


__all__ = ["DistContext", "autocast", "backend_flags", "compile_for_inference",
           "init_distributed", "is_compiled", "resolve_amp", "resolve_device", "rng_state",
           "seed_everything", "set_backend_flags", "set_rng_state"]
