"""Compare training runs: load run folders, align per-image predictions, paired tests.

``compare`` reads only what ``iqabench train`` left on disk (see the run-folder format:
``config.yaml``, ``log.csv``, ``predictions.csv``, ``split.csv``, ``best.pt``), so every
number in a report traces back to a file.

Test metrics are recomputed from ``predictions.csv`` with :mod:`iqabench.metrics`, the
same per-image rows the paired test uses, so table values and differences agree.

Paired test, decided here
-------------------------
Two runs are compared round by round: round k of the baseline with round k of the
variant (same seed and round means the same split), or the two rounds directly when
each run has exactly one. Within a round, predictions are aligned on (dataset, name)
and only images both runs scored are used. Correlations are never pooled across
rounds (each round is a different model, with its own offset and scale); instead the
difference is the mean over paired rounds of ``metric(variant) - metric(baseline)``.
Its 95% interval comes from a two-level paired bootstrap: rounds are resampled, and
images within each round, both models scored on the same resample. With one round
this is exactly :func:`iqabench.metrics.paired_bootstrap`, and it then speaks for
test-image sampling only, not for training randomness: several rounds are needed
before a difference between training recipes can be claimed. An interval containing
0 reads "not significant"; runs without enough shared test images read "not
comparable".
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from iqabench import metrics as iqa_metrics
from iqabench import runfolder
from iqabench.errors import IqabenchError

log = logging.getLogger(__name__)

#: Fewer shared test images than this in a round and the round is not compared.
MIN_COMMON_IMAGES = 5
#: Metrics ``compare`` reports; the gate and the paired test take any of the first three.
REPORTED_METRICS = ("srcc", "plcc", "krcc", "rmse")
GATE_METRICS = ("srcc", "plcc", "krcc")
#: Columns the gate needs in a baseline file (the ``metrics.csv`` compare writes).
BASELINE_KEYS = ("run", "dataset")

_ROUND_DIR = re.compile(r"^round_(\d+)$")


@dataclass
class RoundResult:
    """One training round as written to disk."""

    path: Path
    round: int
    config: dict
    predictions: pd.DataFrame  # dataset, name, mos, pred (+ content_id, group)
    log: pd.DataFrame | None  # one row per epoch, None when log.csv is absent

    @property
    def checkpoint(self) -> Path:
        return self.path / "best.pt"


@dataclass
class Run:
    """A run folder: one round, or ``round_XX/`` subfolders aggregated over rounds."""

    path: Path
    rounds: list[RoundResult]
    label: str = ""

    @property
    def config(self) -> dict:
        return self.rounds[0].config

    @property
    def model_config(self) -> dict:
        return self.config.get("model") or {}

    @property
    def backbone(self) -> str:
        return str(self.model_config.get("backbone") or self.config.get("backbone") or "?")

    @property
    def hyper_input(self) -> str:
        return str(self.model_config.get("hyper_input") or self.config.get("hyper_input")
                   or "last")

    @property
    def loss(self) -> str:
        return str(self.config.get("loss") or "l1")

    @property
    def uses_rank(self) -> bool:
        return "rank" in self.loss

    @property
    def alpha(self) -> float:
        """Weight of the ranking term next to L1: 0 for plain L1, NaN for rank alone."""
        if self.loss == "l1":
            return 0.0
        value = self.config.get("alpha") if self.loss == "l1+rank" else None
        return float(value) if value is not None else math.nan

    @property
    def train_dataset(self) -> str:
        return str(self.config.get("dataset") or "?")

    @property
    def input_size(self) -> int:
        return int(self.model_config.get("input_size") or 224)

    def config_label(self) -> str:
        """``backbone/hyper_input/loss``, e.g. ``resnet50/last/l1+rank(0.5)``."""
        loss = self.loss
        if self.loss == "l1+rank" and not math.isnan(self.alpha):
            loss = f"{loss}({self.alpha:g})"
        return f"{self.backbone}/{self.hyper_input}/{loss}"


@dataclass
class Comparison:
    """Everything ``compare`` computed, as tables; :mod:`iqabench.reporting` renders it."""

    runs: list[Run]
    baseline: Run
    metrics: tuple[str, ...]
    per_round: pd.DataFrame  # run, round, dataset, n, srcc, plcc, krcc, rmse
    summary: pd.DataFrame  # run x dataset: median and mean/std over rounds (metrics.csv)
    validation: pd.DataFrame  # run x round: best validation epoch from log.csv
    paired: pd.DataFrame  # variant vs baseline per dataset and metric
    profiles: pd.DataFrame | None = None
    gate: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    command: str = ""  # the command line that made it, recorded in report.md

    @property
    def gate_failures(self) -> pd.DataFrame:
        if self.gate is None:
            return pd.DataFrame()
        return self.gate[self.gate["status"] != "ok"]


# --------------------------------------------------------------------------- loading


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise IqabenchError(f"{path} is not valid YAML: {err}".replace("\n", " ")) from err
    if not isinstance(data, dict):
        raise IqabenchError(f"{path} does not hold a mapping of config keys")
    return data


def read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """A CSV with the columns a run folder promises, or a one-line error naming it."""
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise IqabenchError(f"{path} is not a readable CSV: {err}".replace("\n", " ")) from err
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise IqabenchError(f"{path} lacks column(s) {', '.join(missing)}")
    return frame


def load_round(folder: Path, index: int = 0) -> RoundResult:
    """One round folder: ``config.yaml`` and ``predictions.csv`` required, ``log.csv``
    optional (validation tables then say so)."""
    config = read_yaml(folder / "config.yaml")
    pred_path = folder / "predictions.csv"
    if not pred_path.is_file():
        raise IqabenchError(f"{pred_path} not found: has this round finished training?")
    preds = read_csv(pred_path, ("dataset", "name", "mos", "pred"))
    if "subset" in preds.columns:  # only test images count; never train/val rows
        preds = preds[~preds["subset"].astype(str).isin(["train", "val"])]
    if "checkpoint" in preds.columns and (preds["checkpoint"] == "best").any():
        preds = preds[preds["checkpoint"] == "best"]
    preds = preds.assign(dataset=preds["dataset"].astype(str), name=preds["name"].astype(str))
    dup = preds.duplicated(["dataset", "name"])
    if dup.any():
        row = preds[dup].iloc[0]
        raise IqabenchError(f"{pred_path} has more than one row for {row['dataset']}/{row['name']}")
    log_path = folder / "log.csv"
    log = read_csv(log_path, ("epoch", "val_srcc")) if log_path.is_file() else None
    round_no = config.get("round")
    round_no = int(round_no) if isinstance(round_no, (int, float)) else index
    return RoundResult(path=folder, round=round_no, config=config,
                       predictions=preds.reset_index(drop=True), log=log)


def load_run(path: str | Path) -> Run:
    """A run folder: itself a round (``config.yaml`` inside) or a parent of ``round_XX/``."""
    path = Path(path)
    if not path.is_dir():
        raise IqabenchError(f"run folder {path} does not exist")
    # A multi-round run keeps its resolved config.yaml beside round_XX/: the rounds win.
    round_dirs = sorted((p for p in path.iterdir() if p.is_dir() and _ROUND_DIR.match(p.name)),
                        key=lambda p: int(_ROUND_DIR.match(p.name).group(1)))
    round_dirs = [p for p in round_dirs if (p / "config.yaml").is_file()]
    if not round_dirs and (path / "config.yaml").is_file():
        return Run(path=path, rounds=[load_round(path)])
    if not round_dirs:
        raise IqabenchError(f"{path} is not a run folder: no config.yaml and no round_XX/ inside")
    rounds = [load_round(p, int(_ROUND_DIR.match(p.name).group(1))) for p in round_dirs]
    return Run(path=path, rounds=rounds)


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
    """Rows of ``profile.csv`` files (a folder means ``FOLDER/profile.csv``)."""
    frames = []
    for p in paths:
        p = Path(p)
        csv = p / "profile.csv" if p.is_dir() else p
        if not csv.is_file():
            raise IqabenchError(
                f"profile output {csv} not found (run 'iqabench profile --out DIR')")
        frame = read_csv(csv, ("backbone", "params_m"))
        frames.append(frame.assign(source=str(csv)))
    return pd.concat(frames, ignore_index=True) if frames else None


# --------------------------------------------------------------------------- metrics


def round_metrics(runs: list[Run]) -> pd.DataFrame:
    """Test metrics of every run, round and test set, from ``predictions.csv``."""
    rows = []
    for run in runs:
        for rnd in run.rounds:
            for dataset, frame in rnd.predictions.groupby("dataset", sort=True):
                if len(frame) < 2:
                    continue
                values = iqa_metrics.compute_metrics(frame["pred"].to_numpy(),
                                                     frame["mos"].to_numpy())
                rows.append({"run": run.label, "round": rnd.round, "dataset": dataset,
                             "n": len(frame), **values})
    return pd.DataFrame(rows, columns=["run", "round", "dataset", "n", *REPORTED_METRICS])


def validation_results(runs: list[Run]) -> pd.DataFrame:
    """Best validation epoch of every round (the epoch ``best.pt`` was chosen at):
    its SRCC, and the PLCC at that same epoch."""
    rows = []
    for run in runs:
        for rnd in run.rounds:
            row = {"run": run.label, "round": rnd.round, "dataset": run.train_dataset,
                   "epochs": math.nan, "best_epoch": math.nan, "val_srcc": math.nan,
                   "val_plcc": math.nan}
            log = rnd.log
            if log is not None and log["val_srcc"].notna().any():
                best = log.loc[log["val_srcc"].idxmax()]
                row.update(epochs=len(log), best_epoch=int(best["epoch"]),
                           val_srcc=float(best["val_srcc"]),
                           val_plcc=float(best["val_plcc"]) if "val_plcc" in log else math.nan)
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- paired test


@dataclass
class Alignment:
    """Aligned test predictions of two runs on one test set, one stratum per round."""

    strata: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (mos, pred_base, pred_variant)
    rounds: list[int]
    note: str = ""

    @property
    def n_images(self) -> int:
        return sum(len(s[0]) for s in self.strata)


def pair_rounds(base: Run, variant: Run) -> list[tuple[RoundResult, RoundResult]]:
    """Round k with round k; two single-round runs are paired whatever their numbers."""
    if len(base.rounds) == 1 and len(variant.rounds) == 1:
        return [(base.rounds[0], variant.rounds[0])]
    by_round = {r.round: r for r in variant.rounds}
    return [(r, by_round[r.round]) for r in base.rounds if r.round in by_round]


def align(base: Run, variant: Run, dataset: str) -> Alignment:
    """Per paired round, the images of ``dataset`` both runs scored (matched by name)."""
    strata, rounds, notes = [], [], []
    pairs = pair_rounds(base, variant)
    if not pairs:
        return Alignment([], [], "not comparable: no round in common")
    partial = 0
    for rb, rv in pairs:
        fb = rb.predictions[rb.predictions["dataset"] == dataset].set_index("name")
        fv = rv.predictions[rv.predictions["dataset"] == dataset].set_index("name")
        common = fb.index.intersection(fv.index)
        if len(common) < MIN_COMMON_IMAGES:
            continue
        mos_b, mos_v = fb.loc[common, "mos"].to_numpy(float), fv.loc[common, "mos"].to_numpy(float)
        if not np.allclose(mos_b, mos_v, rtol=1e-6, atol=1e-6):
            notes.append(f"round {rb.round}: MOS differ for the same image names")
            continue
        partial += len(common) < max(len(fb), len(fv))
        strata.append((mos_b, fb.loc[common, "pred"].to_numpy(float),
                       fv.loc[common, "pred"].to_numpy(float)))
        rounds.append(rb.round)
    if not strata:
        why = notes[0] if notes else f"fewer than {MIN_COMMON_IMAGES} test images in common"
        return Alignment([], [], f"not comparable: {why}")
    if partial:
        notes.append(f"test sets only partly overlap in {partial} round(s); shared images used")
    return Alignment(strata, rounds, "; ".join(notes))


def _metric_rows(pred: np.ndarray, mos: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` for each row of (B, n) arrays; SRCC is the PLCC of average ranks,
    exactly as scipy computes it."""
    if metric == "srcc":
        pred, mos, metric = stats.rankdata(pred, axis=1), stats.rankdata(mos, axis=1), "plcc"
    if metric == "plcc":
        p = pred - pred.mean(axis=1, keepdims=True)
        y = mos - mos.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (p * y).sum(axis=1) / np.sqrt((p * p).sum(axis=1) * (y * y).sum(axis=1))
    if metric == "rmse":
        return np.sqrt(((pred - mos) ** 2).mean(axis=1))
    fn = getattr(iqa_metrics, metric)
    return np.array([fn(p, y) for p, y in zip(pred, mos)])


