"""`iqabench eval`: not built yet (issue 4)."""

from __future__ import annotations

from iqabench.errors import IqabenchError


def evaluate() -> None:
    """Not built yet (issue 4): this command does nothing so far."""
    raise IqabenchError("'iqabench eval' is not built yet (issue 4)")
