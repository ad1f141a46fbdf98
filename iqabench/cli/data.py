"""`iqabench data ...`: read datasets as distributed and check them before training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from iqabench.cli import options
from iqabench.data import DATASETS

app = typer.Typer(help="Read datasets as their authors distribute them, and check them.", no_args_is_help=True)

DatasetArg = Annotated[str, typer.Argument(help=f"Dataset id: {', '.join(DATASETS)}.", show_default=False)]
RootArg = Annotated[
    Optional[Path],
    typer.Argument(help="The dataset folder as distributed (the CSV file for 'csv'; optional for 'synthetic')."),
]


@app.command("check")
@options.takes("mos_range", "workers")
def check(dataset: DatasetArg, root: RootArg = None, **values) -> None:
    """Decode every image and check every score; list each problem and exit 1 if any."""
    from iqabench.data import load_dataset
    from iqabench.data.check import format_report, scan_dataset

    table = load_dataset(dataset, root, mos_range=values["mos_range"])
    report = scan_dataset(table, workers=values["workers"] or None)
    typer.echo(format_report(report))
    if report.problems:
        raise typer.Exit(code=1)


@app.command("list")
def list_datasets() -> None:
    """Dataset ids and what ROOT each expects."""
    for name, entry in DATASETS.items():
        typer.echo(f"{name:<10} {entry.summary}")
