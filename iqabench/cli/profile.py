"""`iqabench profile`: params, MACs, latency and memory per backbone and hyper input."""

from __future__ import annotations

import math
import shlex

from iqabench.cli import options


@options.takes("backbone", "hyper_input", "device", "amp", "eval_batch_size", "input_size",
               "eval_crops", "repeats", "warmup", "budget_s", "threads", "out", "force",
               repeatable=("backbone", "hyper_input"),
               help={"backbone": "timm backbone name; repeat for several (e.g. resnet50, "
                                 "swin_tiny_patch4_window7_224).",
                     "hyper_input": "Hyper-network input; repeat to profile both.",
                     "amp": "Mixed precision of the timed forwards (weights stay fp32); auto: "
                            "bf16 on CUDA, none on CPU.",
                     "eval_batch_size": "Patches per timed forward (1 measures latency).",
                     "eval_crops": "Crops per image, for ms_per_image and gmacs_per_image.",
                     "out": "Folder for profile.csv and profile.md (only the table is printed "
                            "without it).",
                     "force": "Overwrite profile.csv/profile.md in --out."})
def profile(**values) -> None:
    """Profile Hyper-IQA variants: params, GMACs (fvcore, thop cross-check), latency, memory."""
    from rich.console import Console

    from iqabench.profiling import (DTYPES, output_paths, profile_models, write_csv,
                                    write_markdown)
    from iqabench.runtime import resolve_amp, resolve_device

    out, force = values["out"], values["force"]
    paths = output_paths(out, force) if out is not None else None  # refuse before the work
    device = resolve_device(values["device"])
    amp_dtype = resolve_amp(values["amp"], device)
    dtype = next((name for name, d in DTYPES.items() if d == amp_dtype), "fp32")
    rows = profile_models(values["backbone"], values["hyper_input"], device=str(device),
                          dtype=dtype, batch_size=values["eval_batch_size"],
                          input_size=values["input_size"], n_crops=values["eval_crops"],
                          repeats=values["repeats"], warmup=values["warmup"],
                          budget_s=values["budget_s"], threads=values["threads"])
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
        write_csv(rows, paths[0])
        write_markdown(rows, paths[1], command=_command_line(values, str(device)))
        console.print(f"wrote {paths[0]} and {paths[1]}")


def _fmt(value: float | None, decimals: int) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{decimals}f}"


def _table(rows):
    from rich.table import Table

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


def _command_line(values: dict, device: str) -> str:
    """The command with every option resolved, so the Markdown says how to rerun it."""
    args = ["iqabench", "profile"]
    args += [a for b in values["backbone"] for a in ("--backbone", b)]
    args += [a for h in values["hyper_input"] for a in ("--hyper-input", h)]
    args += ["--device", device, "--amp", values["amp"],
             "--eval-batch-size", str(values["eval_batch_size"]),
             "--input-size", str(values["input_size"]), "--eval-crops", str(values["eval_crops"])]
    if values["repeats"] is not None:
        args += ["--repeats", str(values["repeats"])]
    else:
        args += ["--budget-s", str(values["budget_s"])]
    args += ["--warmup", str(values["warmup"])] if values["warmup"] is not None else []
    args += ["--threads", str(values["threads"])] if values["threads"] is not None else []
    args += ["--out", str(values["out"])] + (["--force"] if values["force"] else [])
    return shlex.join(args)
