"""One CLI vocabulary: every flag of every command is in the one table
(:data:`iqabench.cli.options.FLAGS`) under its own name, with the table's default."""

from __future__ import annotations

import dataclasses

import click
import pytest
import typer

from iqabench.cli import options
from iqabench.cli.app import app
from iqabench.config import EvalConfig, HyperIQAConfig, TrainConfig

#: Spellings that once named settings the table now names otherwise.
RETIRED = {"--crop-size": "--input-size", "--n-crops": "--eval-crops",
           "--crop-mode": "--eval-crop-mode", "--batch-size-eval": "--eval-batch-size",
           "--dtype": "--amp", "--bootstrap": "--n-boot", "--overwrite": "--force",
           "--no-force": "--force"}


def _commands(command, path: tuple[str, ...] = ()):
    """(``"data check"``, command) for every leaf of the tree (Typer's own click copy:
    duck-typed)."""
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def _options(command):
    return [p for p in command.params
            if getattr(p, "param_type_name", "") == "option" and p.name != "help"]


def _long(option) -> str:
    return max(option.opts, key=len)


COMMANDS = dict(_commands(typer.main.get_command(app)))


def test_the_tree_has_every_command():
    assert {"train", "eval", "profile", "compare", "summary", "data check", "data list",
            "weights check", "weights convert-lite", "weights import-hyperiqa", "predict",
            "export"} <= set(COMMANDS)


def _problems(path: str, command) -> list[str]:
    """Every way ``command``'s flags differ from the table."""
    problems = []
    for option in _options(command):
        flag = options.FLAGS.get(option.name)
        if flag is None or _long(option) != flag.flag:
            problems.append(f"{path}: {_long(option)} is not a flag of options.FLAGS")
            continue
        switch = [f"--no-{flag.flag[2:]}"] if flag.decls[0] != flag.flag else []
        if option.secondary_opts != switch:
            problems.append(f"{path}: {flag.flag} has off switch {option.secondary_opts}")
        if flag.default is options.REQUIRED:
            if not option.required:
                problems.append(f"{path}: {flag.flag} must be required")
            continue
        default, expected = option.default, flag.default
        if option.multiple:
            default = list(default or [])
            expected = [] if flag.default is None else [flag.default]
        if default != expected:
            problems.append(f"{path}: {flag.flag} defaults to {default!r}, the table says "
                            f"{expected!r}")
    return problems


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_flag_is_in_the_table_with_its_name_and_default(path):
    assert _problems(path, COMMANDS[path]) == []


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_no_retired_spelling(path):
    names = {o for option in _options(COMMANDS[path])
             for o in (*option.opts, *option.secondary_opts)}
    for old, new in RETIRED.items():
        assert old not in names, f"{path}: {old} is now {new}"


def test_a_command_naming_a_setting_its_own_way_fails():
    bad = click.Command("bad", params=[
        click.Option(["--crop-size"], default=224),  # the table's --input-size
        click.Option(["--n-boot"], default=200),  # the table's default is 1000
        click.Option(["--force/--no-force"], default=False),  # --force is one switch
    ])
    problems = _problems("bad", bad)
    assert len(problems) == 3, problems
    assert "--crop-size" in problems[0] and "1000" in problems[1] and "--force" in problems[2]


def test_train_flags_are_the_train_config_fields():
    fields = set(TrainConfig.model_fields) - {"model", "tests"}
    flags = {f.field for f in options.FLAGS.values() if f.field}
    assert fields | {"tests"} <= flags
    train = {o.name for o in _options(COMMANDS["train"])}
    assert set(options.TRAIN_FLAGS) <= train
    model = {f.name: f.default for f in dataclasses.fields(HyperIQAConfig)}
    for name, flag in options.FLAGS.items():
        if flag.field and flag.field.startswith("model."):
            assert flag.default == model[flag.field[6:]], name
        elif flag.field and name != "dataset" and flag.field != "tests":
            assert flag.default == TrainConfig.model_fields[flag.field].default, name
            assert flag.help == TrainConfig.model_fields[flag.field].description, name


def test_eval_config_shares_names_and_defaults_with_train_config():
    for name, info in EvalConfig.model_fields.items():
        if name in TrainConfig.model_fields and info.default is not None:
            assert info.default == TrainConfig.model_fields[name].default, name


def test_profile_budget_default_is_the_profiling_default():
    from iqabench.profiling import DEFAULT_BUDGET_S

    assert options.FLAGS["budget_s"].default == DEFAULT_BUDGET_S


def test_help_shows_the_schema_defaults():
    from typer.testing import CliRunner

    text = CliRunner().invoke(app, ["train", "--help"], terminal_width=200).output
    assert "--input-size" in text and "--eval-crops" in text and "--n-boot" in text
    assert "[default: 224]" in text and "[default: 9]" in text and "[default: 1000]" in text