def paired_bootstrap_rounds(strata: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                            metric: str = "srcc", n_boot: int = 1000, level: float = 0.95,
                            seed: int = 0) -> dict[str, float]:
    """Mean over rounds of ``metric(b) - metric(a)`` with a two-level paired bootstrap.

    Each resample draws the rounds with replacement (so round-to-round spread: training
    seed and split, widens the interval) and, within every round, the images with
    replacement, scoring both models on the same images. One round: exactly
    :func:`iqabench.metrics.paired_bootstrap` (same resamples, same p-value), which can
    only speak for test-image sampling, not for training randomness.
    """
    if not strata:
        raise ValueError("no rounds to compare")
    if len(strata) == 1:
        mos, a, b = strata[0]
        return iqa_metrics.paired_bootstrap(a, b, mos, metric, n_boot, level, seed)
    fn = getattr(iqa_metrics, metric)
    rng = np.random.default_rng(seed)
    per_round = np.zeros((len(strata), n_boot))  # image-resampled difference, round x resample
    for r, (mos, a, b) in enumerate(strata):
        idx = rng.integers(0, mos.size, size=(n_boot, mos.size))
        for chunk in np.array_split(np.arange(n_boot), max(1, n_boot * mos.size // 2_000_000)):
            i = idx[chunk]
            per_round[r, chunk] = (_metric_rows(b[i], mos[i], metric)
                                   - _metric_rows(a[i], mos[i], metric))
    rounds = rng.integers(0, len(strata), size=(n_boot, len(strata)))  # rounds drawn per resample
    diffs = per_round[rounds, np.arange(n_boot)[:, None]].mean(axis=1)
    point = float(np.mean([fn(b, mos) - fn(a, mos) for mos, a, b in strata]))
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(diffs, alpha), np.nanquantile(diffs, 1 - alpha)
    p_two = 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))
    return {"diff": point, "ci_low": float(lo), "ci_high": float(hi),
            "p_value": float(min(1.0, p_two)), "significant": bool(lo > 0 or hi < 0)}


