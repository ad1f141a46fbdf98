"""Typed configs for ``iqabench train`` and ``iqabench eval``, as pydantic schemas.

A run is resolved in layers: field defaults < the recipe (``--recipe original``) < the
config file (TOML or YAML) < command-line flags. The resolved :class:`TrainConfig` is what
lands in the run folder's ``config.yaml`` and in every checkpoint, and that file can be
fed back with ``--config``. Unknown keys are refused by name (a misspelt key that silently
does nothing is how a run ends up not being the run you think it is), and every bad value
is reported on one line naming the file, the key and the value.

Each field's ``description`` is also the help of its command-line flag
(:mod:`iqabench.cli.options`), so the schema is the one place a setting is documented.
This module needs neither torch nor timm.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass as schema_dataclass

from iqabench.errors import IqabenchError

SplitKind = Literal["random", "official"]
OptimizerName = Literal["adam", "adamw"]
ScheduleName = Literal["none", "cosine", "step", "original"]
CropMode = Literal["grid", "center", "random", "full"]
DeviceName = Literal["auto", "cpu", "cuda"]
AmpMode = Literal["auto", "none", "bf16", "fp16"]
Recipe = Literal["default", "original"]
LossKind = Literal["l1", "rank", "l1+rank"]
LabelScale = Literal["unit", "raw"]
HyperInput = Literal["last", "multiscale"]
InitMode = Literal["original", "centered"]
Subset = Literal["train", "val", "test", "all"]


class ConfigError(IqabenchError, ValueError):
    """A config that fails validation; the message is one line naming key and value."""


_FIELDS = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


@schema_dataclass(frozen=True, config=_FIELDS)
class HyperIQAConfig:
    """Architecture of one Hyper-IQA variant; saved in every checkpoint."""

    backbone: str = "resnet50"  # any timm model with features_only support
    hyper_input: HyperInput = "last"  # "last" (original) or "multiscale" (every stage pooled)
    input_size: int = 224  # crop size; fixed-grid backbones (Swin) are built for it
    lda_out: int = 16  # LDA output per non-last stage (original: 16)
    target_in: int = 224  # target-network input size (original: 224)
    hyper_channels: int = 112  # channels of the hyper-network map (original: 112)
    target_sizes: tuple[int, ...] = (112, 56, 28, 14)  # hidden target layers (original)
    feature_size: int = 7  # grid of the hyper-network map (original: 7 at 224 input)
    # "original": Kaiming-normal generators as in SSL92/hyperIQA. "centered": the same,
    # then fc5's generators scaled by 0.1 and the output bias set to score_init, so first
    # predictions sit near the label mean (in a prototype on LIVEC, 10 CPU epochs: test
    # SRCC 0.68 with "original", 0.81 with "centered"; first L1 loss 3-4 vs 0.29).
    init: InitMode = "centered"
    # output bias at start for init="centered", in the units trained on; None: training
    # sets it to the mean of the round's training labels (0.5 for a model built elsewhere)
    score_init: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model config") -> HyperIQAConfig:
        try:
            return cls(**data)
        except ValidationError as err:
            raise ConfigError(_one_line(err, "model config", source)) from None


@schema_dataclass(frozen=True, config=_FIELDS)
class TestSet:
    """A dataset scored after training, as a whole (cross-dataset test)."""

    __test__ = False  # not a pytest class, despite the name

    dataset: str
    root: str | None = None  # None: only for datasets that need no folder (synthetic)


class _Schema(BaseModel):
    """Frozen, unknown keys refused, numbers accepted for strings (YAML ``seed: 1`` in a
    str field), and every validation error raised as one :class:`ConfigError` line."""

    model_config = ConfigDict(frozen=True, **_FIELDS)
    what: ClassVar[str] = "config"

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise ConfigError(_one_line(err, self.what, "")) from None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config"):
        """Validate ``data`` (a config file's mapping); errors name ``source``."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of keys to values for {cls.what}")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            # pydantic validates through the overridden __init__, which has already made
            # the one-line message (without the source): name the source in it once.
            inner = [item.get("ctx", {}).get("error") for item in err.errors()]
            if len(inner) == 1 and isinstance(inner[0], ConfigError):
                where = f" in {source}" if source else ""
                raise ConfigError(str(inner[0]).replace(f"bad {cls.what}:",
                                                        f"bad {cls.what}{where}:", 1)) from None
            raise ConfigError(_one_line(err, cls.what, source)) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (lists, not tuples): what ``config.yaml`` holds."""
        return self.model_dump(mode="json")

    def replace(self, **changes: Any):
        """A copy with ``changes``, validated like any other config."""
        return type(self).from_dict({**dict(self), **changes}, source="replace()")


class TrainConfig(_Schema):
    """Everything one ``iqabench train`` run depends on."""

    what: ClassVar[str] = "train config"

    # --- data
    dataset: str = Field(description="Training dataset id (e.g. koniq10k, livec, agiqa3k, synthetic).")
    root: str | None = Field(None, description="The dataset folder as distributed.")
    tests: tuple[TestSet, ...] = Field((), description="Also test on a whole other dataset, "
                                       "ID:DIR (repeatable; cross-dataset).")
    limit: int | None = Field(None, ge=4, description="Use only N images of each dataset, a "
                              "subset drawn with --seed (quick runs).")
    skip_bad: bool = Field(False, description="Leave out unreadable images; they are listed in "
                           "RUN/skipped.csv.")
    split_kind: SplitKind = Field("random", description="Random seeded rounds or the dataset's "
                                  "official split.")
    split: str | None = Field(None, description="Reuse a saved split: a split.csv or a run "
                              "folder holding one.")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Share of the images (by content) "
                                 "held out for test.")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="Share of the training part used "
                                "to pick the epoch (never the test part).")
    seed: int = Field(0, description="Seeds the split, the --limit subset, initialisation and "
                      "crops; round k uses seed + k for initialisation and crops.")
    rounds: int = Field(1, ge=1, description="Random splits to train; >1 writes RUN/round_XX/ "
                        "and RUN/summary.csv.")
    round: int | None = Field(None, ge=0, description="Train only round K (0-based) into "
                              "RUN/round_KK/, e.g. one SLURM array task.")
    # --- model
    model: HyperIQAConfig = HyperIQAConfig()
    pretrained: bool = Field(True, description="ImageNet backbone weights (timm hub, or --weights).")
    weights: str | None = Field(None, description="Local backbone weights file (offline; see "
                                "'iqabench weights convert-lite').")
    # --- loss
    loss: LossKind = Field("l1", description="L1, pairwise ranking hinge, or L1 + alpha * rank.")
    alpha: float = Field(1.0, ge=0, description="Weight of the ranking term in l1+rank.")
    margin: float = Field(0.1, ge=0, description="Ranking margin in [0,1] label units (scaled by "
                          "the MOS range for raw labels).")
    label_scale: LabelScale = Field("unit", description="'unit': labels normalised to [0,1] by "
                                    "the MOS range; 'raw': MOS as distributed.")
    # --- optimisation
    optimizer: OptimizerName = Field("adam", description="Optimiser.")
    lr: float = Field(1e-4, gt=0, description="Backbone learning rate.")
    head_lr_ratio: float = Field(10.0, gt=0, description="Heads (LDA, hyper network, "
                                 "generators) train at lr x this.")
    weight_decay: float = Field(5e-4, ge=0, description="Weight decay.")
    schedule: ScheduleName = Field("cosine", description="Learning-rate schedule, per epoch; "
                                   "'original': Hyper-IQA's head decay (/10 every 6 epochs).")
    step_epochs: int = Field(6, ge=1, description="Schedule 'step': multiply every lr by gamma "
                             "every this many epochs.")
    gamma: float = Field(0.1, gt=0, description="Schedule 'step': the lr factor.")
    epochs: int = Field(6, ge=1, description="Epochs.")
    batch_size: int = Field(32, ge=1, description="Crops per optimiser step (per process).")
    crops_per_image: int = Field(1, ge=1, description="Random training crops per image per "
                                 "epoch (original recipe: 25).")
    flip: bool = Field(True, description="Random horizontal flips of training crops.")
    # --- evaluation
    eval_crop_mode: CropMode = Field("grid", description="Test-time crops ('grid' is "
                                     "deterministic).")
    eval_crops: int = Field(9, ge=1, description="Crops per test image, averaged (a square "
                            "number for grid; original recipe: 25).")
    val_crops: int = Field(4, ge=1, description="Crops per validation image, every epoch.")
    eval_batch_size: int = Field(32, ge=1, description="Crops per forward pass when scoring.")
    n_boot: int = Field(1000, ge=0, description="Bootstrap resamples for the 95% intervals "
                        "(0: none).")
    # --- runtime
    device: DeviceName = Field("auto", description="Device; auto: cuda when available.")
    amp: AmpMode = Field("auto", description="Mixed precision; auto: bf16 on CUDA, none on CPU.")
    channels_last: bool = Field(True, description="NHWC memory layout.")
    compile: bool = Field(False, description="Compile the model (TorchInductor; slow to start, "
                          "needs a C++ compiler on CPU).")
    workers: int = Field(0, ge=0, description="Image decode threads (0: one per core, at most 8).")
    cache_dir: str | None = Field(None, description="Keep decoded pixels here to reuse in later "
                                  "runs (default: in memory only).")
    recipe: Recipe = Field("default", description="'original': Hyper-IQA's own recipe "
                           "(ResNet-50 with torchvision's ImageNet weights, timm's "
                           "resnet50.tv_in1k; 25 crops, batch 96, 16 epochs, raw L1), "
                           "defects fixed.")
    tensorboard: bool = Field(True, description="Write TensorBoard event files into each "
                              "round folder's tensorboard/ when the tensorboard package is "
                              "installed (iqabench's 'tb' extra).")
    out: str | None = Field(None, description="Run folder to write.")

    @field_validator("tests", mode="before")
    @classmethod
    def _test_sets_from_text(cls, value: Any) -> Any:
        """``ID:DIR`` strings (as ``--test`` takes them) are accepted for test sets."""
        if isinstance(value, (list, tuple)):
            return tuple(parse_test_set(v) if isinstance(v, str) else v for v in value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.round is not None and self.round >= self.rounds:
            raise ValueError(f"round = {self.round} is not in 0..rounds-1 (rounds = "
                             f"{self.rounds}; give rounds > round)")
        if self.eval_crop_mode == "grid":
            for key in ("eval_crops", "val_crops"):
                n = getattr(self, key)
                if math.isqrt(n) ** 2 != n:
                    raise ValueError(f"{key} = {n}: grid crops need a square number "
                                     "(4, 9, 16, 25)")
        return self


class EvalConfig(_Schema):
    """``iqabench eval``: one checkpoint on one dataset (or one subset of it).

    Settings left at None are taken from the checkpoint's run (dataset and root from the
    ``split`` run folder's config.yaml, crops from the training config in the
    checkpoint), so the command reproduces the training run's test numbers by default.
    Shared settings have the names, meaning and defaults of :class:`TrainConfig`.
    """

    what: ClassVar[str] = "eval config"

    checkpoint: str = Field(description="A run's best.pt (or last.pt).")
    dataset: str | None = Field(None, description="Dataset id to score (default: the --split "
                                "run's dataset).")
    root: str | None = Field(None, description="The dataset folder as distributed (default: "
                             "the --split run's).")
    split: str | None = Field(None, description="A run folder or split.csv: score its --subset "
                              "only. Without it, every image of the dataset.")
    subset: Subset = Field("test", description="Subset of --split to score.")
    eval_crop_mode: CropMode | None = None  # None: as the run was tested
    eval_crops: int | None = Field(None, ge=1)  # None: as the run was tested
    eval_batch_size: int | None = Field(None, ge=1)  # None: as the run was tested
    logistic: Literal[4, 5] | None = Field(None, description="Also report PLCC after the VQEG "
                                           "4- or 5-parameter logistic fit.")
    n_boot: int = Field(1000, ge=0)
    limit: int | None = Field(None, ge=1)  # a subset drawn with `seed`, as in training
    seed: int = 0
    device: DeviceName = "auto"
    amp: AmpMode = "auto"
    channels_last: bool = True
    compile: bool = False  # TorchInductor with frozen weights (runtime.compile_for_inference)
    out: str | None = Field(None, description="Folder for predictions.csv and metrics.csv.")


# ---------------------------------------------------------------------------- recipes

#: ``--recipe original``: the training settings of Hyper-IQA's own code
#: (train_test_IQA.py / HyerIQASolver.py), with its defects fixed as documented in
#: iqabench.training. Its backbone is ``resnet50.tv_in1k``: the original loads
#: torchvision's ImageNet ResNet-50 weights, and a bare ``resnet50`` is timm's
#: ``resnet50.a1_in1k`` (another training recipe, other weights). ``--backbone`` still
#: overrides it.
RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "original": {
        "crops_per_image": 25, "flip": True, "batch_size": 96, "optimizer": "adam",
        "lr": 2e-5, "head_lr_ratio": 10.0, "weight_decay": 5e-4, "schedule": "original",
        "epochs": 16, "loss": "l1", "label_scale": "raw", "eval_crops": 25,
        "val_crops": 25, "eval_crop_mode": "grid",
        "model": {"init": "original", "backbone": "resnet50.tv_in1k"},
    },
}


def resolve_train_config(file: str | Path | None = None,
                         overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults < recipe < file < overrides (flags). ``overrides`` holds only the values
    the user gave, in the config's own shape (``{"model": {"backbone": ...}}``)."""
    overrides = overrides or {}
    from_file = load_config_file(file) if file else {}
    recipe = overrides.get("recipe", from_file.get("recipe", "default"))
    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}: choose from {', '.join(RECIPES)}")
    layers = ([str(file)] if file else []) + (["flags"] if overrides else [])
    source = " and ".join(layers) or "defaults"  # named in validation errors
    merged = _merge(_merge(RECIPES[recipe], from_file), overrides)
    merged["recipe"] = recipe
    try:
        return TrainConfig.from_dict(merged, source=source)
    except ConfigError as err:
        if "dataset" in merged:
            raise
        raise ConfigError(f"{err}; pass --dataset ID (e.g. agiqa3k, koniq10k, synthetic) or "
                          "set dataset in the config file") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A TOML (``.toml``) or YAML (``.yaml``/``.yml``) file as a dict."""
    path = Path(path)
    if not path.is_file():
        raise IqabenchError(f"config file not found: {path}")
    text = path.read_text()
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise IqabenchError(f"config file {path} must end in .toml, .yaml or .yml")
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text) or {}
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


def parse_test_set(text: str) -> TestSet:
    """``ID:DIR`` (or just ``ID`` for datasets that need no folder) as a TestSet."""
    name, sep, root = text.partition(":")
    if not name:
        raise ConfigError(f"--test {text!r}: expected DATASET:DIR")
    return TestSet(dataset=name, root=root if sep and root else None)


# ------------------------------------------------------------------------- helpers

def _merge(base: dict, extra: dict) -> dict:
    """``extra`` over ``base``, nested mappings (``model``) merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _one_line(err: ValidationError, what: str, source: str) -> str:
    """pydantic's errors as one line: unknown keys first (all of them), then each bad
    value as ``key = value: why``."""
    unknown, problems = [], []
    for item in err.errors(include_url=False):
        key = ".".join(str(part) for part in item["loc"])
        message = " ".join(str(item["msg"]).split()).removeprefix("Value error, ")
        if item["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            unknown.append(key)
        elif item["type"] == "missing":
            problems.append(f"{key} is required")
        elif not key:
            problems.append(message)
        else:
            value = repr(item["input"])
            value = value if len(value) <= 60 else value[:57] + "..."
            problems.append(f"{key} = {value}: {message}")
    if unknown:
        problems.insert(0, f"unknown key(s) {', '.join(unknown)}")
    where = f" in {source}" if source else ""
    return f"bad {what}{where}: {'; '.join(problems)}"
