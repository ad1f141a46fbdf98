"""Typed configs for ``iqabench train`` and ``iqabench eval``.

One frozen dataclass per command, each default commented. A run is resolved in layers:
field defaults < the recipe (``--recipe original``) < the config file (TOML or YAML)
< command-line flags. The resolved :class:`TrainConfig` is what lands in the run
folder's ``config.yaml`` and in every checkpoint, and that file can be fed back with
``--config``. Unknown keys are refused by name (a misspelt key that silently does
nothing is how a run ends up not being the run you think it is).
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from iqabench.errors import IqabenchError
from iqabench.losses import LabelScale, LossKind
from iqabench.models.hyperiqa import HyperIQAConfig

SplitKind = Literal["random", "official"]
OptimizerName = Literal["adam", "adamw"]
ScheduleName = Literal["none", "cosine", "step", "original"]
CropMode = Literal["grid", "center", "random", "full"]
DeviceName = Literal["auto", "cpu", "cuda"]
AmpMode = Literal["auto", "none", "bf16", "fp16"]
Recipe = Literal["default", "original"]


@dataclass(frozen=True)
class TestSet:
    """A dataset scored after training, as a whole (cross-dataset test)."""

    __test__ = False  # not a pytest class, despite the name

    dataset: str
    root: str | None = None  # None: only for datasets that need no folder (synthetic)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one ``iqabench train`` run depends on."""

    # --- data
    dataset: str = "synthetic"  # a name in iqabench.data.DATASETS
    root: str | None = None  # the dataset folder as distributed
    tests: tuple[TestSet, ...] = ()  # extra datasets to test on, whole (cross-dataset)
    limit: int | None = None  # keep only this many images per dataset (seeded): quick runs
    skip_bad: bool = False  # leave out unreadable images (listed in skipped.csv)
    split_kind: SplitKind = "random"  # random rounds, or the dataset's official split
    split: str | None = None  # reuse a saved split: a split.csv or a run folder holding one
    test_fraction: float = 0.2  # of the images (or contents) held out for test
    val_fraction: float = 0.1  # carved from the training part; selects the epoch, never test
    seed: int = 0  # seeds splits, init and crops; round k uses seed + k for init and crops
    rounds: int = 1  # random splits; >1 writes RUN/round_XX/ and a summary
    round: int | None = None  # run only this round (0-based) into RUN/round_KK/ (SLURM arrays)
    # --- model
    model: HyperIQAConfig = HyperIQAConfig()
    pretrained: bool = True  # ImageNet backbone weights (timm hub, or `weights`)
    weights: str | None = None  # local backbone weights file (e.g. from convert-lite)
    # --- loss
    loss: LossKind = "l1"  # "l1", "rank" or "l1+rank"
    alpha: float = 1.0  # weight of the ranking term in "l1+rank"
    margin: float = 0.1  # ranking hinge margin, in [0, 1] label units (scaled for raw labels)
    label_scale: LabelScale = "unit"  # "unit": (mos - lo) / (hi - lo); "raw": MOS as given
    # --- optimisation
    optimizer: OptimizerName = "adam"
    lr: float = 1e-4  # backbone learning rate
    head_lr_ratio: float = 10.0  # heads (LDA, hyper network, generators) at lr x this
    weight_decay: float = 5e-4
    schedule: ScheduleName = "cosine"  # per epoch; "original": heads /10 every 6 epochs
    step_epochs: int = 6  # "step": multiply every lr by `gamma` every this many epochs
    gamma: float = 0.1
    epochs: int = 6
    batch_size: int = 32  # crops per optimiser step (per process under DDP)
    crops_per_image: int = 1  # random crops per training image per epoch (original: 25)
    flip: bool = True  # random horizontal flips of training crops
    # --- evaluation
    eval_crop_mode: CropMode = "grid"  # test-time crops; "grid" is deterministic
    eval_crops: int = 9  # crops per test image, averaged: 3x3 grid (original: 25; CPU-sane)
    val_crops: int = 4  # crops per validation image (every epoch, so kept cheap: 2x2 grid)
    eval_batch_size: int = 32  # crops per forward pass when scoring
    n_boot: int = 1000  # bootstrap resamples for the SRCC interval
    # --- runtime
    device: DeviceName = "auto"  # "auto": cuda when available
    amp: AmpMode = "auto"  # "auto": bf16 on CUDA, none on CPU
    channels_last: bool = True
    compile: bool = False  # torch.compile the model (CUDA; slow to start)
    workers: int = 0  # decode threads when building the image cache (0: one per core, <= 8)
    cache_dir: str | None = None  # keep decoded pixels here between runs (None: in RAM only)
    recipe: Recipe = "default"  # "original": Hyper-IQA's own recipe, defects fixed
    out: str | None = None  # run folder

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.crops_per_image >= 1, "crops_per_image must be >= 1"),
            (self.eval_crops >= 1, "eval_crops must be >= 1"),
            (self.val_crops >= 1, "val_crops must be >= 1"),
            (self.eval_batch_size >= 1, "eval_batch_size must be >= 1"),
            (self.rounds >= 1, "rounds must be >= 1"),
            (self.round is None or 0 <= self.round < self.rounds,
             f"round {self.round} is not in 0..rounds-1 (give rounds > round)"),
            (self.lr > 0, "lr must be > 0"),
            (self.head_lr_ratio > 0, "head_lr_ratio must be > 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.alpha >= 0, "alpha must be >= 0"),
            (self.margin >= 0, "margin must be >= 0"),
            (self.step_epochs >= 1, "step_epochs must be >= 1"),
            (0 < self.test_fraction < 1, "test_fraction must be in (0, 1)"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (self.limit is None or self.limit >= 4, "limit must be >= 4 images"),
            (self.n_boot >= 0, "n_boot must be >= 0"),
            (self.workers >= 0, "workers must be >= 0"),
        ]
        if self.eval_crop_mode == "grid":
            for key in ("eval_crops", "val_crops"):
                n = getattr(self, key)
                checks.append((math.isqrt(n) ** 2 == n,
                               f"{key} = {n}: grid crops need a square number (4, 9, 16, 25)"))
        for ok, message in checks:
            if not ok:
                raise IqabenchError(f"bad train config: {message}")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["model"] = self.model.to_dict()
        data["model"]["target_sizes"] = list(self.model.target_sizes)
        data["tests"] = [dataclasses.asdict(t) for t in self.tests]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        return _build(cls, data, source)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class EvalConfig:
    """``iqabench eval``: one checkpoint on one dataset (or one subset of it).

    Crop settings left at None are taken from the checkpoint's training config, so the
    command reproduces the training run's test numbers by default.
    """

    checkpoint: str
    dataset: str
    root: str | None = None
    split: str | None = None  # split.csv or run folder; None: the whole dataset
    subset: Literal["train", "val", "test", "all"] = "test"  # used with `split`
    crop_mode: CropMode | None = None  # None: as in training (else "grid")
    n_crops: int | None = None  # None: as in training (else 25)
    batch_size: int | None = None  # None: as in training (else 32)
    logistic: int | None = None  # 4 or 5: also report PLCC after the VQEG logistic fit
    n_boot: int = 1000  # bootstrap resamples for 95% intervals (0: none)
    limit: int | None = None  # score only this many images (quick checks)
    device: DeviceName = "auto"
    amp: AmpMode = "auto"
    channels_last: bool = True
    compile: bool = False  # TorchInductor with frozen weights (evaluation.compile_for_inference)
    out: str | None = None  # folder for predictions.csv and metrics.csv

    def __post_init__(self) -> None:
        if self.logistic not in (None, 4, 5):
            raise IqabenchError(f"--logistic takes 4 or 5, not {self.logistic}")
        if self.n_crops is not None and self.n_crops < 1:
            raise IqabenchError("--n-crops must be >= 1")
        if self.n_boot < 0:
            raise IqabenchError("--bootstrap must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------- recipes

#: ``--recipe original``: train_test_IQA.py / HyerIQASolver.py of the Hyper-IQA code
#: (DESIGN.md section 2), with its defects fixed as documented in iqabench.training.
RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "original": {
        "crops_per_image": 25, "flip": True, "batch_size": 96, "optimizer": "adam",
        "lr": 2e-5, "head_lr_ratio": 10.0, "weight_decay": 5e-4, "schedule": "original",
        "epochs": 16, "loss": "l1", "label_scale": "raw", "eval_crops": 25,
        "val_crops": 25, "eval_crop_mode": "grid", "model": {"init": "original"},
    },
}


def resolve_train_config(file: str | Path | None = None,
                         overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults < recipe < file < overrides (flags). ``overrides`` holds only the values
    the user gave, in the config's own shape (``{"model": {"backbone": ...}}``)."""
    overrides = overrides or {}
    from_file = load_config_file(file) if file else {}
    _check_keys(TrainConfig, from_file, str(file))
    _check_keys(TrainConfig, overrides, "flags")
    recipe = overrides.get("recipe", from_file.get("recipe", "default"))
    if recipe not in RECIPES:
        raise IqabenchError(f"unknown recipe {recipe!r}: choose from {', '.join(RECIPES)}")
    merged = _merge(_merge(RECIPES[recipe], from_file), overrides)
    merged["recipe"] = recipe
    return TrainConfig.from_dict(merged, source=str(file) if file else "flags")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A TOML (``.toml``) or YAML (``.yaml``/``.yml``) file as a dict."""
    path = Path(path)
    if not path.is_file():
        raise IqabenchError(f"config file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise IqabenchError(f"config file {path} must end in .toml, .yaml or .yml")
    except IqabenchError:
        raise
    except Exception as err:  # a parse error: say where
        raise IqabenchError(f"cannot parse config file {path}: {err}".splitlines()[0]) from err
    if not isinstance(data, dict):
        raise IqabenchError(f"config file {path} must hold a mapping of keys to values")
    return data


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write ``config.yaml`` atomically (array tasks may write the same file at once)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    os.replace(tmp, path)


# ------------------------------------------------------------------- dict -> dataclass

def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _check_keys(cls, data: dict, source: str) -> None:
    """Refuse keys the dataclass does not have (and, for TrainConfig, in ``model``),
    naming all of them at once."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if cls is TrainConfig and isinstance(data.get("model"), dict):
        model_known = {f.name for f in dataclasses.fields(HyperIQAConfig)}
        unknown += [f"model.{k}" for k in sorted(set(data["model"]) - model_known)]
    if unknown:
        raise IqabenchError(f"unknown config key(s) in {source}: {', '.join(unknown)}")


def _build(cls, data: dict[str, Any], source: str):
    """``cls(**data)`` with keys checked, values converted to the annotated types, and
    bad values named."""
    if not isinstance(data, dict):
        raise IqabenchError(f"{source}: expected a mapping for {cls.__name__}")
    _check_keys(cls, data, source)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = _convert(hints[key], value, f"{source}: {key}")
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise IqabenchError(f"{source}: {err}") from err


def _convert(tp, value, where: str):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except IqabenchError:
                continue
        raise IqabenchError(f"{where} = {value!r} is not a valid {tp}")
    if origin is Literal:
        if value not in args:
            raise IqabenchError(f"{where} = {value!r}: choose from {', '.join(map(str, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise IqabenchError(f"{where} must be a list")
        inner = args[0] if args else Any
        return tuple(_convert(inner, v, where) for v in value)
    if tp is HyperIQAConfig:
        if isinstance(value, HyperIQAConfig):
            return value
        return _build(HyperIQAConfig, value, where)
    if tp is TestSet:
        if isinstance(value, TestSet):
            return value
        if isinstance(value, str):
            return parse_test_set(value)
        return _build(TestSet, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise IqabenchError(f"{where} = {value!r} must be true or false")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise IqabenchError(f"{where} = {value!r} must be an integer")
        try:
            number = float(value)
        except ValueError:
            raise IqabenchError(f"{where} = {value!r} must be an integer") from None
        if number != int(number):
            raise IqabenchError(f"{where} = {value!r} must be an integer")
        return int(number)
    if tp is float:
        if isinstance(value, bool):
            raise IqabenchError(f"{where} = {value!r} must be a number")
        try:
            return float(value)  # YAML 1.1 reads "2e-5" as a string
        except (TypeError, ValueError):
            raise IqabenchError(f"{where} = {value!r} must be a number") from None
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise IqabenchError(f"{where} = {value!r} must be a string")
    return value


def parse_test_set(text: str) -> TestSet:
    """``ID:DIR`` (or just ``ID`` for datasets that need no folder) as a TestSet."""
    name, sep, root = text.partition(":")
    if not name:
        raise IqabenchError(f"--test {text!r}: expected DATASET:DIR")
    return TestSet(dataset=name, root=root if sep and root else None)

