"""The CLI's one vocabulary: every flag of every command, with its help, default and type.

A setting has one flag name and one default in every command that takes it
(``tests/cli/test_vocabulary.py`` walks the command tree and holds every flag to
:data:`FLAGS`). Settings that are :class:`~iqabench.config.TrainConfig` fields take
their type, default and help (the field's description) from the schema, so help shows
the real defaults and nothing is copied; the flags of ``iqabench train`` are those
fields and four of the model's (:data:`TRAIN_FLAGS`).

A command declares its flags with :func:`takes`; the function then receives the
parsed values as keyword arguments. :func:`given` tells which of them the user typed,
so that a flag left out can fall back to a config file, or to the run a checkpoint
came from, instead of overriding it with its default.
"""

from __future__ import annotations

import contextvars
import dataclasses
import enum
import functools
import inspect
import types
import typing
from pathlib import Path
from typing import Any, Literal, Optional

import typer

from iqabench.config import EvalConfig, HyperIQAConfig, TrainConfig

REQUIRED = ...  # the default of a flag that must be given

# Help panels of ``iqabench train --help``.
DATA, MODEL, LOSS, OPTIM, EVAL, RUN = ("Data and split", "Model", "Loss", "Optimisation",
                                       "Evaluation", "Run")


@dataclasses.dataclass(frozen=True)
class Flag:
    """One setting as the command line spells it."""

    name: str  # the parameter name; the flag is --name-with-dashes
    help: str
    default: Any  # REQUIRED: no default
    type: Any  # what Typer parses (Literal -> a choice)
    panel: str = RUN
    field: str | None = None  # TrainConfig key it sets ("model.input_size"), if any
    aliases: tuple[str, ...] = ()  # short forms ("-q")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def decls(self) -> tuple[str, ...]:
        """``--x`` for a switch that is off by default, ``--x/--no-x`` when it is on."""
        if self.type is bool and self.default is True:
            return (f"{self.flag}/--no-{self.flag[2:]}", *self.aliases)
        return (self.flag, *self.aliases)


# ----------------------------------------------------------------- the TrainConfig part

#: TrainConfig fields whose flag has another name.
_RENAMED = {"tests": "test"}
#: HyperIQAConfig fields with a flag (the rest are set in a config file).
_MODEL_HELP = {
    "backbone": "Any timm model with features_only (e.g. resnet50, convnext_tiny, "
                "swin_tiny_patch4_window7_224).",
    "hyper_input": "What the hyper network sees: the last stage (original) or every stage.",
    "input_size": "Crop (model input) side in pixels.",
    "init": "Head initialisation; 'centered' starts predictions near the label mean.",
}
_PANELS = {
    DATA: ("dataset", "root", "tests", "limit", "skip_bad", "split_kind", "split",
           "test_fraction", "val_fraction", "seed", "rounds", "round"),
    MODEL: ("pretrained", "weights", *_MODEL_HELP),
    LOSS: ("loss", "alpha", "margin", "label_scale"),
    OPTIM: ("optimizer", "lr", "head_lr_ratio", "weight_decay", "schedule", "step_epochs",
            "gamma", "epochs", "batch_size", "crops_per_image", "flip"),
    EVAL: ("eval_crop_mode", "eval_crops", "val_crops", "eval_batch_size", "n_boot"),
}
#: str settings that name a file or folder (shown as PATH).
_PATHS = {"root", "split", "weights", "cache_dir", "out"}


def _panel(name: str) -> str:
    return next((panel for panel, names in _PANELS.items() if name in names), RUN)


def _cli_type(name: str, annotation: Any) -> Any:
    """The schema's type as Typer parses it: ``X | None`` -> ``Optional[X]``, paths as
    Path, test sets as repeatable ``ID:DIR`` text."""
    if name == "tests":
        return Optional[list[str]]
    args = typing.get_args(annotation)
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        and type(None) in args
    inner = next(a for a in args if a is not type(None)) if optional else annotation
    if name in _PATHS:
        inner = Path
    return Optional[inner] if optional else inner


