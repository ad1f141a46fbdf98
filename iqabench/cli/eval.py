"""`iqabench eval`: flags -> EvalConfig -> iqabench.evaluation.evaluate_checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.console import Console
from rich.table import Table

from iqabench.config import EvalConfig


def evaluate(
    checkpoint: Annotated[Path, typer.Option(help="A run's best.pt (or last.pt).")],
    dataset: Annotated[str, typer.Option(help="Dataset id to score (e.g. agiqa3k, koniq10k, synthetic).")],
    root: Annotated[Optional[Path], typer.Option(help="The dataset folder as distributed.")] = None,
    split: Annotated[Optional[Path], typer.Option(help="A run folder or split.csv: score its --subset only. Without it, the whole dataset.")] = None,
    subset: Annotated[Literal["train", "val", "test", "all"], typer.Option(help="Subset of --split to score.")] = "test",
    crop_mode: Annotated[Optional[Literal["grid", "center", "random", "full"]], typer.Option(help="Test-time crops. [default: as the run was tested]")] = None,
    n_crops: Annotated[Optional[int], typer.Option(help="Crops per image. [default: as the run was tested]")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Crops per forward pass. [default: as the run was tested]")] = None,
    logistic: Annotated[Optional[int], typer.Option(help="Also report PLCC after the VQEG 4- or 5-parameter logistic fit.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals (0: none).")] = 1000,
    limit: Annotated[Optional[int], typer.Option(help="Score only the first N images (quick checks).")] = None,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option(help="Device.")] = "auto",
    amp: Annotated[Literal["auto", "none", "bf16", "fp16"], typer.Option(help="Mixed precision; auto = bf16 on CUDA, none on CPU.")] = "auto",
    channels_last: Annotated[bool, typer.Option("--channels-last/--no-channels-last", help="NHWC memory layout.")] = True,
    compile: Annotated[bool, typer.Option("--compile", help="Compile the model with TorchInductor, weights frozen (BatchNorm folded): faster scoring after a one-off compile; needs a C++ compiler on CPU.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Folder for predictions.csv and metrics.csv.")] = None,
) -> None:
    """Score a checkpoint: per-image predictions, SRCC/PLCC/KRCC/RMSE, bootstrap 95% CIs.

    With --split RUN it scores the run's test images with the run's crops, reproducing
    its test_metrics.csv.
    """
    from iqabench.evaluation import evaluate_checkpoint

    cfg = EvalConfig(
        checkpoint=str(checkpoint), dataset=dataset, root=str(root) if root else None,
        split=str(split) if split else None, subset=subset, crop_mode=crop_mode, n_crops=n_crops,
        batch_size=batch_size, logistic=logistic, n_boot=bootstrap, limit=limit, device=device,
        amp=amp, channels_last=channels_last, compile=compile, out=str(out) if out else None)
    result = evaluate_checkpoint(cfg, progress=sys.stderr.isatty())
    m = result.metrics
    table = Table(title=f"{checkpoint} on {m['dataset']} ({m['n']} images)")
    table.add_column("metric")
    table.add_column("value")
    table.add_column("95% CI")
    for key in ("srcc", "plcc", "krcc", "rmse"):
        low, high = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
        ci = f"{low:.4f}-{high:.4f}" if low is not None and low == low else ""
        table.add_row(key.upper(), f"{m[key]:.4f}", ci)
    if logistic:
        table.add_row(f"PLCC (logistic {logistic})", f"{m['plcc_logistic']:.4f}", "")
    Console().print(table)
    if result.out_dir:
        Console(stderr=True).print(f"wrote {result.out_dir / 'predictions.csv'} and metrics.csv")
