"""The run folder: what ``iqabench train`` writes and eval, summary and compare read.

A single-round run folder holds::

    config.yaml        the resolved TrainConfig (read back with read_config)
    split.csv          name, subset (train/val/test) of every image used
    log.csv            one row per finished epoch (LOG_COLUMNS first)
    log.jsonl          the same rows as JSON lines
    steps.csv          one row per optimiser step (STEP_COLUMNS first), written per epoch
    train.log          the run's log messages
    environment.json   where the round ran: one record per start or resume (iqabench
                       version and commit, python/torch/timm versions, device, CPU and
                       GPU model; :func:`write_environment`)
    tensorboard/       TensorBoard event files (when tensorboard is installed; see
                       :mod:`iqabench.tracking`)
    best.pt, last.pt   checkpoints: the epoch with the best validation SRCC, the latest epoch
    predictions.csv    one row per scored test image (PREDICTION_COLUMNS first), MOS units
    test_metrics.csv   one row per test set (METRIC_COLUMNS first)
    skipped.csv        unreadable images left out (only with skip_bad)

A multi-round run holds ``round_XX/`` folders in that format, its resolved config.yaml
beside them (``round`` unset), and, once rounds finish, ``test_metrics.csv`` (all rounds'
rows) and ``summary.csv`` (:func:`summarize`).

Every path, column list, writer and reader of that format is here; nothing else in
iqabench spells a run-folder file name.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from iqabench.config import TrainConfig, save_config
from iqabench.errors import IqabenchError

CONFIG = "config.yaml"
SPLIT = "split.csv"
LOG_CSV = "log.csv"
LOG_JSONL = "log.jsonl"
STEPS_CSV = "steps.csv"
TRAIN_LOG = "train.log"
ENVIRONMENT = "environment.json"
#: The folder of TensorBoard event files in a round folder.
TENSORBOARD = "tensorboard"
BEST = "best.pt"
LAST = "last.pt"
PREDICTIONS = "predictions.csv"
TEST_METRICS = "test_metrics.csv"
SUMMARY = "summary.csv"
SKIPPED = "skipped.csv"
#: What ``iqabench eval --out`` writes next to its predictions.csv.
EVAL_METRICS = "metrics.csv"

#: Files a run writes; ``--force`` removes these (and round_XX/ folders) and nothing else.
RUN_FILES = (CONFIG, SPLIT, LOG_CSV, LOG_JSONL, STEPS_CSV, BEST, LAST, PREDICTIONS,
             TEST_METRICS, SUMMARY, TRAIN_LOG, SKIPPED, ENVIRONMENT, BEST + ".tmp",
             LAST + ".tmp")
#: Folders a run writes; ``--force`` removes these too.
RUN_DIRS = (TENSORBOARD,)

#: Columns of log.csv, in order (further per-epoch values follow).
LOG_COLUMNS = ("epoch", "train_loss", "val_srcc", "val_plcc", "val_krcc", "val_rmse", "lr",
               "seconds")
#: Columns of steps.csv, in order: the epoch (1-based), the global optimiser step (1-based,
#: counted over the whole round), the step's training loss (mean over its crops and all
#: ranks), the learning rate of the backbone and of the heads that the step used, and the
#: crops it trained on (all ranks together). Loss parts (``l1``, ``rank``) follow.
STEP_COLUMNS = ("epoch", "step", "loss", "lr", "head_lr", "crops")
#: Columns of predictions.csv, in order (``group`` follows when the table has it).
PREDICTION_COLUMNS = ("dataset", "subset", "name", "mos", "pred", "content_id")
#: Columns of test_metrics.csv / metrics.csv, in order.
METRIC_COLUMNS = ("dataset", "round", "n", "srcc", "plcc", "krcc", "rmse", "plcc_logistic",
                  "srcc_ci_low", "srcc_ci_high", "checkpoint")
#: Metrics summarised over rounds (those present in the per-round rows).
SUMMARY_METRICS = ("srcc", "plcc", "krcc", "rmse", "rmse_mapped", "plcc_logistic")

_ROUND_DIR = re.compile(r"^round_(\d+)$")


# ----------------------------------------------------------------------- folders

def round_name(index: int) -> str:
    """The folder name of round ``index`` (0-based): ``round_00``."""
    return f"round_{index:02d}"


def round_index(folder: str | Path) -> int | None:
    """The round number a ``round_XX`` folder name says, None for other names."""
    match = _ROUND_DIR.match(Path(folder).name)
    return int(match.group(1)) if match else None


def round_dirs(run_dir: str | Path) -> list[Path]:
    """The ``round_XX/`` folders of a multi-round run in round order, or ``[run_dir]``
    for a single-round run (a folder without round_XX/ inside)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise IqabenchError(f"run folder {run_dir} does not exist")
    rounds = [p for p in run_dir.iterdir() if p.is_dir() and round_index(p) is not None]
    return sorted(rounds, key=round_index) or [run_dir]