def _train_flags() -> dict[str, Flag]:
    flags = {}
    for name, info in TrainConfig.model_fields.items():
        if name == "model":
            defaults = {f.name: f.default for f in dataclasses.fields(HyperIQAConfig)}
            types_ = typing.get_type_hints(HyperIQAConfig)
            for key, help in _MODEL_HELP.items():
                flags[key] = Flag(key, help, defaults[key], _cli_type(key, types_[key]), MODEL,
                                  f"model.{key}")
            continue
        flag_name = _RENAMED.get(name, name)
        # dataset, the one required field, may come from --config FILE or --resume RUN:
        # the flag itself has no default; --test, repeatable, starts from none
        default = None if info.is_required() or name == "tests" else info.default
        flags[flag_name] = Flag(flag_name, info.description or "", default,
                                _cli_type(name, info.annotation), _panel(name), name)
    return flags


_TRAIN = _train_flags()
#: The flags of ``iqabench train`` that set TrainConfig fields, in schema order.
TRAIN_FLAGS: tuple[str, ...] = tuple(_TRAIN)

# ------------------------------------------------------------------- everything else

_EVAL_FIELDS = EvalConfig.model_fields

FLAGS: dict[str, Flag] = {
    **_TRAIN,
    # train
    "config": Flag("config", "TOML or YAML file of config keys (as in a run's config.yaml); "
                   "flags override it, it overrides --recipe.", None, Optional[Path]),
    "resume": Flag("resume", "Continue the run in this folder from its last.pt.", None,
                   Optional[Path]),
    "quiet": Flag("quiet", "No progress bar.", False, bool, aliases=("-q",)),
    # every command that writes files
    "force": Flag("force", "Replace what an earlier run wrote there.", False, bool),
    # eval
    "checkpoint": Flag("checkpoint", _EVAL_FIELDS["checkpoint"].description, REQUIRED, Path),
    "subset": Flag("subset", _EVAL_FIELDS["subset"].description, _EVAL_FIELDS["subset"].default,
                   _EVAL_FIELDS["subset"].annotation),
    "logistic": Flag("logistic", _EVAL_FIELDS["logistic"].description, None, Optional[int]),
    # profile
    "repeats": Flag("repeats", "Timed forwards per variant (median reported); 0 skips timing. "
                    "Default: as many as fit in --budget-s.", None, Optional[int]),
    "warmup": Flag("warmup", "Untimed forwards first. Default: 2 on CPU, 10 on CUDA.", None,
                   Optional[int]),
    "budget_s": Flag("budget_s", "Seconds of timed forwards per variant when --repeats is not "
                     "given.", 4.0, float),
    "threads": Flag("threads", "torch intra-op CPU threads (default: torch's choice).", None,
                    Optional[int]),
    # compare
    "profile": Flag("profile", "'iqabench profile --out' folder or its profile.csv; repeat "
                    "for several.", None, Optional[list[Path]]),
    "label": Flag("label", "Short name of a run in tables and figures, as NAME=RUN (RUN as "
                  "given); repeat. Default: derived, e.g. 'lite0 · multiscale · L1+2·rank'.",
                  None, Optional[list[str]]),
    "baseline_run": Flag("baseline_run", "Run every other run is tested against (default: the "
                         "first RUN).", None, Optional[Path]),
    "baseline": Flag("baseline", "Gate: a metrics.csv from an earlier 'compare --out'; exit 1 "
                     "on a regression.", None, Optional[Path]),
    "max_drop": Flag("max_drop", "Gate tolerance: the largest absolute fall below the baseline "
                     "file allowed.", 0.01, float),
    "metric": Flag("metric", "Metric for the paired test and the gate; repeat (default: srcc "
                   "and plcc).", None, Optional[list[Literal["srcc", "plcc", "krcc"]]]),
    "pca_limit": Flag("pca_limit", "Test images per run in the weight PCA plot (0 skips it).",
                      200, int),
    "plots": Flag("plots", "Draw the plots, PNG and PDF (with --out).", True, bool),
    # predict
    "format": Flag("format", "Rows as CSV (path,score,crop_std) or JSON lines.", "csv",
                   Literal["csv", "jsonl"]),
    # weights import-hyperiqa
    "layout": Flag("layout", "Key layout of the file: auto (detect), official (SSL92/hyperIQA) "
                   "or pyiqa.", "auto", Literal["auto", "official", "pyiqa"]),
    "label_range": Flag("label_range", "MOS scale LO HI the weights were trained on (their "
                        "output scale; KonIQ-10k: 0 100).", REQUIRED, tuple[float, float]),
    # data
    "mos_range": Flag("mos_range", "MOS scale LO HI of a 'csv' dataset (default: the data's "
                      "min and max).", None, Optional[tuple[float, float]]),
}


