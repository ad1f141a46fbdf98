"""`iqabench compare`: tables, plots, paired tests and a regression gate over run folders."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from iqabench.cli import options
from iqabench.errors import IqabenchError


def _command_line() -> str:
    """This invocation as typed (for report.md); empty when not run from the shell."""
    if sys.argv[1:2] != ["compare"]:
        return ""
    return shlex.join(["iqabench", *sys.argv[1:]])


@options.takes("profile", "baseline_run", "label", "out", "baseline", "max_drop", "metric",
               "n_boot", "seed", "pca_limit", "plots", "force",
               help={"out": "Folder for the tables (Markdown, CSV, LaTeX), plots (PNG, PDF) and "
                            "report.md (new or empty, or --force).",
                     "n_boot": "Bootstrap resamples for the paired test and the design card's "
                               "intervals (at least 100).",
                     "seed": "Seed of the bootstrap and of the PCA image sample.",
                     "force": "Write into a non-empty --out: replace the files an earlier "
                              "compare wrote there (other files stay)."})
def compare(
    runs: Annotated[list[Path], typer.Argument(
        help="Run folders written by 'iqabench train' (a round, or a folder of round_XX/).")],
    **values,
) -> None:
    """Compare runs: the design card (params, GFLOPs, ms/image and test accuracy per
    backbone and hyper input), runs, ablation and alpha tables, paired bootstrap tests
    against a baseline run, plots (training curves, scatter, weight PCA, hyper-input data
    flow), and an optional regression gate. Tables as Markdown, CSV and LaTeX; plots as
    PNG and PDF."""
    from rich.console import Console

    from iqabench.compare import compare as run_compare
    from iqabench.analysis.gate import gate_message
    from iqabench.render.tables import print_tables

    out, baseline, max_drop = values["out"], values["baseline"], values["max_drop"]
    metric = values["metric"]
    metrics = tuple(metric) if metric else ("srcc", "plcc")
    result = run_compare(runs, profiles=values["profile"], baseline_run=values["baseline_run"],
                         names=values["label"], out=out, metrics=metrics,
                         n_boot=values["n_boot"], seed=values["seed"],
                         pca_limit=values["pca_limit"], baseline_file=baseline,
                         max_drop=max_drop, plots=values["plots"], overwrite=values["force"],
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
