"""`iqabench profile`: params, MACs, latency and memory per backbone and hyper input."""

from __future__ import annotations

import math
import shlex
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from iqabench.profiling import (DEFAULT_BUDGET_S, ProfileRow, output_paths, profile_models,
                                write_csv, write_markdown)


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


class DType(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class HyperInputChoice(str, Enum):
    last = "last"
    multiscale = "multiscale"


def profile(
    backbone: Annotated[list[str], typer.Option(
        help="timm backbone name; repeat for several (e.g. resnet50, "
             "swin_tiny_patch4_window7_224).")],
    hyper_input: Annotated[Optional[list[HyperInputChoice]], typer.Option(
        help="Hyper-network input; repeat to profile both. Default: last.")] = None,
    device: Annotated[Device, typer.Option(help="Where to time the forwards.")] = Device.cpu,
    dtype: Annotated[DType, typer.Option(
        help="fp32, or autocast to bf16/fp16 (weights stay fp32).")] = DType.fp32,
    batch_size: Annotated[int, typer.Option(help="Patches per timed forward.")] = 1,
    input_size: Annotated[int, typer.Option(help="Patch side in pixels.")] = 224,
    n_crops: Annotated[int, typer.Option(
        help="Crops per image for ms_per_image and gmacs_per_image.")] = 25,
    repeats: Annotated[Optional[int], typer.Option(
        help="Timed forwards per variant (median reported); 0 skips timing. "
             "Default: as many as fit in --budget-s.")] = None,
    warmup: Annotated[Optional[int], typer.Option(
        help="Untimed forwards first. Default: 2 on CPU, 10 on CUDA.")] = None,
    budget_s: Annotated[float, typer.Option(
        help="Seconds of timed forwards per variant when --repeats is not given.")]
        = DEFAULT_BUDGET_S,
    threads: Annotated[Optional[int], typer.Option(
        help="torch intra-op CPU threads (default: torch's choice).")] = None,
    out: Annotated[Optional[Path], typer.Option(
        help="Folder for profile.csv and profile.md (only the table is printed without it).")]
        = None,
    force: Annotated[bool, typer.Option(help="Overwrite profile.csv/profile.md in --out.")]
        = False,
) -> None:
    """Profile Hyper-IQA variants: params, GMACs (fvcore, thop cross-check), latency, memory."""
    hyper_inputs = [h.value for h in hyper_input] if hyper_input else ["last"]
    paths = output_paths(out, force) if out is not None else None  # refuse before the work
    rows = profile_models(backbone, hyper_inputs, device=device.value, dtype=dtype.value,
                          batch_size=batch_size, input_size=input_size, n_crops=n_crops,
                          repeats=repeats, warmup=warmup, budget_s=budget_s, threads=threads)
    console = Console()
    if not console.is_terminal:  # piped or captured: no terminal width to fit
        console = Console(width=200)
    console.print(_table(rows))
    for row in rows:
        console.print(f"uncounted by fvcore in {row.backbone}/{row.hyper_input}: "
                      f"{row.uncounted_ops or 'none'}", soft_wrap=True)
        if row.notes:
            console.print(f"note ({row.backbone}/{row.hyper_input}): {row.notes}", soft_wrap=True)
    if paths is not None:
        command = _command_line(backbone, hyper_inputs, device.value, dtype.value, batch_size,
                                input_size, n_crops, repeats, warmup, budget_s, threads, out,
                                force)
        write_csv(rows, paths[0])
        write_markdown(rows, paths[1], command=command)
        console.print(f"wrote {paths[0]} and {paths[1]}")


def _fmt(value: float | None, decimals: int) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{decimals}f}"


def _table(rows: list[ProfileRow]) -> Table:
    first = rows[0]
    table = Table(title=f"{first.device} ({first.device_name}), {first.dtype}, batch "
                        f"{first.batch_size}, {first.input_size}px patches, "
                        f"{first.n_crops} crops/image; GMACs per patch (GFLOPs = 2 x GMACs)")
    for name in ("backbone", "hyper_input", "params_m", "gmacs", "gflops", "thop_gmacs",
                 "ms_per_patch", "ms_per_image", "images_per_s", "peak_mem_mb"):
        table.add_column(name, justify="left" if name in ("backbone", "hyper_input") else "right",
                         overflow="fold")
    for r in rows:
        table.add_row(r.backbone, r.hyper_input, _fmt(r.params_m, 2), _fmt(r.gmacs, 3),
                      _fmt(r.gflops, 3), _fmt(r.thop_gmacs, 3), _fmt(r.ms_per_patch, 2),
                      _fmt(r.ms_per_image, 2), _fmt(r.images_per_s, 2), _fmt(r.peak_mem_mb, 1))
    return table


def _command_line(backbones, hyper_inputs, device, dtype, batch_size, input_size, n_crops,
                  repeats, warmup, budget_s, threads, out, force) -> str:
    """The command with every option resolved, so the Markdown says how to rerun it."""
    args = ["iqabench", "profile"]
    args += [a for b in backbones for a in ("--backbone", b)]
    args += [a for h in hyper_inputs for a in ("--hyper-input", h)]
    args += ["--device", device, "--dtype", dtype, "--batch-size", str(batch_size),
             "--input-size", str(input_size), "--n-crops", str(n_crops)]
    args += ["--repeats", str(repeats)] if repeats is not None else ["--budget-s", str(budget_s)]
    args += ["--warmup", str(warmup)] if warmup is not None else []
    args += ["--threads", str(threads)] if threads is not None else []
    args += ["--out", str(out)] + (["--force"] if force else [])
    return shlex.join(args)
