"""`iqabench profile`: not built yet (issue 2)."""

from __future__ import annotations

from iqabench.errors import IqabenchError


def profile() -> None:
    """Not built yet (issue 2): this command does nothing so far."""
    raise IqabenchError("'iqabench profile' is not built yet (issue 2)")
