"""`iqabench eval`: flags -> EvalConfig -> iqabench.evaluation.evaluate_checkpoint."""

from __future__ import annotations

import sys

from iqabench.cli import options

AS_TESTED = "as the run was tested"
#: Flags that, left out, take the value of the run the checkpoint (or --split) came from.
FROM_RUN = {"dataset": "the --split run's", "root": "the --split run's",
            "eval_crop_mode": AS_TESTED, "eval_crops": AS_TESTED, "eval_batch_size": AS_TESTED}


@options.takes("checkpoint", "dataset", "root", "split", "subset", "eval_crop_mode",
               "eval_crops", "eval_batch_size", "logistic", "n_boot", "limit", "seed",
               "device", "amp", "channels_last", "compile", "out", from_run=FROM_RUN,
               help={"dataset": "Dataset id to score (default: the --split run's dataset).",
                     "split": "A run folder or split.csv: score its --subset only. Without it, "
                              "EVERY image of the dataset, training images included.",
                     "limit": "Score only N of the images, a subset drawn with --seed (quick "
                              "checks).",
                     "seed": "Seeds the --limit subset.",
                     "out": "Folder for predictions.csv and metrics.csv."})
def evaluate(**values) -> None:
    """Score a checkpoint: per-image predictions, SRCC/PLCC/KRCC/RMSE, bootstrap 95% CIs.

    With --split RUN it scores the run's test images with the run's dataset, folder and
    crops, reproducing its test_metrics.csv.
    """
    from rich.console import Console
    from rich.table import Table

    from iqabench.config import EvalConfig
    from iqabench.evaluation import evaluate_checkpoint

    typed = options.given(values)
    settings = {k: v for k, v in values.items() if k not in FROM_RUN or k in typed}
    settings = {k: str(v) if hasattr(v, "__fspath__") else v for k, v in settings.items()}
    cfg = EvalConfig(**settings)
    stderr = Console(stderr=True, soft_wrap=True)  # paths stay whole on one line
    result = evaluate_checkpoint(cfg, progress=sys.stderr.isatty())
    for warning in result.warnings:  # e.g. which images were scored without --split
        stderr.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    m = result.metrics
    table = Table(title=f"{values['checkpoint']} on {m['dataset']} ({m['n']} images)")
    table.add_column("metric")
    table.add_column("value")
    table.add_column("95% CI")
    for key in ("srcc", "plcc", "krcc", "rmse"):
        low, high = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
        ci = f"{low:.4f}-{high:.4f}" if low is not None and low == low else ""
        value = f"{m[key]:.4f}" if m[key] == m[key] else "n/a (needs a common scale)"
        table.add_row(key.upper(), value, ci)
    if cfg.logistic:
        table.add_row(f"PLCC (logistic {cfg.logistic})", f"{m['plcc_logistic']:.4f}", "")
    Console().print(table)
    if result.out_dir:
        stderr.print(f"wrote {result.out_dir / 'predictions.csv'} and metrics.csv")
