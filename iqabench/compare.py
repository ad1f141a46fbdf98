"""Compare training runs: load run folders, analyse, render, write the report.

``compare`` reads only what ``iqabench train`` left on disk (config.yaml, log.csv,
predictions.csv, split.csv, best.pt, through :mod:`iqabench.runfolder`), so every number
in a report traces back to a file. Test metrics are recomputed from predictions.csv, the
same per-image rows the paired test uses, so table values and differences agree.

This module only orchestrates: :mod:`iqabench.analysis` computes (loading, alignment,
paired bootstrap, gate, weight PCA), :mod:`iqabench.models.introspection` runs models
(target weights, data-flow traces), :mod:`iqabench.render` draws and writes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from iqabench import runfolder
from iqabench.analysis import alignment, gate, loading, statistics, weights
from iqabench.analysis.types import (
    REPORTED_METRICS,
    Comparison,
    FlowDiagram,
    Run,
    WeightSample,
    Written,
)
from iqabench.data import load_dataset
from iqabench.data.cache import ImageCache
from iqabench.errors import IqabenchError
from iqabench.checkpoint import load_checkpoint
from iqabench.models import introspection
from iqabench.provenance import git_commit
from iqabench.render import diagram, markdown, plots, tables

log = logging.getLogger(__name__)

#: Lists what the last ``compare`` wrote to its folder, so a ``--force`` rerun can remove
#: the files of runs no longer compared (and nothing it did not write itself).
MANIFEST = ".iqabench-compare-files"


def compare(runs: list[Path], *, profiles: list[Path] | None = None,
            baseline_run: Path | None = None, out: Path | None = None,
            metrics: tuple[str, ...] = ("srcc", "plcc"), n_boot: int = 1000, seed: int = 0,
            pca_limit: int = 200, baseline_file: Path | None = None, max_drop: float = 0.01,
            plots: bool = True, overwrite: bool = False, command: str = "") -> Comparison:
    """Load ``runs``, build every table, write tables and plots to ``out`` (when given),
    and check the regression gate against ``baseline_file`` (when given).

    The gate's outcome is in ``Comparison.gate``; raising on failure is left to the
    caller (the CLI exits non-zero). ``Comparison.files`` and ``.notes`` hold what was
    written and what the plots had to say.
    """
    metrics = tuple(dict.fromkeys(metrics))
    bad = [m for m in metrics if m not in REPORTED_METRICS]
    if bad:
        raise IqabenchError(f"unknown metric {bad[0]!r}; choose from {', '.join(REPORTED_METRICS)}")
    if n_boot < 100:
        raise IqabenchError(
            f"--n-boot {n_boot} is too few resamples for a 95% interval (>= 100)")
    if baseline_file is not None and not Path(baseline_file).is_file():
        raise IqabenchError(f"baseline file {baseline_file} not found")
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise IqabenchError(f"--out {out} exists and is not a folder")
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            raise IqabenchError(
                f"--out {out} is not empty; choose a new folder or pass --force")
    comparison = analyse(runs, baseline_run=baseline_run, profiles=profiles, metrics=metrics,
                         n_boot=n_boot, seed=seed, command=command)
    if baseline_file is not None:  # before writing: the file may live in ``out``
        comparison.gate = gate.check_gate(comparison.summary, Path(baseline_file), metrics,
                                          max_drop)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        before = {f.name: f.stat().st_mtime_ns for f in out.iterdir() if f.is_file()}
        written = tables.write_tables(comparison, out)
        if plots:
            written += write_plots(comparison, out, pca_limit=pca_limit, seed=seed)
        comparison.files += written.files
        comparison.notes += written.notes
        report = markdown.write_report(
            comparison, out, plots=written.files, commit=git_commit(),
            date=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        comparison.files += report.files
        _replace_manifest(out, before)
    return comparison


def analyse(runs: list[Path], *, baseline_run: Path | None = None,
            profiles: list[Path] | None = None, metrics: tuple[str, ...] = ("srcc", "plcc"),
            n_boot: int = 1000, seed: int = 0, command: str = "") -> Comparison:
    """Every table of a comparison (no files written, no gate)."""
    loaded, base = loading.load_runs(list(runs), baseline_run)
    per_round = statistics.round_metrics(loaded)
    return Comparison(
        runs=loaded, baseline=base, metrics=metrics, per_round=per_round,
        summary=runfolder.aggregate_rounds(per_round, ("run", "dataset")),
        validation=statistics.validation_results(loaded),
        paired=statistics.paired_comparisons(loaded, base, metrics, n_boot, seed),
        profiles=loading.read_profiles(list(profiles or [])), command=command)


# --------------------------------------------------------------------------- plots


def write_plots(comp: Comparison, out: Path, pca_limit: int = 200, seed: int = 0) -> Written:
    """Validation curves, scatter plots, weight PCA (``pca_limit`` test images per run;
    0 skips it) and the data-flow diagram, in that order."""
    written = plots.plot_validation_curves(comp, out)
    written += plots.plot_scatter(alignment.scatter_figures(comp), out)
    if pca_limit <= 0:
        written += Written(notes=["--pca-limit 0: weight PCA skipped"])
    else:
        samples, notes = weight_samples(comp.runs, limit=pca_limit, seed=seed)
        figures = weights.pca_figures(samples, comp.baseline.label, [r.label for r in comp.runs])
        written += Written(notes=notes) + plots.plot_weight_pca(figures, out)
    diagrams, notes = flow_diagrams(comp.runs)
    return written + diagram.plot_dataflow(diagrams, out) + Written(notes=notes)


def weight_sample(run: Run, limit: int = 200, seed: int = 0) -> WeightSample:
    """Generated target-network weights of up to ``limit`` test images of the run's
    training dataset, from the first round's ``best.pt`` (one center crop per image).

    Raises :class:`IqabenchError` when the checkpoint or the dataset is unavailable.
    """
    rnd = run.rounds[0]
    if not rnd.checkpoint.is_file():
        raise IqabenchError(f"{rnd.checkpoint} not found")
    dataset = run.train_dataset
    try:
        table = load_dataset(dataset, rnd.config.root)
    except (OSError, IqabenchError) as err:
        raise IqabenchError(f"dataset {dataset!r} unavailable: {err}") from err
    names = list(rnd.predictions.loc[rnd.predictions["dataset"] == dataset, "name"])
    if not names and (rnd.path / runfolder.SPLIT).is_file():
        split = runfolder.read_csv(rnd.path / runfolder.SPLIT, ("name", "subset"))
        names = split.loc[split["subset"] == "test", "name"].astype(str).tolist()
    frame = table.frame.assign(name=table.frame["name"].astype(str)).set_index("name")
    names = [n for n in names if n in frame.index]
    if len(names) < 3:
        raise IqabenchError(f"fewer than 3 test images of {dataset} found for {run.label}")
    if len(names) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(names), size=limit, replace=False))
        names = [names[i] for i in keep]
    model, _ = load_checkpoint(rnd.checkpoint)
    cache = ImageCache.build(table, names=names)
    params = introspection.target_weights(model, [cache[n] for n in names],
                                          crop_size=model.config.input_size)
    rows = frame.loc[names].reset_index()
    groups, kind = weights.colour_groups(rows)
    return WeightSample(run=run.label, dataset=dataset, names=names, params=params,
                        groups=groups, group_kind=kind, mos=rows["mos"].to_numpy(float),
                        round=rnd.round)


def weight_samples(runs: list[Run], limit: int = 200, seed: int = 0
                   ) -> tuple[dict[str, WeightSample], list[str]]:
    """:func:`weight_sample` of every run that has one, by label, and a note for each
    run that has none."""
    samples, notes = {}, []
    for run in runs:
        try:
            samples[run.label] = weight_sample(run, limit=limit, seed=seed)
        except IqabenchError as err:
            notes.append(f"weight PCA skipped for {run.label}: {err}")
    return samples, notes


def flow_diagrams(runs: list[Run]) -> tuple[list[FlowDiagram], list[str]]:
    """Traced before/after shapes for each backbone and input size among ``runs``, and
    a note for each that could not be traced."""
    diagrams, notes, done = [], [], set()
    for run in runs:
        key = (run.backbone, run.input_size)
        if key in done:
            continue
        done.add(key)
        try:
            before = introspection.trace_hyper_flow(run.config.model, "last")
            after = introspection.trace_hyper_flow(run.config.model, "multiscale")
        except IqabenchError as err:
            notes.append(f"data-flow diagram skipped for {run.backbone}: {err}")
            continue
        diagrams.append(FlowDiagram(backbone=run.backbone, input_size=run.input_size,
                                    before=before, after=after))
    return diagrams, notes


# --------------------------------------------------------------------------- manifest


def _replace_manifest(out: Path, before: dict[str, int]) -> None:
    written = sorted(f.name for f in out.iterdir()
                     if f.is_file() and f.name != MANIFEST
                     and before.get(f.name) != f.stat().st_mtime_ns)
    manifest = out / MANIFEST
    previous = set(manifest.read_text().split("\n")) if manifest.is_file() else set()
    stale = sorted(name for name in previous - set(written) if name and (out / name).is_file())
    for name in stale:
        (out / name).unlink()
    if stale:
        log.warning("removed %d file(s) of the previous compare in %s that this one did not "
                    "write: %s", len(stale), out, ", ".join(stale))
    manifest.write_text("\n".join(written) + "\n")