# ------------------------------------------------------------------------ config

def write_config(cfg: TrainConfig, folder: str | Path) -> Path:
    """``folder/config.yaml`` from ``cfg`` (atomic: array tasks may write it at once)."""
    path = Path(folder) / CONFIG
    save_config(cfg, path)
    return path


def read_config(path: str | Path) -> TrainConfig:
    """The TrainConfig of a run: ``path`` is a run or round folder (its config.yaml) or
    the config.yaml itself. A multi-round run's folder holds the config of all its
    rounds (``round`` unset); each round folder holds its own."""
    path = Path(path)
    file = path / CONFIG if path.is_dir() else path
    if not file.is_file():
        raise IqabenchError(f"{path} is not a run folder: no {CONFIG} there")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise IqabenchError(f"{file} is not valid YAML: {err}".replace("\n", " ")) from err
    if not isinstance(data, dict):
        raise IqabenchError(f"{file} does not hold a mapping of config keys")
    return TrainConfig.from_dict(data, source=str(file))


# ---------------------------------------------------------------------- CSV files

def read_csv(path: str | Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV with the columns a run folder promises, or a one-line error naming it."""
    path = Path(path)
    if not path.is_file():
        raise IqabenchError(f"{path} not found")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise IqabenchError(f"{path} is not a readable CSV: {err}".replace("\n", " ")) from err
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise IqabenchError(f"{path} lacks column(s) {', '.join(missing)}")
    return frame


def _ordered(frame: pd.DataFrame, first: tuple[str, ...]) -> pd.DataFrame:
    head = [c for c in first if c in frame]
    return frame[head + [c for c in frame if c not in head]]


# ---------------------------------------------------------------------------- log

def append_log(folder: str | Path, row: dict) -> None:
    """Add one epoch's row to log.csv (LOG_COLUMNS first) and log.jsonl."""
    folder = Path(folder)
    path = folder / LOG_CSV
    frame = pd.DataFrame([row])
    frame = frame.reindex(columns=list(LOG_COLUMNS) + [c for c in frame if c not in LOG_COLUMNS])
    frame.to_csv(path, mode="a", header=not path.is_file(), index=False)
    with open(folder / LOG_JSONL, "a") as fh:
        fh.write(json.dumps({k: _plain(v) for k, v in row.items()}) + "\n")


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def truncate_log(folder: str | Path, epochs_done: int) -> None:
    """Drop log.csv, log.jsonl and steps.csv rows after epoch ``epochs_done`` (an epoch
    cut short before its checkpoint)."""
    folder = Path(folder)
    for name in (LOG_CSV, STEPS_CSV):
        path = folder / name
        if path.is_file():
            frame = pd.read_csv(path)
            frame[frame["epoch"] <= epochs_done].to_csv(path, index=False)
    path = folder / LOG_JSONL
    if path.is_file():
        lines = [ln for ln in path.read_text().splitlines()
                 if ln.strip() and json.loads(ln)["epoch"] <= epochs_done]
        path.write_text("".join(ln + "\n" for ln in lines))


def read_log(folder: str | Path) -> pd.DataFrame | None:
    """log.csv of a round folder (epoch, val_srcc, ...), None when there is none."""
    path = Path(folder) / LOG_CSV
    return read_csv(path, ("epoch", "val_srcc")) if path.is_file() else None


def append_steps(folder: str | Path, rows: list[dict]) -> None:
    """Add one epoch's step rows to steps.csv (STEP_COLUMNS first). The columns are those
    of the file's first rows; a later column not in the file is an error, not dropped."""
    if not rows:
        return
    path = Path(folder) / STEPS_CSV
    frame = pd.DataFrame(rows)
    if path.is_file():
        columns = pd.read_csv(path, nrows=0).columns.tolist()
        extra = [c for c in frame if c not in columns]
        if extra:
            raise IqabenchError(f"{path} has no column(s) {', '.join(extra)} for new steps")
        frame = frame.reindex(columns=columns)
    else:
        frame = frame.reindex(columns=list(STEP_COLUMNS)
                              + [c for c in frame if c not in STEP_COLUMNS])
    frame.to_csv(path, mode="a", header=not path.is_file(), index=False)


def read_steps(folder: str | Path) -> pd.DataFrame | None:
    """steps.csv of a round folder (epoch, step, loss, lr, head_lr, crops, ...), None
    when there is none (runs written before steps were logged)."""
    path = Path(folder) / STEPS_CSV
    return read_csv(path, ("epoch", "step", "loss")) if path.is_file() else None


# ------------------------------------------------------------------- environment

def write_environment(folder: str | Path, record: dict, replace: bool = False) -> Path:
    """Add ``record`` (where and with what this start or resume of the round ran) to
    environment.json, a JSON list with one record per start or resume. ``replace``: the
    record becomes the only one (a folder whose contents are rewritten wholesale, such as
    an eval output scored again)."""
    path = Path(folder) / ENVIRONMENT
    records = [] if replace else read_environment(folder) or []
    records.append({k: _plain(v) for k, v in record.items()})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(records, indent=1) + "\n")
    tmp.replace(path)
    return path


