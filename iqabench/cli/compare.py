"""`iqabench compare`: not built yet (issue 5)."""

from __future__ import annotations

from iqabench.errors import IqabenchError


def compare() -> None:
    """Not built yet (issue 5): this command does nothing so far."""
    raise IqabenchError("'iqabench compare' is not built yet (issue 5)")
