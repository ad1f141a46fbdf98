"""Plain data that analysis produces and renderers draw: runs, comparisons, aligned
predictions, weight samples, data-flow traces. No I/O, no computation beyond derived
fields."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from iqabench.config import TrainConfig

#: Fewer shared test images than this in a round and the round is not compared.
MIN_COMMON_IMAGES = 5
#: Metrics ``compare`` reports; the gate and the paired test take any of the first three.
REPORTED_METRICS = ("srcc", "plcc", "krcc", "rmse")
GATE_METRICS = ("srcc", "plcc", "krcc")


def format_shape(shape: Sequence[int]) -> str:
    """A tensor shape as text: ``(1, 3, 224, 224)`` -> ``1×3×224×224``."""
    return "×".join(str(int(v)) for v in shape)


@dataclass
class RoundResult:
    """One training round as written to disk."""

    path: Path
    round: int
    config: TrainConfig
    predictions: pd.DataFrame  # dataset, name, mos, pred (+ content_id, group); test rows only
    log: pd.DataFrame | None  # one row per epoch, None when log.csv is absent
    checkpoint: Path  # the round's best.pt (it may not exist)
    steps: pd.DataFrame | None = None  # epoch, step, loss, lr per optimiser step, if logged
    environment: list[dict] | None = None  # environment.json: one record per start/resume

    def epoch_seconds(self) -> pd.Series:
        """Wall seconds of each logged epoch (training and validation); empty without a log."""
        if self.log is None or "seconds" not in self.log:
            return pd.Series(dtype=float)
        return self.log["seconds"].dropna().astype(float)

    def train_seconds(self) -> float:
        """Wall seconds of the logged epochs, summed (test scoring not included); NaN
        without a log."""
        seconds = self.epoch_seconds()
        return float(seconds.sum()) if len(seconds) else math.nan

    def machines(self) -> list[str]:
        """The machines the round trained on, one per distinct CPU/GPU, in order."""
        names = (rec.get("gpu") or rec.get("cpu") for rec in self.environment or [])
        return list(dict.fromkeys(str(n) for n in names if n))


@dataclass
class Run:
    """A run folder: one round, or ``round_XX/`` subfolders aggregated over rounds."""

    path: Path
    rounds: list[RoundResult]
    label: str = ""  # full identity, the key of every CSV (config label, folder when needed)
    name: str = ""  # short name in tables and figures (``--label NAME=RUN`` or derived)

    @property
    def config(self) -> TrainConfig:
        return self.rounds[0].config

    @property
    def backbone(self) -> str:
        return self.config.model.backbone

    @property
    def hyper_input(self) -> str:
        return self.config.model.hyper_input

    @property
    def input_size(self) -> int:
        return int(self.config.model.input_size)

    @property
    def loss(self) -> str:
        return self.config.loss

    @property
    def uses_rank(self) -> bool:
        return "rank" in self.loss

    @property
    def alpha(self) -> float:
        """Weight of the ranking term next to L1: 0 for plain L1, NaN for rank alone."""
        if self.loss == "l1":
            return 0.0
        return float(self.config.alpha) if self.loss == "l1+rank" else math.nan

    @property
    def train_dataset(self) -> str:
        return self.config.dataset

    @property
    def epochs(self) -> int:
        return int(self.config.epochs)

    def train_seconds_per_round(self) -> float:
        """Mean over rounds of the epochs' wall seconds summed; NaN when no round logged
        them. Other work on the machine lengthens it."""
        per_round = [s for s in (r.train_seconds() for r in self.rounds) if not math.isnan(s)]
        return float(sum(per_round) / len(per_round)) if per_round else math.nan

    def fastest_epoch_seconds(self) -> float:
        """The fastest logged epoch over all rounds: the best estimate of the rate on a
        machine to itself (other work only slows an epoch down); NaN without logs."""
        times = [s for r in self.rounds for s in r.epoch_seconds()]
        return float(min(times)) if times else math.nan

    def machines(self) -> list[str]:
        """Every machine any round trained on, in order of first use."""
        return list(dict.fromkeys(m for r in self.rounds for m in r.machines()))

    def config_label(self) -> str:
        """``backbone/hyper_input/loss``, e.g. ``resnet50/last/l1+rank(0.5)``."""
        loss = self.loss
        if self.loss == "l1+rank" and not math.isnan(self.alpha):
            loss = f"{loss}({self.alpha:g})"
        return f"{self.backbone}/{self.hyper_input}/{loss}"


@dataclass
class Comparison:
    """Everything ``compare`` computed, as tables, plus what was written and noted."""

    runs: list[Run]
    baseline: Run
    metrics: tuple[str, ...]
    per_round: pd.DataFrame  # run, round, dataset, n, srcc, plcc, krcc, rmse
    summary: pd.DataFrame  # run x dataset: median and mean/std over rounds (metrics.csv)
    validation: pd.DataFrame  # run x round: best validation epoch from log.csv
    paired: pd.DataFrame  # variant vs baseline per dataset and metric
    profiles: pd.DataFrame | None = None
    design: pd.DataFrame | None = None  # backbone x hyper input: cost, and why a cell is empty
    intervals: pd.DataFrame | None = None  # run x dataset x metric: value, 95% interval, unit
    gate: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    command: str = ""  # the command line that made it, recorded in report.md

    @property
    def gate_failures(self) -> pd.DataFrame:
        if self.gate is None:
            return pd.DataFrame()
        return self.gate[self.gate["status"] != "ok"]

    def name_of(self, label: str) -> str:
        """The short name of the run labelled ``label`` (the label itself if unknown)."""
        return next((r.name or r.label for r in self.runs if r.label == label), label)

    def datasets(self) -> list[str]:
        """Test sets, training datasets first."""
        found = list(dict.fromkeys(self.summary["dataset"])) if not self.summary.empty else []
        train = [r.train_dataset for r in self.runs]
        return sorted(found, key=lambda d: (d not in train, d))


@dataclass
class Written:
    """What a renderer wrote (files, in order) and what it has to say (notes)."""

    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __add__(self, other: Written) -> Written:
        return Written(self.files + other.files, self.notes + other.notes)


@dataclass
class Alignment:
    """Aligned test predictions of two runs on one test set, one stratum per round."""

    strata: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (mos, pred_base, pred_variant)
    rounds: list[int]
    note: str = ""
    #: per stratum, each image's bootstrap unit: its content id, or its name
    units: list[np.ndarray] = field(default_factory=list)
    unit: str = "image"  # "content group" when the images share content ids

    @property
    def n_images(self) -> int:
        return sum(len(s[0]) for s in self.strata)


@dataclass
class ScatterPanel:
    """One run's predictions against MOS on one test set, with its logistic fit."""

    label: str
    round: int
    pred: np.ndarray
    mos: np.ndarray
    srcc: float
    plcc: float
    fit_x: np.ndarray  # the logistic fit, sampled over the prediction range
    fit_y: np.ndarray
    fit_form: str = ""  # which logistic was fitted (e.g. "monotonic 5-parameter")
    dataset: str = ""


