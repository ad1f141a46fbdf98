"""The training budget of a study: what each run cost on this machine and what it bought.

Reads every run folder under WORK (``WORK/NAME/round_XX/``: config.yaml, log.csv,
test_metrics.csv) and writes into OUT:

- ``budget.csv`` / ``budget.md``: one row per run: backbone, loss, hyper input, AMP, epochs,
  crops per image, rounds finished, train+validation seconds per epoch (mean, and the
  fastest epoch: other work on the machine only ever slows an epoch down, so the fastest is
  the best estimate of the rate on a machine to itself), epochs per hour, hours per round,
  the validation SRCC gained by the last epoch (how flat the curve is at the chosen epoch
  count) and the mean test SRCC/PLCC over rounds; per backbone and precision, the epochs
  per hour its fastest epoch implies;
- ``budget_curve.png`` / ``.pdf``: mean validation SRCC after each epoch against the training
  hours it costs (train + validation) at the run's fastest epoch rate, one line per run, test
  SRCC (mean over rounds) marked at the end: the SRCC-vs-budget curve of the study. The
  fastest rate, not the logged wall time, so that a run that shared the machine is not
  drawn as a costlier recipe;
- with ``--provenance``: ``PROVENANCE.md`` from ``WORK/stages.tsv`` (each stage's start, end,
  commit, machine and settings, as ``benchmarks/agiqa3k_study.sh`` appends them) and every
  round's sittings (start or resume, first epoch, commit, machine) from its environment.json.

    python -m benchmarks.study_budget runs/study --out results/agiqa3k_study
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # started as `python benchmarks/study_budget.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from iqabench import runfolder  # noqa: E402
from iqabench.errors import IqabenchError  # noqa: E402

BUDGET_COLUMNS = ("run", "backbone", "loss", "alpha", "hyper_input", "amp", "epochs",
                  "crops_per_image", "train_crops_per_epoch", "rounds_finished",
                  "s_per_epoch", "s_per_epoch_fastest", "patches_per_s", "epochs_per_hour",
                  "hours_per_round", "last_epoch_val_gain", "val_srcc_best", "test_srcc_mean",
                  "test_plcc_mean")


def round_record(round_dir: Path) -> dict | None:
    """One finished round: its config, per-epoch log and test metrics; None if unfinished."""
    if not (round_dir / runfolder.TEST_METRICS).is_file():
        return None
    cfg = runfolder.read_config(round_dir / runfolder.CONFIG)
    log = runfolder.read_log(round_dir)
    if log is None or log.empty:
        raise IqabenchError(f"{round_dir}: test_metrics.csv but no log.csv")
    metrics = runfolder.read_test_metrics(round_dir)
    own = metrics[metrics["dataset"] == cfg.dataset]
    return {"cfg": cfg, "log": log, "test": own.iloc[0] if len(own) else None}


def _mean_of(logs: list[pd.DataFrame], column: str, how=np.mean) -> float:
    """``how`` of a log column over every epoch of every round (NaN where not logged)."""
    values = [log[column].to_numpy(float) for log in logs if column in log]
    return float(how(np.concatenate(values))) if values else float("nan")


def _test_mean(tests: list[pd.Series], metric: str) -> float:
    values = [float(t.get(metric, np.nan)) for t in tests]
    return float(np.mean(values)) if values else float("nan")


def run_rows(work: Path) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The budget table and, per run, the mean validation curve over its finished rounds
    (columns epoch, hours: epochs x the run's fastest epoch, val_srcc)."""
    rows, curves = [], {}
    for run_dir in sorted(p for p in work.iterdir() if p.is_dir()):
        records = [r for d in runfolder.round_dirs(run_dir) if (r := round_record(d))]
        if not records:
            continue
        cfg = records[0]["cfg"]
        logs = [r["log"] for r in records]
        seconds = np.concatenate([log["seconds"].to_numpy() for log in logs])
        epochs = min(len(log) for log in logs)
        val = np.stack([log["val_srcc"].to_numpy()[:epochs] for log in logs])
        epoch = np.arange(1, epochs + 1)
        curves[run_dir.name] = pd.DataFrame({"epoch": epoch,
                                             "hours": epoch * seconds.min() / 3600,
                                             "val_srcc": val.mean(axis=0)})
        tests = [r["test"] for r in records if r["test"] is not None]
        rows.append({
            "run": run_dir.name, "backbone": cfg.model.backbone, "loss": cfg.loss,
            "alpha": cfg.alpha if "rank" in cfg.loss else np.nan,
            "hyper_input": cfg.model.hyper_input, "amp": cfg.amp, "epochs": cfg.epochs,
            "crops_per_image": cfg.crops_per_image,
            "train_crops_per_epoch": _mean_of(logs, "train_crops", np.median),
            "rounds_finished": len(records),
            "s_per_epoch": seconds.mean(),
            "s_per_epoch_fastest": seconds.min(),
            "patches_per_s": _mean_of(logs, "patches_per_s"),
            "epochs_per_hour": 3600 / seconds.mean(),
            "hours_per_round": np.mean([log["seconds"].sum() / 3600 for log in logs]),
            "last_epoch_val_gain": float(np.mean(val[:, -1] - val[:, -2])) if epochs > 1 else np.nan,
            "val_srcc_best": float(np.mean(val.max(axis=1))),
            "test_srcc_mean": _test_mean(tests, "srcc"),
            "test_plcc_mean": _test_mean(tests, "plcc"),
        })
    if not rows:
        raise IqabenchError(f"{work}: no finished round (round_XX/test_metrics.csv) in any run")
    return pd.DataFrame(rows, columns=list(BUDGET_COLUMNS)), curves


