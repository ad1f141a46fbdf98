"""`iqabench train` and `iqabench summary`: flags -> TrainConfig -> iqabench.training.fit.

The train flags are the TrainConfig fields (:data:`iqabench.cli.options.TRAIN_FLAGS`),
with the schema's defaults and descriptions. Every flag left out keeps the value from
``--config FILE`` (or the run being resumed), else the recipe's, else the schema default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from iqabench.cli import options
from iqabench.errors import IqabenchError


@options.takes(*options.TRAIN_FLAGS, "config", "resume", "force", "quiet", panels=True,
               help={"force": "Replace an existing run folder's files.",
                     "dataset": "Training dataset id (e.g. koniq10k, livec, agiqa3k, "
                                "synthetic). Required, here or in --config FILE.",
                     "split": "Reuse a saved split: a split.csv or a run folder holding one."})
def train(**values) -> None:
    """Train Hyper-IQA, pick the epoch on validation, score the test split and --test sets.

    Writes RUN/config.yaml, split.csv, log.csv, best.pt, last.pt, predictions.csv and
    test_metrics.csv. Flags override --config FILE, which overrides --recipe (the
    defaults shown are those of the default recipe).
    """
    from iqabench.config import resolve_train_config
    from iqabench.training import fit

    overrides = options.train_overrides(options.given(values))
    config, resume, out = values["config"], values["resume"], values["out"]
    if resume is not None:
        if config is not None:
            raise IqabenchError("--resume takes the run's own config.yaml; drop --config")
        if out is not None and Path(out) != resume:
            raise IqabenchError(f"--resume {resume} writes into that folder; drop --out {out}")
        saved = resume / "config.yaml"
        if not saved.is_file():
            raise IqabenchError(f"--resume {resume}: no config.yaml there (not a run folder)")
        overrides["out"] = str(resume)
        cfg = resolve_train_config(saved, overrides)
    else:
        cfg = resolve_train_config(config, overrides)
    if cfg.out is None:
        raise IqabenchError("no run folder: pass --out RUN_DIR")

    result = fit(cfg, resume=resume is not None, force=values["force"],
                 progress=None if not values["quiet"] else False)
    _print_metrics(result)


def _print_metrics(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if result.summary is not None and len(result.summary):
        table = Table(title=f"{result.run_dir}: median over rounds")
        for col in ("dataset", "metric", "rounds", "median", "mean", "std"):
            table.add_column(col)
        for row in result.summary.to_dict("records"):
            for metric in ("srcc", "plcc"):
                table.add_row(str(row["dataset"]), metric, str(row["rounds"]),
                              f"{row[metric]:.4f}", f"{row[f'{metric}_mean']:.4f}",
                              f"{row[f'{metric}_std']:.4f}")
        console.print(table)
        return
    if result.test_metrics is None or result.test_metrics.empty:
        return
    table = Table(title=f"{result.run_dir}: test (best epoch {result.best_epoch})")
    for col in ("dataset", "n", "SRCC", "PLCC", "SRCC 95% CI"):
        table.add_column(col)
    for row in result.test_metrics.to_dict("records"):
        low, high = row.get("srcc_ci_low"), row.get("srcc_ci_high")
        ci = "not computed (--n-boot 0)" if low is None or low != low else f"{low:.3f}-{high:.3f}"
        table.add_row(str(row["dataset"]), str(row["n"]), f"{row['srcc']:.4f}",
                      f"{row['plcc']:.4f}", ci)
    console.print(table)


def summary(
    run_dir: Annotated[Path, typer.Argument(help="A multi-round run folder (holding round_XX/).")],
) -> None:
    """Aggregate the finished rounds of a run into RUN/test_metrics.csv and RUN/summary.csv."""
    from rich.console import Console
    from rich.table import Table

    from iqabench.runfolder import summarize

    frame = summarize(run_dir)
    console = Console()
    table = Table(title=f"{run_dir}: over rounds")
    for col in frame.columns:
        table.add_column(col)
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
