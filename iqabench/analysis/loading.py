"""Run folders and profile outputs read back for comparison.

Every file is read through :mod:`iqabench.runfolder` (names, columns, config.yaml as a
typed :class:`~iqabench.config.TrainConfig`), so a change in the run-folder format
shows up here at once.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from iqabench import runfolder
from iqabench.analysis.types import RoundResult, Run
from iqabench.errors import IqabenchError

#: The table ``iqabench profile --out DIR`` writes into DIR.
PROFILE_CSV = "profile.csv"


def load_round(folder: Path, index: int = 0) -> RoundResult:
    """One round folder: ``config.yaml`` and ``predictions.csv`` required, ``log.csv``
    optional (validation tables then say so). Only test rows of the ``best`` checkpoint
    count; the round number is the config's, else ``index``."""
    folder = Path(folder)
    config = runfolder.read_config(folder)
    preds = runfolder.read_predictions(folder)
    if "subset" in preds.columns:  # only test images count; never train/val rows
        preds = preds[~preds["subset"].astype(str).isin(["train", "val"])]
    if "checkpoint" in preds.columns and (preds["checkpoint"] == "best").any():
        preds = preds[preds["checkpoint"] == "best"]
    dup = preds.duplicated(["dataset", "name"])
    if dup.any():
        row = preds[dup].iloc[0]
        raise IqabenchError(f"{folder / runfolder.PREDICTIONS} has more than one row for "
                            f"{row['dataset']}/{row['name']}")
    round_no = config.round if config.round is not None else index
    return RoundResult(path=folder, round=int(round_no), config=config,
                       predictions=preds.reset_index(drop=True), log=runfolder.read_log(folder),
                       checkpoint=folder / runfolder.BEST)


def load_run(path: str | Path) -> Run:
    """A run folder: itself a round (``config.yaml`` inside) or a parent of ``round_XX/``
    (its own config.yaml beside them is the rounds' shared config: the rounds win)."""
    path = Path(path)
    folders = [f for f in runfolder.round_dirs(path) if (f / runfolder.CONFIG).is_file()]
    if not folders and (path / runfolder.CONFIG).is_file():
        folders = [path]
    if not folders:
        raise IqabenchError(f"{path} is not a run folder: no {runfolder.CONFIG} and no "
                            "round_XX/ inside")
    return Run(path=path, rounds=[load_round(f, runfolder.round_index(f) or 0) for f in folders])


def label_runs(runs: list[Run]) -> None:
    """Label each run by its config; runs whose configs read the same get their folder
    name appended (e.g. two seeds of one variant)."""
    base = [r.config_label() for r in runs]
    for run, label in zip(runs, base):
        run.label = label if base.count(label) == 1 else f"{label}@{run.path.name}"
    labels = [r.label for r in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = f"{run.config_label()}@{run.path}"
    if len({r.label for r in runs}) < len(runs):
        dup = next(r.path for r in runs if labels.count(r.label) > 1)
        raise IqabenchError(f"run folder {dup} is given twice")


def load_runs(paths: list[Path], baseline: Path | None = None) -> tuple[list[Run], Run]:
    """Runs in the order given, the baseline first (added when not among ``paths``)."""
    if not paths:
        raise IqabenchError("no run folders given")
    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) < len(resolved):
        dup = next(p for p in paths if resolved.count(Path(p).resolve()) > 1)
        raise IqabenchError(f"run folder {dup} is given twice")
    order = list(paths)
    if baseline is not None:
        b = Path(baseline).resolve()
        order = [paths[resolved.index(b)]] if b in resolved else [baseline]
        order += [p for p, r in zip(paths, resolved) if r != b]
    runs = [load_run(p) for p in order]
    label_runs(runs)
    return runs, runs[0]


def read_profiles(paths: list[Path]) -> pd.DataFrame | None:
    """Rows of ``profile.csv`` files (a folder means ``FOLDER/profile.csv``), each row
    with the file it came from in ``source``."""
    frames = []
    for p in paths:
        p = Path(p)
        csv = p / PROFILE_CSV if p.is_dir() else p
        if not csv.is_file():
            raise IqabenchError(
                f"profile output {csv} not found (run 'iqabench profile --out DIR')")
        frame = runfolder.read_csv(csv, ("backbone", "params_m"))
        frames.append(frame.assign(source=str(csv)))
    return pd.concat(frames, ignore_index=True) if frames else None