@dataclass
class ScatterFigure:
    """Baseline and variant (or one run) side by side on one test set."""

    dataset: str
    label: str  # the run the figure is named after (the variant, or the only run)
    panels: list[ScatterPanel]


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


@dataclass
class WeightProjection:
    """A weight sample on its first two principal components."""

    sample: WeightSample
    coords: np.ndarray  # (N, 2)
    share: np.ndarray  # variance share of PC1, PC2
    separation: float  # between/within-group scatter ratio, NaN without two groups


@dataclass
class HyperFlow:
    """Tensor shapes along the hyper network's input path of one model variant
    (batch 1), read from a forward pass."""

    backbone: str
    hyper_input: str  # "last" or "multiscale"
    input: tuple[int, ...]
    stages: list[tuple[int, ...]]  # every backbone stage output (NCHW)
    pooled: list[tuple[int, ...]]  # the stages the hyper network sees, pooled to its grid
    stage_used: list[bool]  # per stage: does the hyper network see it
    hyper_in_input: tuple[int, ...]
    hyper_in: list[tuple[int, ...]]  # output of each 1x1 conv of hyper_in
    hyper_in_params: int
    map: tuple[int, ...]  # the hyper map (last hyper_in conv)
    pooled_map: tuple[int, ...]  # its global average (input of the fc generators)
    weight_convs: list[tuple[int, ...]]  # outputs of the 3x3 conv generators
    params: dict[str, tuple[int, ...]]  # generated target-network weights w1.., b1..


@dataclass
class FlowDiagram:
    """Before/after traces of one backbone at one input size."""

    backbone: str
    input_size: int
    before: HyperFlow  # hyper_input "last"
    after: HyperFlow  # hyper_input "multiscale"
