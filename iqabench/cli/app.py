"""The ``iqabench`` command: one registration line per command or group."""

from __future__ import annotations

import logging
import os
import sys

import typer

from iqabench.cli import compare, data, eval, export, predict, profile, train, weights
from iqabench.errors import IqabenchError

app = typer.Typer(
    help="Benchmark no-reference IQA models around Hyper-IQA: train, eval, predict, profile, "
         "compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("train")(train.train)
app.command("summary")(train.summary)
app.command("eval")(eval.evaluate)
app.command("predict")(predict.predict)
app.command("export")(export.export)
app.command("profile")(profile.profile)
app.command("compare")(compare.compare)
app.add_typer(data.app, name="data")
app.add_typer(weights.app, name="weights")


def main() -> None:
    """Entry point: user errors become one line on stderr and exit 1.

    Set ``IQABENCH_DEBUG=1`` to see the full traceback instead.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        app()
    except IqabenchError as err:
        if os.environ.get("IQABENCH_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
