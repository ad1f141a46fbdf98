"""Run folders and profile outputs read back for comparison.

Every file is read through :mod:`iqabench.runfolder` (names, columns, config.yaml as a
typed :class:`~iqabench.config.TrainConfig`), so a change in the run-folder format
shows up here at once.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from iqabench import runfolder
from iqabench.analysis.types import RoundResult, Run
from iqabench.errors import IqabenchError

#: The table ``iqabench profile --out DIR`` writes into DIR.
PROFILE_CSV = "profile.csv"


def load_round(folder: Path, index: int = 0) -> RoundResult:
    """One round folder: ``config.yaml`` and ``predictions.csv`` required, ``log.csv``
    and ``steps.csv`` optional (validation tables and loss curves then say so). Only
    test rows of the ``best`` checkpoint count; the round number is the config's, else
    ``index``."""
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
                       checkpoint=folder / runfolder.BEST, steps=runfolder.read_steps(folder),
                       environment=runfolder.read_environment(folder))


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


#: Backbone names shortened in run names: (pattern, replacement), first match wins.
SHORT_BACKBONES = ((r"^(tf_)?efficientnet_lite(\d)$", r"lite\2"),
                   (r"^swin_(tiny|small|base|large)_.*$", lambda m: f"swin-{m.group(1)[0]}"),
                   (r"^convnext_(tiny|small|base|large)$", lambda m: f"convnext-{m.group(1)[0]}"))
#: Separator of the parts of a derived run name.
NAME_SEP = " · "


def short_backbone(backbone: str) -> str:
    """``tf_efficientnet_lite0`` -> ``lite0``, ``swin_tiny_patch4_window7_224`` ->
    ``swin-t``; other names as they are."""
    for pattern, repl in SHORT_BACKBONES:
        if re.match(pattern, backbone):
            return re.sub(pattern, repl, backbone)
    return backbone


def short_loss(run: Run) -> str:
    """``L1``, ``L1+2·rank`` (L1 plus alpha times the ranking term) or ``rank``."""
    if run.loss == "l1":
        return "L1"
    if run.loss == "l1+rank" and not math.isnan(run.alpha):
        return f"L1+{run.alpha:g}·rank"
    return run.loss


def derived_name(run: Run) -> str:
    """``lite0 · multiscale · L1+2·rank``: backbone, hyper input and loss."""
    return NAME_SEP.join((short_backbone(run.backbone), run.hyper_input, short_loss(run)))


def parse_names(items: list[str], paths: list[Path]) -> dict[Path, str]:
    """``NAME=RUN`` items (``--label``) as resolved run folder -> name; RUN must be one
    of ``paths`` (as given, or the same folder)."""
    known = {Path(p).resolve() for p in paths}
    names: dict[Path, str] = {}
    for item in items:
        name, sep, run = item.partition("=")
        if not sep or not name.strip() or not run.strip():
            raise IqabenchError(f"--label {item!r}: expected NAME=RUN")
        folder = Path(run.strip()).resolve()
        if folder not in known:
            raise IqabenchError(f"--label {item!r}: {run.strip()} is not among the runs compared")
        if folder in names:
            raise IqabenchError(f"--label: {run.strip()} is named twice")
        names[folder] = name.strip()
    taken = list(names.values())
    dup = next((n for n in taken if taken.count(n) > 1), None)
    if dup is not None:
        raise IqabenchError(f"--label: the name {dup!r} is given to two runs")
    return names


def name_runs(runs: list[Run], given: dict[Path, str] | None = None) -> None:
    """Short names: the ``given`` one (by resolved folder), else :func:`derived_name`;
    derived names that collide get the seed (when the seeds differ) or the folder name."""
    given = given or {}
    for run in runs:
        run.name = given.get(Path(run.path).resolve(), "")
    derived = [r for r in runs if not r.name]
    base = {id(r): derived_name(r) for r in derived}
    for run in derived:
        same = [r for r in derived if base[id(r)] == base[id(run)]]
        name = base[id(run)]
        if len(same) > 1:
            seeds = [r.config.seed for r in same]
            extra = (f"seed {run.config.seed}" if len(set(seeds)) == len(seeds)
                     else Path(run.path).name)
            name = f"{name}{NAME_SEP}{extra}"
        run.name = name
    names = [r.name for r in runs]
    for run in runs:
        if names.count(run.name) > 1:
            if run.path is not None and Path(run.path).resolve() in given:
                raise IqabenchError(f"--label: the name {run.name!r} is also another run's name")
            run.name = f"{run.name}{NAME_SEP}{run.path}"


def load_runs(paths: list[Path], baseline: Path | None = None,
              names: dict[Path, str] | None = None) -> tuple[list[Run], Run]:
    """Runs in the order given, the baseline first (added when not among ``paths``),
    labelled (:func:`label_runs`) and named (:func:`name_runs`, ``names`` by folder)."""
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
    name_runs(runs, names)
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