def significance(result: dict | None) -> str:
    """The reading of a paired result: an interval containing 0 cannot support a difference."""
    if result is None:
        return "not comparable"
    return "significant" if result["significant"] else "not significant"


def paired_comparisons(runs: list[Run], baseline: Run, metrics: tuple[str, ...],
                       n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Every other run against ``baseline`` on every test set they share a name for."""
    rows = []
    for variant in runs:
        if variant is baseline:
            continue
        datasets = sorted(set().union(*(set(r.predictions["dataset"]) for r in baseline.rounds))
                          | set().union(*(set(r.predictions["dataset"]) for r in variant.rounds)))
        for dataset in datasets:
            aligned = align(baseline, variant, dataset)
            for metric in metrics:
                row = {"variant": variant.label, "baseline": baseline.label, "dataset": dataset,
                       "metric": metric, "rounds": len(aligned.rounds),
                       "n_images": aligned.n_images, "baseline_value": math.nan,
                       "variant_value": math.nan, "diff": math.nan, "ci_low": math.nan,
                       "ci_high": math.nan, "p_value": math.nan}
                result = None
                if aligned.strata:
                    fn = getattr(iqa_metrics, metric)
                    result = paired_bootstrap_rounds(aligned.strata, metric, n_boot, seed=seed)
                    row.update(
                        baseline_value=float(np.mean([fn(a, y) for y, a, _ in aligned.strata])),
                        variant_value=float(np.mean([fn(b, y) for y, _, b in aligned.strata])),
                        diff=result["diff"], ci_low=result["ci_low"], ci_high=result["ci_high"],
                        p_value=result["p_value"])
                row["significance"] = significance(result)
                one_round = ("1 round: image sampling only, not training randomness"
                             if len(aligned.rounds) == 1 else "")
                row["note"] = "; ".join(n for n in (aligned.note, one_round) if n)
                rows.append(row)
    columns = ["variant", "baseline", "dataset", "metric", "rounds", "n_images", "baseline_value",
               "variant_value", "diff", "ci_low", "ci_high", "p_value", "significance", "note"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- gate


def check_gate(summary: pd.DataFrame, baseline_file: Path, metrics: tuple[str, ...],
               max_drop: float) -> pd.DataFrame:
    """Each baseline row x metric: ``ok``, ``regressed`` (more than ``max_drop`` below the
    baseline value) or ``missing`` (no such run/test set now). The baseline file is a
    ``metrics.csv`` written by an earlier ``iqabench compare`` (columns run, dataset,
    and one column per metric holding the median over rounds)."""
    baseline_file = Path(baseline_file)
    if not baseline_file.is_file():
        raise IqabenchError(f"baseline file {baseline_file} not found")
    wanted = tuple(m for m in metrics if m in GATE_METRICS)
    if not wanted:
        raise IqabenchError(f"the gate checks {', '.join(GATE_METRICS)}; none asked for")
    base = read_csv(baseline_file, BASELINE_KEYS)
    missing = [m for m in wanted if m not in base.columns]
    if missing:
        raise IqabenchError(f"baseline file {baseline_file} lacks column(s) {', '.join(missing)} "
                            "(expected a metrics.csv written by 'iqabench compare --out')")
    if max_drop < 0:
        raise IqabenchError(f"--max-drop must be >= 0, not {max_drop}")
    current = summary.set_index(["run", "dataset"]) if not summary.empty else None
    rows = []
    for _, b in base.iterrows():
        key = (str(b["run"]), str(b["dataset"]))
        for m in wanted:
            if pd.isna(b[m]):
                continue
            now = math.nan
            if current is not None and key in current.index:
                now = float(current.loc[key, m])
            if math.isnan(now):
                status = "missing"
            else:
                status = "regressed" if now < float(b[m]) - max_drop - 1e-12 else "ok"
            rows.append({"run": key[0], "dataset": key[1], "metric": m,
                         "baseline": float(b[m]), "current": now,
                         "change": now - float(b[m]), "max_drop": max_drop, "status": status})
    if not rows:
        raise IqabenchError(f"baseline file {baseline_file} has no rows to check")
    return pd.DataFrame(rows)


def gate_message(failures: pd.DataFrame) -> str:
    """One line naming every failed metric, run and test set."""
    parts = []
    for _, f in failures.iterrows():
        if f["status"] == "missing":
            parts.append(f"{f['metric']} of {f['run']} on {f['dataset']} is missing (baseline "
                         f"{f['baseline']:.4f})")
        else:
            parts.append(f"{f['metric']} of {f['run']} on {f['dataset']} fell to "
                         f"{f['current']:.4f}, {-f['change']:.4f} below baseline "
                         f"{f['baseline']:.4f} (max drop {f['max_drop']:g})")
    return "regression gate failed: " + "; ".join(parts)


# --------------------------------------------------------------------------- weights (PCA)


@dataclass
class WeightSample:
    """Generated target-network parameters of some test images (for the PCA plot)."""

    run: str
    dataset: str
    names: list[str]
    params: np.ndarray  # (N, D) flattened w1..w5, b1..b5 per image
    groups: list[str]  # colour key per image
    group_kind: str  # what ``groups`` holds, e.g. "group", "content_id (top 8)"
    mos: np.ndarray
    round: int


def _colour_groups(frame: pd.DataFrame, top_k: int = 8) -> tuple[list[str], str]:
    """``group`` where the table has it; else the ``top_k`` most shared content ids."""
    if "group" in frame.columns and frame["group"].notna().any():
        return frame["group"].fillna("?").astype(str).tolist(), "group"
    content = frame["content_id"].astype(str) if "content_id" in frame.columns else None
    if content is not None and content.duplicated().any():
        top = content.value_counts().index[:top_k]
        return [c if c in set(top) else "other" for c in content], f"content_id (top {top_k})"
    return [], "none"


def target_weights(run: Run, limit: int = 200, seed: int = 0, crop_mode: str = "center"
                   ) -> WeightSample:
    """Generated target-network weights of up to ``limit`` test images of the run's
    training dataset, from the first round's ``best.pt`` (one center crop per image).

    Raises :class:`IqabenchError` when the checkpoint, the dataset root or the
    evaluation API is unavailable; the caller turns that into a note.
    """
    rnd = run.rounds[0]
    if not rnd.checkpoint.is_file():
        raise IqabenchError(f"{rnd.checkpoint} not found")
    try:
        from iqabench.data import load_dataset
        from iqabench.data.cache import ImageCache
        from iqabench.evaluation import load_checkpoint, predict
    except ImportError as err:
        raise IqabenchError(f"the evaluation API is not available ({err})") from err
    dataset = run.train_dataset
    try:
        table = load_dataset(dataset, rnd.config.get("root"))
    except (OSError, IqabenchError) as err:
        raise IqabenchError(f"dataset {dataset!r} unavailable: {err}") from err
    preds = rnd.predictions[rnd.predictions["dataset"] == dataset]
    names = list(preds["name"])
    if not names and (rnd.path / "split.csv").is_file():
        split = read_csv(rnd.path / "split.csv", ("name", "subset"))
        names = split.loc[split["subset"] == "test", "name"].astype(str).tolist()
    frame = table.frame.assign(name=table.frame["name"].astype(str)).set_index("name")
    names = [n for n in names if n in frame.index]
    if len(names) < 3:
        raise IqabenchError(f"fewer than 3 test images of {dataset} found for {run.label}")
    if len(names) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(names), size=limit, replace=False))
        names = [names[i] for i in keep]
    model, _ = load_checkpoint(rnd.checkpoint)
    model.eval()
    cache = ImageCache.build(table, names=names)
    _, params = predict(model, cache, names, crop_mode=crop_mode, n_crops=1,
                        crop_size=model.config.input_size, batch_size=32, return_params=True)
    rows = frame.loc[names].reset_index()
    groups, kind = _colour_groups(rows)
    return WeightSample(run=run.label, dataset=dataset, names=names,
                        params=np.asarray(params, dtype=np.float64), groups=groups,
                        group_kind=kind, mos=rows["mos"].to_numpy(float), round=rnd.round)


def pca_2d(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components (numpy SVD of the centred matrix) and the share of
    variance each explains."""
    x = np.asarray(params, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    coords = x @ vt[:2].T
    var = s ** 2
    share = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    if coords.shape[1] < 2:  # a single image or component: pad
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
        share = np.pad(share, (0, 2 - share.size))
    return coords, share


def separation_ratio(coords: np.ndarray, groups: list[str]) -> float:
    """Between-group over within-group scatter (trace ratio) of ``coords``: larger means
    groups form tighter, further-apart clusters. NaN without two groups."""
    if not groups or len(set(groups)) < 2:
        return math.nan
    g = np.asarray(groups)
    centre = coords.mean(axis=0)
    between = within = 0.0
    for key in set(groups):
        pts = coords[g == key]
        mu = pts.mean(axis=0)
        between += len(pts) * float(((mu - centre) ** 2).sum())
        within += float(((pts - mu) ** 2).sum())
    return between / within if within > 0 else math.inf


# --------------------------------------------------------------------------- entry point


def compare(runs: list[Path], *, profiles: list[Path] | None = None,
            baseline_run: Path | None = None, out: Path | None = None,
            metrics: tuple[str, ...] = ("srcc", "plcc"), n_boot: int = 1000, seed: int = 0,
            pca_limit: int = 200, baseline_file: Path | None = None, max_drop: float = 0.01,
            plots: bool = True, overwrite: bool = False, command: str = "") -> Comparison:
    """Load ``runs``, build every table, write tables and plots to ``out`` (when given),
    and check the regression gate against ``baseline_file`` (when given).

    The gate's outcome is in ``Comparison.gate``; raising on failure is left to the
    caller (the CLI exits non-zero).
    """
    from iqabench import reporting

    metrics = tuple(dict.fromkeys(metrics))
    bad = [m for m in metrics if m not in REPORTED_METRICS]
    if bad:
        raise IqabenchError(f"unknown metric {bad[0]!r}; choose from {', '.join(REPORTED_METRICS)}")
    if n_boot < 100:
        raise IqabenchError(
            f"--bootstrap {n_boot} is too few resamples for a 95% interval (>= 100)")
    if baseline_file is not None and not Path(baseline_file).is_file():
        raise IqabenchError(f"baseline file {baseline_file} not found")
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise IqabenchError(f"--out {out} exists and is not a folder")
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            raise IqabenchError(
                f"--out {out} is not empty; choose a new folder or pass --overwrite")
    loaded, base = load_runs(list(runs), baseline_run)
    per_round = round_metrics(loaded)
    summary = runfolder.aggregate_rounds(per_round, ("run", "dataset"))
    comparison = Comparison(
        runs=loaded, baseline=base, metrics=metrics, per_round=per_round, summary=summary,
        validation=validation_results(loaded),
        paired=paired_comparisons(loaded, base, metrics, n_boot, seed),
        profiles=read_profiles(list(profiles or [])), command=command)
    if baseline_file is not None:  # before writing: the file may live in ``out``
        comparison.gate = check_gate(summary, Path(baseline_file), metrics, max_drop)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        before = {f.name: f.stat().st_mtime_ns for f in out.iterdir() if f.is_file()}
        reporting.write_tables(comparison, out)
        if plots:
            reporting.write_plots(comparison, out, pca_limit=pca_limit, seed=seed)
        reporting.write_report(comparison, out)
        _replace_manifest(out, before)
    return comparison


#: Lists what the last ``compare`` wrote to its folder, so an ``--overwrite`` can remove
#: the files of runs no longer compared (and nothing it did not write itself).
MANIFEST = ".iqabench-compare-files"


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