def read_environment(folder: str | Path) -> list[dict] | None:
    """The records of environment.json (first: the start), None when there is none."""
    path = Path(folder) / ENVIRONMENT
    if not path.is_file():
        return None
    try:
        records = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise IqabenchError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise IqabenchError(f"{path} does not hold a list of records")
    return records


# ----------------------------------------------------------- predictions, metrics

def write_predictions(folder: str | Path, frame: pd.DataFrame, name: str = PREDICTIONS) -> Path:
    """predictions.csv (PREDICTION_COLUMNS first)."""
    path = Path(folder) / name
    (_ordered(frame, PREDICTION_COLUMNS) if len(frame.columns) else frame).to_csv(path,
                                                                               index=False)
    return path


def read_predictions(folder: str | Path) -> pd.DataFrame:
    """predictions.csv of a round folder; dataset and name as strings."""
    path = Path(folder) / PREDICTIONS
    if not path.is_file():
        raise IqabenchError(f"{path} not found: has this round finished training?")
    frame = read_csv(path, ("dataset", "name", "mos", "pred"))
    return frame.assign(dataset=frame["dataset"].astype(str), name=frame["name"].astype(str))


def metric_frame(rows: dict | list[dict]) -> pd.DataFrame:
    """Rows of metrics as a frame with the METRIC_COLUMNS first."""
    frame = pd.DataFrame([rows] if isinstance(rows, dict) else rows)
    return _ordered(frame, METRIC_COLUMNS)


def write_test_metrics(folder: str | Path, rows: pd.DataFrame | dict | list[dict],
                       name: str = TEST_METRICS) -> Path:
    """test_metrics.csv (or ``name``, e.g. eval's metrics.csv), METRIC_COLUMNS first."""
    frame = rows if isinstance(rows, pd.DataFrame) else metric_frame(rows)
    path = Path(folder) / name
    (_ordered(frame, METRIC_COLUMNS) if len(frame.columns) else frame).to_csv(path, index=False)
    return path


