"""Shared fixtures: offline hub, few threads, the real data beside the repository, and a
tiny untrained model with a handful of uint8 images for scoring tests."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub in tests

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (genuine score files and AGIQA-3K), or skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def import_benchmark():
    """``import_benchmark(name)`` -> the module ``benchmarks.<name>``: the benchmarks package
    lives at the repository root, beside (not inside) the installed package."""
    def load(name: str):
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
            return importlib.import_module(f"benchmarks.{name}")
    return load


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    yield


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine two threads wait on each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: Input size of the tiny scoring model (test_resnet) the ``tiny_model`` fixture builds.
TINY_SIZE = 32


@pytest.fixture(scope="module")
def tiny_model():
    """An untrained test_resnet Hyper-IQA at 32 px in eval mode, seeded (same weights every time)."""
    import torch

    from iqabench.config import HyperIQAConfig
    from iqabench.models.hyperiqa import HyperIQA

    torch.manual_seed(0)
    return HyperIQA(HyperIQAConfig(backbone="test_resnet", input_size=TINY_SIZE)).eval()


@pytest.fixture(scope="module")
def tiny_images():
    """Five seeded uint8 CHW images of slightly different sizes, keyed by file name."""
    import torch

    gen = torch.Generator().manual_seed(1)
    return {f"img{i}.png": torch.randint(0, 256, (3, 40 + i, 48), dtype=torch.uint8, generator=gen)
            for i in range(5)}
