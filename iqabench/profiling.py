"""Cost of each Hyper-IQA variant: parameters, MACs (two counters), latency, memory.

Conventions:

* ``params_m`` counts the model that runs (backbone + LDA + hyper network + generators).
* ``gmacs`` is fvcore's count for one ``input_size`` patch at batch 1. fvcore calls one
  multiply-add one "flop", so its number is MACs; ``gflops = 2 * gmacs``. The 25-crop
  test-time cost is the separate ``gmacs_per_image``. thop (module hooks, no functional
  ops) is the cross-check, ``thop_gmacs``.
* Every op fvcore does not count (elementwise adds, activations, softmax, padding...) is
  listed in ``uncounted_ops`` with its calls and output elements, never dropped silently.
* Latency: warm-up, then the median of timed forwards of one batch of random patches
  already on the device (decoding and cropping are not in it), synchronised on CUDA.
* Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA, peak RSS growth on CPU.

The timing and memory primitives (:func:`synchronize`, :func:`timed`, :class:`PeakMemory`)
are also what the benchmarks under ``benchmarks/`` time whole training epochs and
evaluation passes with.

Weights are random (``pretrained=False``): cost does not depend on them.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import math
import platform
import re
import resource
import statistics
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import timm
import torch
from torch import nn

from iqabench.errors import IqabenchError
from iqabench.models.backbone import create_features_model
from iqabench.models.hyperiqa import build_model
from iqabench.provenance import cpu_model, git_commit
from iqabench.runtime import resolve_device

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
HYPER_INPUTS = ("last", "multiscale")
CSV_NAME, MARKDOWN_NAME = "profile.csv", "profile.md"

# Adaptive repeats (``repeats=None``): time forwards until this many seconds have passed,
# but at least MIN and at most MAX of them. Keeps a CPU run of two backbones near a minute.
DEFAULT_BUDGET_S = 4.0
MIN_ADAPTIVE_REPEATS, MAX_ADAPTIVE_REPEATS = 3, 200
# Untimed forwards first: allocator, oneDNN/cuDNN autotuning and lazy init settle there.
DEFAULT_WARMUP = {"cpu": 2, "cuda": 10}

# Ops fvcore skips on purpose although they compute something (its ``_IGNORED_OPS`` also
# holds pure data movement: view, cat, permute, roll, ...). They are listed as uncounted.
FVCORE_IGNORED_COMPUTE = (
    "aten::relu", "aten::relu_", "aten::clamp", "aten::clamp_", "aten::max",
    "aten::masked_fill", "aten::floor", "aten::floor_divide", "aten::remainder",
    "aten::eq", "aten::ge", "aten::gt", "aten::__and__", "aten::bitwise_not",
)


@dataclass
class ProfileRow:
    """One (backbone, hyper_input) variant; the field order is the CSV column order."""

    backbone: str
    hyper_input: str
    params_m: float  # millions of parameters, whole model
    gmacs: float | None  # fvcore, one patch, batch 1
    gflops: float | None  # 2 * gmacs
    ms_per_patch: float | None  # median batch time / batch_size; None when not timed
    ms_per_image: float | None  # n_crops * ms_per_patch
    images_per_s: float | None  # 1000 / ms_per_image
    device: str
    dtype: str
    batch_size: int
    params: int  # exact parameter count
    backbone_params_m: float
    gmacs_per_image: float | None  # n_crops * gmacs: the test-time cost of one image
    thop_gmacs: float | None  # thop's MACs for one patch (misses functional ops)
    uncounted_ops: str  # ops fvcore did not count: "aten::add x21 (5.3M el); ..."
    uncounted_melems: float | None  # millions of output elements of those ops
    peak_mem_mb: float | None
    input_size: int
    n_crops: int
    repeats: int  # timed forwards behind the medians (0: not timed)
    warmup: int
    threads: int  # torch intra-op threads (matters on CPU)
    torch: str
    device_name: str
    notes: str  # anything this row could not measure, and why


@dataclass(frozen=True)
class MacCount:
    """What fvcore counted for one forward, and what it did not."""

    macs: int
    by_operator: dict[str, int]
    uncounted_calls: dict[str, int]  # op name -> calls fvcore had no handle for
    uncounted_elems: dict[str, int]  # op name -> output elements of those calls

    def describe_uncounted(self) -> str:
        """``aten::add x21 (5.3M el); ...``, largest first; empty when all was counted."""
        names = sorted(self.uncounted_calls, key=lambda n: -self.uncounted_elems.get(n, 0))
        return "; ".join(f"{n} x{self.uncounted_calls[n]} "
                         f"({self.uncounted_elems.get(n, 0) / 1e6:.2g}M el)" for n in names)


# --------------------------------------------------------------------------- counting


def _traced_shape(value) -> list[int] | None:
    """Shape of a value in the TorchScript graph fvcore traces (``torch._C.Value``, not a
    tensor), or None for non-tensors / unknown shapes."""
    from fvcore.nn.jit_handles import get_shape

    try:
        return get_shape(value)
    except RuntimeError:
        return None


def sdpa_macs(inputs: list, outputs: list) -> int:
    """fvcore handle for ``aten::scaled_dot_product_attention``: QK^T plus attn @ V.

    q (..., L, E), k (..., S, E), v (..., S, Ev) -> prod(...) * L * S * (E + Ev).
    """
    q, k, v = (_traced_shape(x) for x in inputs[:3])
    if not q or not k or not v:
        return 0
    *batch, length, e = q
    return math.prod(batch) * length * k[-2] * (e + v[-1])


def _element_recorder(name: str, calls: Counter, elems: Counter) -> Callable:
    """A handle that counts nothing as MACs but records calls and output elements."""

    def record(inputs: list, outputs: list) -> int:
        calls[name] += 1
        shape = _traced_shape(outputs[0]) if outputs else None
        elems[name] += math.prod(shape) if shape is not None else 0
        return 0

    return record


def _fvcore(model: nn.Module, example: torch.Tensor, **handles):
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, example).set_op_handle(**handles)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return analysis


def count_macs(model: nn.Module, example: torch.Tensor) -> MacCount:
    """fvcore MACs of ``model(example)`` plus an account of every op it left out.

    fvcore already counts ``aten::bmm`` (the per-image target network) and
    ``aten::matmul`` (timm Swin's attention when not fused); the fused
    ``scaled_dot_product_attention`` gets :func:`sdpa_macs`. A second trace records the
    calls and output elements of the ops that stay uncounted.
    """
    model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings
        counted = _fvcore(model, example, **{"aten::scaled_dot_product_attention": sdpa_macs})
        macs = int(counted.total())
        by_operator = {k: int(v) for k, v in counted.by_operator().items()}
        unsupported = counted.unsupported_ops()
        calls: Counter = Counter()
        elems: Counter = Counter()
        names = set(unsupported) | set(FVCORE_IGNORED_COMPUTE)
        recorded = _fvcore(model, example,
                           **{n: _element_recorder(n, calls, elems) for n in names})
        recorded.total()
    # the fvcore-ignored names are only kept when the model calls them
    return MacCount(macs=macs, by_operator=by_operator,
                    uncounted_calls=dict(calls), uncounted_elems=dict(elems))


def count_thop_macs(model: nn.Module, example: torch.Tensor) -> int:
    """thop's MACs (forward hooks on known module types; functional ops are invisible)."""
    import thop

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        macs, _ = thop.profile(model, inputs=(example,), verbose=False)
    return int(macs)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Latency:
    ms_per_batch: float  # median
    repeats: int
    warmup: int


def synchronize(device: torch.device) -> None:
    """Wait until ``device`` has run its queued work (CUDA); CPU work is synchronous."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency(model: nn.Module, batch: torch.Tensor, dtype: str = "fp32",
                    repeats: int | None = None, warmup: int | None = None,
                    budget_s: float = DEFAULT_BUDGET_S) -> Latency:
    """Median ms of ``model(batch)`` (inference mode, channels_last, autocast to ``dtype``).

    ``repeats=None`` times forwards until ``budget_s`` has passed (3 to 200 of them).
    Model and batch must already be on the device.
    """
    device = batch.device
    warmup = DEFAULT_WARMUP.get(device.type, 2) if warmup is None else warmup
    autocast = torch.autocast(device.type, dtype=DTYPES[dtype], enabled=dtype != "fp32")
    times: list[float] = []
    with torch.inference_mode(), autocast:
        for _ in range(warmup):
            model(batch)
        start = time.perf_counter()
        while True:
            if repeats is not None and len(times) >= repeats:
                break
            if repeats is None and len(times) >= MIN_ADAPTIVE_REPEATS and (
                    len(times) >= MAX_ADAPTIVE_REPEATS or time.perf_counter() - start > budget_s):
                break
            with timed(device) as timing:
                model(batch)
            times.append(timing.seconds * 1000)
    return Latency(ms_per_batch=statistics.median(times), repeats=len(times), warmup=warmup)


# --------------------------------------------------------------------------- memory


class PeakMemory:
    """Peak memory above a baseline: CUDA allocator stats, or the process RSS high-water
    mark on CPU (reset through ``/proc/self/clear_refs``; without that, the lifetime peak
    from ``getrusage``, an upper bound)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.exact = True
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            self.base_mb = torch.cuda.memory_allocated(device) / 2**20
        else:
            _malloc_trim()
            self.base_mb = _proc_status_mb("VmRSS") or 0.0

    def reset(self) -> None:
        """Forget peaks reached so far (e.g. by FLOP tracing), keep the baseline."""
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to VmRSS
        except OSError:
            self.exact = False

    def peak_mb(self) -> float:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            hwm = _proc_status_mb("VmHWM") if self.exact else None
            if hwm is None:
                self.exact = False
                hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
            peak = hwm
        return max(0.0, peak - self.base_mb)


def _proc_status_mb(key: str) -> float | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def _malloc_trim() -> None:
    """Hand freed heap back to the OS, so the next model's RSS growth is its own."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@dataclass
class Timing:
    """What :func:`timed` measured: wall seconds, and the peak memory in MiB above the
    start of the block (None when not asked for)."""

    seconds: float = math.nan
    peak_mb: float | None = None


@contextmanager
def timed(device: torch.device, peak_memory: bool = False) -> Iterator[Timing]:
    """Time the ``with`` block on ``device``, synchronised before and after so CUDA's
    asynchronous work falls inside the time; ``peak_memory`` also tracks
    :class:`PeakMemory` over the block.

    The returned :class:`Timing` is filled in when the block ends (not when it raises).
    """
    timing = Timing()
    memory = PeakMemory(device) if peak_memory else None
    if memory is not None:
        memory.reset()
    synchronize(device)
    started = time.perf_counter()
    yield timing
    synchronize(device)
    timing.seconds = time.perf_counter() - started
    if memory is not None:
        timing.peak_mb = memory.peak_mb()


# --------------------------------------------------------------------------- the API


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def _check_args(backbones: Sequence[str], hyper_inputs: Sequence[str], dtype: str,
                batch_size: int, input_size: int, n_crops: int, repeats: int | None,
                warmup: int | None) -> None:
    if not backbones:
        raise IqabenchError("no backbone given: pass --backbone NAME (e.g. resnet50)")
    for hyper_input in hyper_inputs:
        if hyper_input not in HYPER_INPUTS:
            raise IqabenchError(f"--hyper-input {hyper_input!r}: use one of "
                                f"{', '.join(HYPER_INPUTS)}")
    if dtype not in DTYPES:
        raise IqabenchError(f"dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    for flag, value, low in (("--eval-batch-size", batch_size, 1),
                             ("--input-size", input_size, 32),
                             ("--eval-crops", n_crops, 1), ("--repeats", repeats, 0),
                             ("--warmup", warmup, 0)):
        if value is not None and value < low:
            raise IqabenchError(f"{flag} {value}: must be at least {low}")
    for name in backbones:  # fail before minutes of profiling, not in the middle
        if not timm.is_model(name):
            create_features_model(name)  # raises the one-line error with close names


def profile_models(backbones: Sequence[str], hyper_inputs: Sequence[str] = ("last",),
                   device: str = "auto", dtype: str = "fp32", batch_size: int = 1,
                   input_size: int = 224, n_crops: int = 25, repeats: int | None = None,
                   warmup: int | None = None, budget_s: float = DEFAULT_BUDGET_S,
                   threads: int | None = None, count_thop: bool = True) -> list[ProfileRow]:
    """Profile every (backbone, hyper_input) variant; one :class:`ProfileRow` each.

    ``repeats=0`` skips timing (parameters and MACs only); ``repeats=None`` adapts the
    number of timed forwards to ``budget_s`` seconds per variant. ``threads`` sets torch's
    intra-op threads for the run (restored afterwards); None keeps the current setting.
    ``device``: ``auto`` (CUDA when torch sees one, else CPU), ``cpu`` or ``cuda[:N]``.
    """
    _check_args(backbones, hyper_inputs, dtype, batch_size, input_size, n_crops, repeats,
                warmup)
    if threads is not None and threads < 1:
        raise IqabenchError(f"--threads {threads}: must be at least 1")
    dev = resolve_device(device)
    if dev.type == "cuda" and dtype == "bf16" and not torch.cuda.is_bf16_supported():
        raise IqabenchError(f"--amp bf16: {torch.cuda.get_device_name(dev)} has no bf16 support")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    rows = []
    try:
        for backbone in backbones:
            for hyper_input in hyper_inputs:
                log.info("profiling %s (hyper input %s) on %s, %s", backbone, hyper_input,
                         dev, dtype)
                rows.append(_profile_one(backbone, hyper_input, dev, dtype, batch_size,
                                         input_size, n_crops, repeats, warmup, budget_s,
                                         count_thop))
    finally:
        torch.set_num_threads(previous_threads)
    return rows


def _profile_one(backbone: str, hyper_input: str, dev: torch.device, dtype: str,
                 batch_size: int, input_size: int, n_crops: int, repeats: int | None,
                 warmup: int | None, budget_s: float, count_thop: bool) -> ProfileRow:
    timed = repeats != 0
    memory = PeakMemory(dev) if timed else None
    model = build_model(backbone, hyper_input, pretrained=False, input_size=input_size).eval()
    params, backbone_params = count_params(model), count_params(model.backbone)
    notes = []
    example = torch.rand(1, 3, input_size, input_size)
    counted = count_macs(model, example)
    thop_macs = None
    if count_thop:
        try:
            thop_macs = count_thop_macs(model, example)
        except Exception as err:  # a cross-check must not sink the row; say why it is empty
            notes.append(f"thop failed: {type(err).__name__}: {err}".splitlines()[0])

    latency = None
    if timed:
        model = model.to(dev, memory_format=torch.channels_last)
        batch = torch.rand(batch_size, 3, input_size, input_size, device=dev)
        batch = batch.contiguous(memory_format=torch.channels_last)
        memory.reset()
        try:
            latency = measure_latency(model, batch, dtype, repeats, warmup, budget_s)
        except torch.cuda.OutOfMemoryError as err:
            raise IqabenchError(f"{backbone}: out of memory at --batch-size {batch_size} on "
                                f"{dev}; use a smaller batch") from err
        except RuntimeError as err:
            if dtype == "fp32":
                raise
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise IqabenchError(f"--amp {dtype} on {dev.type} fails for {backbone}: {first}; "
                                "use --amp none") from err
        peak = memory.peak_mb()
        if not memory.exact:
            notes.append("peak_mem_mb is the process's lifetime peak RSS growth (upper bound)")
        if dev.type == "cpu" and dtype == "fp16":
            notes.append("fp16 autocast on CPU runs without native fp16 kernels (slow)")
    del model
    gc.collect()

    gmacs = counted.macs / 1e9
    ms_per_patch = latency.ms_per_batch / batch_size if latency else None
    ms_per_image = ms_per_patch * n_crops if latency else None
    return ProfileRow(
        backbone=backbone, hyper_input=hyper_input,
        params_m=params / 1e6, gmacs=gmacs, gflops=2 * gmacs,
        ms_per_patch=ms_per_patch, ms_per_image=ms_per_image,
        images_per_s=1000 / ms_per_image if latency else None,
        device=str(dev), dtype=dtype, batch_size=batch_size, params=params,
        backbone_params_m=backbone_params / 1e6,
        gmacs_per_image=gmacs * n_crops,
        thop_gmacs=thop_macs / 1e9 if thop_macs is not None else None,
        uncounted_ops=counted.describe_uncounted(),
        uncounted_melems=sum(counted.uncounted_elems.values()) / 1e6,
        peak_mem_mb=peak if latency else None,
        input_size=input_size, n_crops=n_crops,
        repeats=latency.repeats if latency else 0, warmup=latency.warmup if latency else 0,
        threads=torch.get_num_threads(), torch=torch.__version__,
        device_name=device_name(dev), notes="; ".join(notes))


# --------------------------------------------------------------------------- writers

# decimals per column in the CSV, Markdown and the terminal table
ROUNDING = {"params_m": 2, "backbone_params_m": 2, "gmacs": 3, "gflops": 3,
            "gmacs_per_image": 2, "thop_gmacs": 3, "uncounted_melems": 2, "ms_per_patch": 2,
            "ms_per_image": 2, "images_per_s": 2, "peak_mem_mb": 1}


def to_frame(rows: Sequence[ProfileRow]) -> pd.DataFrame:
    """Rows as a table with the CSV's columns and rounding (missing values are NaN)."""
    frame = pd.DataFrame([asdict(r) for r in rows], columns=[f.name for f in fields(ProfileRow)])
    for column, decimals in ROUNDING.items():
        frame[column] = pd.to_numeric(frame[column]).round(decimals)
    return frame


def output_paths(out_dir: str | Path, force: bool = False) -> tuple[Path, Path]:
    """``DIR/profile.csv`` and ``DIR/profile.md``; refuses to overwrite unless ``force``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise IqabenchError(f"--out {out}: exists and is not a directory")
    paths = out / CSV_NAME, out / MARKDOWN_NAME
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise IqabenchError(f"{', '.join(existing)} already exist(s); pass --force to "
                            "overwrite or choose another --out")
    try:  # now, so a bad --out fails before the profiling does
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise IqabenchError(f"--out {out}: cannot create the folder ({err.strerror})") from err
    return paths


def write_csv(rows: Sequence[ProfileRow], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_frame(rows).to_csv(path, index=False)
    return path


def machine_description(rows: Sequence[ProfileRow] = ()) -> str:
    names = sorted({f"{r.device_name} ({r.device})" for r in rows})
    cpu = device_name(torch.device("cpu"))
    parts = names or [cpu]
    if cpu not in " ".join(parts):
        parts.append(f"host CPU {cpu}")
    return (f"{'; '.join(parts)}; {torch.get_num_threads()} torch threads; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}; "
            f"torch {torch.__version__}; timm {timm.__version__}")


def markdown_notes(rows: Sequence[ProfileRow]) -> list[str]:
    """What every column means, in the units it is written in."""
    input_size = ", ".join(sorted({str(r.input_size) for r in rows})) or "224"
    n_crops = ", ".join(sorted({str(r.n_crops) for r in rows})) or "25"
    notes = [
        "Weights are random (`pretrained=False`): the costs below do not depend on them; "
        "no scores are produced.",
        "`params_m`: millions of parameters of the model that runs (backbone + LDA "
        "branches + hyper network + weight generators); `backbone_params_m`: the timm "
        "features model alone.",
        f"`gmacs`: 10^9 multiply-accumulates for **one {input_size}x{input_size} patch** at "
        "batch 1, counted by fvcore (fvcore calls one multiply-add one \"flop\", so its "
        "number is MACs); `gflops` = 2 x `gmacs`. The test-time cost of one image "
        f"({n_crops} crops) is `gmacs_per_image` = crops x `gmacs`; `gmacs`/`gflops` "
        "do not include it.",
        "Counted ops: conv, linear/addmm, matmul (Swin attention), bmm (the per-image "
        "target network), fused scaled_dot_product_attention (handle added here), "
        "batch/layer norm and adaptive average pooling as fvcore defines them.",
        "`uncounted_ops`: every op fvcore left out of `gmacs` (no handle, or ignored by "
        "fvcore although it computes, e.g. ReLU), as `name xcalls (output elements)`; "
        "`uncounted_melems` sums their output elements in millions, roughly their cost "
        "in single ops. Pure data movement (view, permute, cat, roll, ...) is not listed.",
        "`thop_gmacs`: thop's MACs for the same patch, a cross-check. thop hooks known "
        "module types only and misses functional ops (HyperIQA's `torch.bmm` target "
        "network, Swin's attention matmuls, `F.adaptive_avg_pool2d`) while counting some "
        "norm/activation modules, so it differs from fvcore by a few percent.",
        "Latency: random float patches already on the device (image decoding, resizing and "
        "cropping are not timed), `model.eval()`, `torch.inference_mode()`, channels_last, "
        "autocast to `dtype` for bf16/fp16 (weights stay fp32); `warmup` untimed forwards, "
        "then `repeats` timed forwards of one batch of `batch_size` patches "
        "(`torch.cuda.synchronize()` before and after each on CUDA); the median is used.",
        "`ms_per_patch` = median batch time / `batch_size`. `ms_per_image` = crops x "
        "`ms_per_patch`: an image's crops run in batches of `batch_size`, with the crops "
        "of consecutive images filling each batch (steady-state throughput, as batched "
        "evaluation runs); `images_per_s` = 1000 / `ms_per_image`.",
        "`peak_mem_mb`: on CUDA `torch.cuda.max_memory_allocated` during the timed forwards "
        "above what was allocated before the model moved to the GPU (weights + "
        "activations); on CPU the growth of the process's peak RSS (VmHWM) while timing, "
        "over the RSS before the model was built (weights + activations + allocator slack).",
        "MiB throughout (`_mb` = 2^20 bytes); `ms` are milliseconds of wall time.",
    ]
    extra = sorted({r.notes for r in rows if r.notes})
    return notes + [f"Row notes: {n}" for n in extra]


def write_markdown(rows: Sequence[ProfileRow], path: str | Path,
                   command: str | None = None) -> Path:
    """A report-ready table with a header saying how, when and where it was measured."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = to_frame(rows).astype(object).where(lambda f: f.notna(), "-")
    frame = frame.replace({"uncounted_ops": {"": "none"}, "notes": {"": "-"}})
    header = [
        "# iqabench profile",
        "",
        f"- command: `{command}`" if command else "- command: (called from Python)",
        f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"- git commit: {git_commit()}",
        f"- machine: {machine_description(rows)}",
        "",
        frame.to_markdown(index=False, disable_numparse=True),
        "",
        "## Notes",
        "",
        *[f"- {n}" for n in markdown_notes(rows)],
        "",
    ]
    path.write_text("\n".join(header))
    return path


__all__ = ["ProfileRow", "MacCount", "Latency", "profile_models", "count_macs",
           "count_thop_macs", "count_params", "measure_latency", "sdpa_macs", "to_frame",
           "output_paths", "write_csv", "write_markdown", "synchronize",
           "timed", "Timing", "PeakMemory"]