def read_test_metrics(folder: str | Path) -> pd.DataFrame:
    """test_metrics.csv of a round (or of a multi-round run: every round's rows)."""
    return read_csv(Path(folder) / TEST_METRICS, ("dataset",))


# ----------------------------------------------------------------------- summary

def aggregate_rounds(per_round: pd.DataFrame, keys: tuple[str, ...] = ("dataset",)
                     ) -> pd.DataFrame:
    """One row per ``keys`` (e.g. dataset, or run and dataset) over the rounds of
    ``per_round``: ``rounds``, the median ``n``, each metric's median in its own column
    (``srcc``) and its ``srcc_mean`` and ``srcc_std`` (sample std; NaN for one round).

    Rows keep the order in which the first key appears; later keys are sorted.
    """
    metrics = [m for m in SUMMARY_METRICS if m in per_round]
    columns = [*keys, "rounds", "n", *metrics, *(f"{m}_{s}" for m in metrics
                                                  for s in ("mean", "std"))]
    rows = []
    for key, frame in per_round.groupby(list(keys), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        row["rounds"] = len(frame)
        row["n"] = int(frame["n"].median()) if "n" in frame else np.nan
        for m in metrics:
            row[m] = float(np.median(frame[m].to_numpy(dtype=float)))
        for m in metrics:
            v = frame[m].to_numpy(dtype=float)
            row[f"{m}_mean"] = float(np.mean(v))
            row[f"{m}_std"] = float(np.std(v, ddof=1)) if v.size > 1 else math.nan
        rows.append(row)
    out = pd.DataFrame(rows, columns=columns)
    if out.empty:
        return out
    first = {k: i for i, k in enumerate(dict.fromkeys(out[keys[0]]))}
    out = out.assign(_order=out[keys[0]].map(first))
    return out.sort_values(["_order", *keys[1:]], kind="stable").drop(
        columns="_order").reset_index(drop=True)


def summarize(run_dir: str | Path, write: bool = True) -> pd.DataFrame:
    """Test metrics of a run over its finished rounds (:func:`aggregate_rounds` per
    dataset). For a multi-round run, ``write`` gathers the rounds' rows into
    ``RUN/test_metrics.csv`` and writes the result to ``RUN/summary.csv``."""
    run_dir = Path(run_dir)
    folders = [f for f in round_dirs(run_dir) if (f / TEST_METRICS).is_file()]
    if not folders:
        raise IqabenchError(f"no finished rounds (round_*/{TEST_METRICS} or {TEST_METRICS}) "
                            f"in {run_dir}")
    per_round = pd.concat([read_test_metrics(f) for f in folders], ignore_index=True)
    summary = aggregate_rounds(per_round, ("dataset",))
    if write and folders != [run_dir]:
        write_test_metrics(run_dir, per_round)
        write_summary(run_dir, summary)
    return summary


def write_summary(run_dir: str | Path, summary: pd.DataFrame) -> Path:
    path = Path(run_dir) / SUMMARY
    summary.to_csv(path, index=False)
    return path


def read_summary(run_dir: str | Path) -> pd.DataFrame:
    return read_csv(Path(run_dir) / SUMMARY, ("dataset", "rounds"))


__all__ = [
    "BEST", "CONFIG", "ENVIRONMENT", "EVAL_METRICS", "LAST", "LOG_COLUMNS", "LOG_CSV",
    "LOG_JSONL", "METRIC_COLUMNS", "PREDICTIONS", "PREDICTION_COLUMNS", "RUN_DIRS",
    "RUN_FILES", "SKIPPED", "SPLIT", "STEPS_CSV", "STEP_COLUMNS", "SUMMARY",
    "SUMMARY_METRICS", "TENSORBOARD", "TEST_METRICS", "TRAIN_LOG", "aggregate_rounds",
    "append_log", "append_steps", "metric_frame", "read_config", "read_csv",
    "read_environment", "read_log", "read_predictions", "read_steps", "read_summary",
    "read_test_metrics", "round_dirs", "round_index", "round_name", "summarize",
    "truncate_log", "write_config", "write_environment", "write_predictions",
    "write_summary", "write_test_metrics",
]