# --------------------------------------------------------------- building commands

def takes(*names: str, help: dict[str, str] | None = None,
          from_run: dict[str, str] | None = None, repeatable: tuple[str, ...] = (),
          panels: bool = False):
    """Give the decorated ``function(**values)`` the flags ``names`` from :data:`FLAGS`.

    ``help`` words a flag's help for this command (its name and default stay);
    ``from_run`` marks flags that, left out, take their value from the run a checkpoint
    came from (the text is shown as the default); ``repeatable`` flags may be given
    several times, their default being a list of the one default; ``panels`` groups
    the help by topic (for commands with many flags).
    """
    help, from_run = help or {}, from_run or {}

    def decorate(function):
        params = []
        for name in names:
            flag = FLAGS[name]
            tp, default = _choices_as_enum(flag.type), flag.default
            if name in repeatable:
                tp, default = _choices_as_enum(list[flag.type]), [default]
            show = from_run.get(name, True)
            option = typer.Option(default, *flag.decls, help=help.get(name, flag.help),
                                  show_default=show,
                                  rich_help_panel=flag.panel if panels else None)
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                            default=option, annotation=tp))
        extra = [p for p in inspect.signature(function, eval_str=True).parameters.values()
                 if p.kind is not inspect.Parameter.VAR_KEYWORD]

        @functools.wraps(function)
        def command(*args, _ctx: typer.Context, **values):
            typed = {name for name in names if _ctx.get_parameter_source(name) is not None
                     and _ctx.get_parameter_source(name).name in ("COMMANDLINE", "ENVIRONMENT")}
            token = _TYPED.set(frozenset(typed))
            try:
                return function(*args, **{k: _plain(v) if k in names else v
                                          for k, v in values.items()})
            finally:
                _TYPED.reset(token)

        context = inspect.Parameter("_ctx", inspect.Parameter.KEYWORD_ONLY,
                                    annotation=typer.Context)
        command.__signature__ = inspect.Signature(extra + params + [context])
        return command

    return decorate


def _choices_as_enum(tp: Any, in_list: bool = False) -> Any:
    """Typer parses repeatable choices only as an Enum: ``list[Literal[...]]`` ->
    ``list[Enum]`` (:func:`_plain` hands the command the plain values back)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal and in_list:
        return enum.Enum("Choice", {str(a): str(a) for a in args}, type=str)
    if origin is list:
        return list[_choices_as_enum(args[0], in_list=True)]
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return Optional[_choices_as_enum(next(a for a in args if a is not type(None)), in_list)]
    return tp


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


#: The flags the user typed in the command being run (set by :func:`takes`).
_TYPED: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("typed",
                                                                       default=frozenset())


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``values`` the user typed (not left at the default)."""
    typed = _TYPED.get()
    return {k: v for k, v in values.items() if k in typed}


def train_overrides(values: dict[str, Any]) -> dict[str, Any]:
    """Typed train flags as the nested mapping :func:`resolve_train_config` takes."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        field = FLAGS[name].field
        if field is None:
            continue
        if isinstance(value, Path):
            value = str(value)
        head, _, key = field.partition(".")
        if key:
            out.setdefault(head, {})[key] = value
        else:
            out[head] = list(value) if isinstance(value, (list, tuple)) else value
    return out
