"""`iqabench train`: not built yet (issue 4)."""

from __future__ import annotations

from iqabench.errors import IqabenchError


def train() -> None:
    """Not built yet (issue 4): this command does nothing so far."""
    raise IqabenchError("'iqabench train' is not built yet (issue 4)")
