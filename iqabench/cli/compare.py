"""`iqabench compare`: tables, plots, paired tests and a regression gate over run folders."""

from __future__ import annotations

import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from iqabench.errors import IqabenchError


class Metric(str, Enum):
    srcc = "srcc"
    plcc = "plcc"
    krcc = "krcc"


def _command_line() -> str:
    """This invocation as typed (for report.md); empty when not run from the shell."""
    if sys.argv[1:2] != ["compare"]:
        return ""
    return shlex.join(["iqabench", *sys.argv[1:]])


def compare(
    runs: Annotated[list[Path], typer.Argument(
        help="Run folders written by 'iqabench train' (a round, or a folder of round_XX/).")],
    profile: Annotated[list[Path] | None, typer.Option(
        help="'iqabench profile --out' folder or its profile.csv; repeat for several.")] = None,
    baseline_run: Annotated[Path | None, typer.Option(
        help="Run every other run is tested against (default: the first RUN).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the Markdown/CSV tables, PNG plots and report.md (new or empty).")] = None,
    baseline: Annotated[Path | None, typer.Option(
        help="Gate: a metrics.csv from an earlier 'compare --out'; exit 1 on a regression.",
    )] = None,
    max_drop: Annotated[float, typer.Option(
        help="Gate tolerance: the largest absolute fall below the baseline file allowed.")] = 0.01,
    metric: Annotated[list[Metric] | None, typer.Option(
        help="Metric for the paired test and the gate; repeat (default: srcc and plcc).")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the paired test.")] = 1000,
    seed: Annotated[int, typer.Option(
        help="Seed of the bootstrap and of the PCA image sample.")] = 0,
    pca_limit: Annotated[int, typer.Option(
        help="Test images per run in the weight PCA plot (0 skips it).")] = 200,
    plots: Annotated[bool, typer.Option(help="Draw the PNG plots (with --out).")] = True,
    overwrite: Annotated[bool, typer.Option(help="Allow writing into a non-empty --out.")] = False,
) -> None:
    """Compare runs: backbone, ablation and alpha tables, paired bootstrap tests against a
    baseline run, plots (validation curves, scatter, weight PCA, hyper-input data flow),
    and an optional regression gate."""
    from rich.console import Console

    from iqabench.analysis.gate import gate_message
    from iqabench.compare import compare as run_compare
    from iqabench.render.tables import print_tables

    metrics = tuple(m.value for m in metric) if metric else ("srcc", "plcc")
    result = run_compare(runs, profiles=profile, baseline_run=baseline_run, out=out,
                         metrics=metrics, n_boot=bootstrap, seed=seed, pca_limit=pca_limit,
                         baseline_file=baseline, max_drop=max_drop, plots=plots,
                         overwrite=overwrite,
                         command=_command_line())
    console = Console()
    if not console.is_terminal:  # piped or captured: no 80-column wrapping
        console = Console(width=200)
    print_tables(result, console)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    if out is not None:
        console.print(f"wrote {len(result.files)} files to {out} (start with {out / 'report.md'})",
                      highlight=False)
    else:
        console.print("pass --out DIR to write the tables, plots and report.md", highlight=False)
    failures = result.gate_failures
    if not failures.empty:
        raise IqabenchError(gate_message(failures))
    if result.gate is not None:
        console.print(f"regression gate passed: {len(result.gate)} checks within "
                      f"{max_drop:g} of {baseline}", highlight=False)