def plot_budget(table: pd.DataFrame, curves: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    """Validation SRCC against training hours per run, test SRCC marked at the end."""
    fig = Figure(figsize=(8, 5.2), layout="constrained")
    ax = fig.add_subplot()
    colors = matplotlib.colormaps["tab10" if len(table) <= 10 else "tab20"].colors
    for i, row in enumerate(table.itertuples(index=False)):
        curve = curves[row.run]
        line, = ax.plot(curve["hours"], curve["val_srcc"], marker="o", markersize=3,
                        color=colors[i % len(colors)],
                        label=f"{row.run} ({row.rounds_finished} "
                        f"round{'s' if row.rounds_finished != 1 else ''})")
        if not np.isnan(row.test_srcc_mean):
            ax.scatter([curve["hours"].iloc[-1]], [row.test_srcc_mean], marker="*", s=90,
                       color=line.get_color(), edgecolor="black", linewidths=0.5, zorder=3)
    ax.set_xlabel("training hours per round at the run's fastest epoch (train + validation, "
                  "this machine)")
    ax.set_ylabel("SRCC (lines: validation per epoch; stars: test, mean over rounds)")
    ax.set_title("SRCC against training budget")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    paths = []
    for ext in ("png", "pdf"):
        path = out / f"budget_curve.{ext}"
        fig.savefig(path, dpi=130)
        paths.append(path)
    return paths


def backbone_rates(table: pd.DataFrame) -> pd.DataFrame:
    """Per backbone and precision: runs, mean and fastest seconds per epoch, and the epochs
    per hour the fastest epoch implies (what to plan a budget with)."""
    rates = (table.groupby(["backbone", "amp"])
             .agg(runs=("run", "count"), s_per_epoch=("s_per_epoch", "mean"),
                  s_per_epoch_fastest=("s_per_epoch_fastest", "min"),
                  patches_per_s=("patches_per_s", "mean")).reset_index())
    rates["epochs_per_hour_fastest"] = 3600 / rates["s_per_epoch_fastest"]
    return rates


def write_budget(work: Path, out: Path) -> pd.DataFrame:
    table, curves = run_rows(work)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "budget.csv", index=False)
    shown = table.copy()
    shown["train_crops_per_epoch"] = shown["train_crops_per_epoch"].map(
        lambda v: "—" if np.isnan(v) else f"{v:.0f}")
    for col in ("s_per_epoch", "s_per_epoch_fastest", "patches_per_s", "epochs_per_hour"):
        shown[col] = shown[col].map(lambda v: f"{v:.1f}")
    for col in ("hours_per_round",):
        shown[col] = shown[col].map(lambda v: f"{v:.2f}")
    shown["last_epoch_val_gain"] = shown["last_epoch_val_gain"].map(
        lambda v: "—" if np.isnan(v) else f"{v:+.4f}")
    for col in ("val_srcc_best", "test_srcc_mean", "test_plcc_mean"):
        shown[col] = shown[col].map(lambda v: "—" if np.isnan(v) else f"{v:.4f}")
    shown["alpha"] = shown["alpha"].map(lambda v: "—" if np.isnan(v) else f"{v:g}")
    text = "\n".join([
        "# Training budget of the study",
        "",
        "One row per run folder, over its finished rounds. `s_per_epoch`: wall seconds of one "
        "epoch (training on every crop once, then validation), mean over epochs and rounds; "
        "`s_per_epoch_fastest`: the fastest of those epochs (other work on the machine only "
        "slows an epoch down, so this is the best estimate of the rate on a machine to "
        "itself); `epochs_per_hour` = 3600 / s_per_epoch; `hours_per_round`: the epochs' "
        "seconds summed (test scoring, a minute or two, not included); `last_epoch_val_gain`: "
        "validation SRCC after the last epoch minus after the one before (mean over rounds): "
        "near 0 means the curve has flattened at this epoch count; `val_srcc_best`: best "
        "validation SRCC (the "
        "epoch kept), mean over rounds; test columns: mean over rounds.",
        "",
        shown.to_markdown(index=False, disable_numparse=True),
        "",
        "## Epochs per hour per backbone and precision",
        "",
        backbone_rates(table).round(1).to_markdown(index=False),
        "",
        "![SRCC against training budget](budget_curve.png)",
        "",
        "The curve puts each epoch at the run's fastest epoch rate (epoch x "
        "`s_per_epoch_fastest`): what the recipe costs on this machine to itself, not how "
        "long a run that shared the machine happened to take.",
        "",
        f"Written by `python -m benchmarks.study_budget {work} --out {out}` from the run "
        "folders' log.csv and test_metrics.csv; the machine and dates are in PROVENANCE.md.",
        "",
    ])
    (out / "budget.md").write_text(text)
    plot_budget(table, curves, out)
    return table


