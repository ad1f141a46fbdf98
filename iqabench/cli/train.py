"""`iqabench train` and `iqabench summary`: flags -> TrainConfig -> iqabench.training.fit.

Every flag left out keeps the value from ``--config FILE`` (or the run being resumed),
else the recipe's, else the default in :class:`iqabench.config.TrainConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.console import Console
from rich.table import Table

from iqabench.config import TrainConfig, parse_test_set, resolve_train_config
from iqabench.errors import IqabenchError

DATA = "Data and split"
MODEL = "Model"
LOSS = "Loss"
OPTIM = "Optimisation"
EVAL = "Evaluation"
RUN = "Run"


def train(
    dataset: Annotated[Optional[str], typer.Option(help="Training dataset id (e.g. koniq10k, livec, agiqa3k, synthetic).", rich_help_panel=DATA)] = None,
    root: Annotated[Optional[Path], typer.Option(help="The dataset folder as distributed.", rich_help_panel=DATA)] = None,
    test: Annotated[Optional[list[str]], typer.Option("--test", help="Also test on a whole other dataset, ID:DIR (repeatable; cross-dataset).", rich_help_panel=DATA)] = None,
    split_kind: Annotated[Optional[Literal["random", "official"]], typer.Option(help="Random seeded rounds or the dataset's official split.", rich_help_panel=DATA)] = None,
    split: Annotated[Optional[Path], typer.Option(help="Reuse a saved split: a split.csv or a run folder holding one.", rich_help_panel=DATA)] = None,
    test_fraction: Annotated[Optional[float], typer.Option(help="Share of images (by content) held out for test. \\[default: 0.2]", rich_help_panel=DATA)] = None,
    val_fraction: Annotated[Optional[float], typer.Option(help="Share of the training part used to pick the epoch. \\[default: 0.1]", rich_help_panel=DATA)] = None,
    limit: Annotated[Optional[int], typer.Option(help="Use only N images per dataset (seeded subset; quick runs).", rich_help_panel=DATA)] = None,
    skip_bad: Annotated[Optional[bool], typer.Option("--skip-bad", help="Leave out unreadable images; they are listed in RUN/skipped.csv.", rich_help_panel=DATA)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seeds splits, initialisation and crops. \\[default: 0]", rich_help_panel=DATA)] = None,
    rounds: Annotated[Optional[int], typer.Option(help="Random splits to train; >1 writes RUN/round_XX/ and RUN/summary.csv. \\[default: 1]", rich_help_panel=DATA)] = None,
    round: Annotated[Optional[int], typer.Option("--round", help="Train only round K (0-based) into RUN/round_KK/, e.g. one SLURM array task.", rich_help_panel=DATA)] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Any timm model with features_only. \\[default: resnet50]", rich_help_panel=MODEL)] = None,
    hyper_input: Annotated[Optional[Literal["last", "multiscale"]], typer.Option(help="What the hyper network sees: the last stage (original) or all stages.", rich_help_panel=MODEL)] = None,
    crop_size: Annotated[Optional[int], typer.Option(help="Crop (model input) size in px. \\[default: 224]", rich_help_panel=MODEL)] = None,
    init: Annotated[Optional[Literal["original", "centered"]], typer.Option(help="Head initialisation; 'centered' starts predictions near the label mean.", rich_help_panel=MODEL)] = None,
    weights: Annotated[Optional[Path], typer.Option(help="Local backbone weights file (offline; see `iqabench weights convert-lite`).", rich_help_panel=MODEL)] = None,
    pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained", help="ImageNet backbone weights from the timm hub. \\[default: pretrained]", rich_help_panel=MODEL)] = None,
    loss: Annotated[Optional[Literal["l1", "rank", "l1+rank"]], typer.Option(help="L1, pairwise ranking hinge, or L1 + alpha * rank.", rich_help_panel=LOSS)] = None,
    alpha: Annotated[Optional[float], typer.Option(help="Weight of the ranking term. \\[default: 1]", rich_help_panel=LOSS)] = None,
    margin: Annotated[Optional[float], typer.Option(help="Ranking margin in [0,1] label units (scaled by the MOS range for raw labels). \\[default: 0.1]", rich_help_panel=LOSS)] = None,
    label_scale: Annotated[Optional[Literal["unit", "raw"]], typer.Option(help="'unit': labels normalised to [0,1] by the MOS range; 'raw': MOS as distributed.", rich_help_panel=LOSS)] = None,
    optimizer: Annotated[Optional[Literal["adam", "adamw"]], typer.Option(help="Optimiser.", rich_help_panel=OPTIM)] = None,
    lr: Annotated[Optional[float], typer.Option(help="Backbone learning rate. \\[default: 1e-4]", rich_help_panel=OPTIM)] = None,
    head_lr_ratio: Annotated[Optional[float], typer.Option(help="Heads train at lr x this. \\[default: 10]", rich_help_panel=OPTIM)] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Weight decay. \\[default: 5e-4]", rich_help_panel=OPTIM)] = None,
    schedule: Annotated[Optional[Literal["none", "cosine", "step", "original"]], typer.Option(help="Learning-rate schedule (per step; 'original' = Hyper-IQA's head decay).", rich_help_panel=OPTIM)] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs. \\[default: 6]", rich_help_panel=OPTIM)] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Crops per step (per process). \\[default: 32]", rich_help_panel=OPTIM)] = None,
    crops_per_image: Annotated[Optional[int], typer.Option(help="Random training crops per image per epoch. \\[default: 1; original recipe 25]", rich_help_panel=OPTIM)] = None,
    eval_crops: Annotated[Optional[int], typer.Option(help="Crops per test image (a square number for grid). \\[default: 9 = 3x3 grid; original recipe 25]", rich_help_panel=EVAL)] = None,
    val_crops: Annotated[Optional[int], typer.Option(help="Crops per validation image, every epoch. \\[default: 4]", rich_help_panel=EVAL)] = None,
    eval_crop_mode: Annotated[Optional[Literal["grid", "center", "random", "full"]], typer.Option(help="Test-time crops. \\[default: grid]", rich_help_panel=EVAL)] = None,
    eval_batch_size: Annotated[Optional[int], typer.Option(help="Crops per forward pass when scoring. \\[default: 32]", rich_help_panel=EVAL)] = None,
    bootstrap: Annotated[Optional[int], typer.Option(help="Bootstrap resamples for the SRCC 95% interval. \\[default: 1000]", rich_help_panel=EVAL)] = None,
    recipe: Annotated[Optional[Literal["default", "original"]], typer.Option(help="'original': Hyper-IQA's own recipe (25 crops, batch 96, 16 epochs, raw L1), defects fixed.", rich_help_panel=RUN)] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML or YAML file of config keys (as in a run's config.yaml); flags override it.", rich_help_panel=RUN)] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run folder to write.", rich_help_panel=RUN)] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this folder from its last.pt.", rich_help_panel=RUN)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing run folder's files.", rich_help_panel=RUN)] = False,
    device: Annotated[Optional[Literal["auto", "cpu", "cuda"]], typer.Option(help="Device. \\[default: auto]", rich_help_panel=RUN)] = None,
    amp: Annotated[Optional[Literal["auto", "none", "bf16", "fp16"]], typer.Option(help="Mixed precision; auto = bf16 on CUDA, none on CPU.", rich_help_panel=RUN)] = None,
    channels_last: Annotated[Optional[bool], typer.Option("--channels-last/--no-channels-last", help="NHWC memory layout. \\[default: on]", rich_help_panel=RUN)] = None,
    compile: Annotated[Optional[bool], typer.Option("--compile", help="torch.compile the model.", rich_help_panel=RUN)] = None,
    workers: Annotated[Optional[int], typer.Option(help="Decode threads (0: one per core, at most 8).", rich_help_panel=RUN)] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Keep decoded pixels here to reuse in later runs.", rich_help_panel=RUN)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.", rich_help_panel=RUN)] = False,
) -> None:
    """Train Hyper-IQA, pick the epoch on validation, score the test split and --test sets.

    Writes RUN/config.yaml, split.csv, log.csv, best.pt, last.pt, predictions.csv and
    test_metrics.csv. Flags override --config FILE, which overrides --recipe.
    """
    from iqabench.training import fit

    flat = {
        "dataset": dataset, "root": root, "split_kind": split_kind, "split": split,
        "test_fraction": test_fraction, "val_fraction": val_fraction, "limit": limit,
        "skip_bad": skip_bad, "seed": seed, "rounds": rounds, "round": round,
        "weights": weights, "pretrained": pretrained, "loss": loss, "alpha": alpha,
        "margin": margin, "label_scale": label_scale, "optimizer": optimizer, "lr": lr,
        "head_lr_ratio": head_lr_ratio, "weight_decay": weight_decay, "schedule": schedule,
        "epochs": epochs, "batch_size": batch_size, "crops_per_image": crops_per_image,
        "eval_crops": eval_crops, "val_crops": val_crops, "eval_crop_mode": eval_crop_mode,
        "eval_batch_size": eval_batch_size, "n_boot": bootstrap, "recipe": recipe,
        "out": out, "device": device, "amp": amp, "channels_last": channels_last,
        "compile": compile, "workers": workers, "cache_dir": cache_dir,
    }
    overrides = {k: str(v) if isinstance(v, Path) else v for k, v in flat.items() if v is not None}
    model = {"backbone": backbone, "hyper_input": hyper_input, "input_size": crop_size,
             "init": init}
    model = {k: v for k, v in model.items() if v is not None}
    if model:
        overrides["model"] = model
    if test:
        overrides["tests"] = [parse_test_set(t) for t in test]

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

    result = fit(cfg, resume=resume is not None, force=force, progress=None if not quiet else False)
    _print_metrics(result, cfg)


def _print_metrics(result, cfg: TrainConfig) -> None:
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
        ci = "not computed (--bootstrap 0)" if low is None or low != low else f"{low:.3f}-{high:.3f}"
        table.add_row(str(row["dataset"]), str(row["n"]), f"{row['srcc']:.4f}",
                      f"{row['plcc']:.4f}", ci)
    console.print(table)


def summary(
    run_dir: Annotated[Path, typer.Argument(help="A multi-round run folder (holding round_XX/).")],
) -> None:
    """Aggregate the finished rounds of a run into RUN/test_metrics.csv and RUN/summary.csv."""
    from iqabench.runfolder import summarize

    frame = summarize(run_dir)
    console = Console()
    table = Table(title=f"{run_dir}: over rounds")
    for col in frame.columns:
        table.add_column(col)
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