def sittings_table(work: Path) -> pd.DataFrame:
    """One row per sitting of every round (its start, or a resume from its last saved epoch),
    from the rounds' environment.json: a stage that ran in several sittings records only its
    last one in stages.tsv, so this is where the commit that trained each epoch is named."""
    rows = []
    for run_dir in sorted(p for p in work.iterdir() if p.is_dir()):
        for round_dir in runfolder.round_dirs(run_dir):
            finished = (round_dir / runfolder.TEST_METRICS).is_file()
            for record in runfolder.read_environment(round_dir) or []:
                rows.append({
                    "run": run_dir.name,
                    "round": int(round_dir.name.removeprefix("round_")),
                    "started": record.get("started", "—"),
                    "from_epoch": int(record.get("start_epoch", 0)) + 1,
                    "commit": record.get("commit") or "—",
                    "machine": f"{record.get('cpu', '?')}, {record.get('cpu_count', '?')} cores, "
                               f"{record.get('gpu') or 'no GPU'}",
                    "round_finished": "yes" if finished else "no",
                })
    return pd.DataFrame(rows, columns=["run", "round", "started", "from_epoch", "commit",
                                       "machine", "round_finished"])


def write_provenance(work: Path, out: Path, command: str) -> Path:
    stages_file = work / "stages.tsv"
    if not stages_file.is_file():
        raise IqabenchError(f"{stages_file}: no stage records (run benchmarks/agiqa3k_study.sh)")
    stages = pd.read_csv(stages_file, sep="\t", dtype=str, keep_default_na=False)
    sittings = sittings_table(work)
    starts = [t for t in sittings["started"] if t != "—"]
    text = "\n".join([
        "# Provenance",
        "",
        f"- command: `{command}` (stages may have run in several sittings; each stage's last "
        "sitting and every round's sittings are below)",
        f"- started: {min(starts) if starts else stages['started'].min()} (first training "
        f"round); finished: {stages['finished'].max()} (last stage)",
        "- every run's own config.yaml, environment.json (commit, versions, machine) and "
        "train.log are in its run folder",
        "",
        "## Stages",
        "",
        stages.to_markdown(index=False),
        "",
        "## Training sittings",
        "",
        "A stage above is recorded once, by the sitting that finished it. Every round's "
        "sittings are below: its start, and each resume (from_epoch: the first epoch that "
        "sitting trained, from the previous sitting's last.pt), with the commit and machine "
        "it ran on, from the round's environment.json.",
        "",
        sittings.to_markdown(index=False) if len(sittings) else "(no round has an environment.json)",
        "",
    ])
    path = out / "PROVENANCE.md"
    path.write_text(text)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="the study's work folder (one run folder per run)")
    parser.add_argument("--out", type=Path, required=True, help="folder for budget.md/csv, the plot")
    parser.add_argument("--provenance", action="store_true",
                        help="also write OUT/PROVENANCE.md from WORK/stages.tsv")
    parser.add_argument("--command", default="bash benchmarks/agiqa3k_study.sh",
                        help="the command the study ran as (for PROVENANCE.md)")
    args = parser.parse_args(argv)
    try:
        if not args.work.is_dir():
            raise IqabenchError(f"{args.work}: no such folder")
        table = write_budget(args.work, args.out)
        print(f"wrote {args.out / 'budget.md'} ({len(table)} runs)")
        if args.provenance:
            print(f"wrote {write_provenance(args.work, args.out, args.command)}")
    except IqabenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
