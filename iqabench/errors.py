"""User-facing errors.

Anything a user can cause (a bad path, a wrong flag, a checkpoint that does not fit)
raises :class:`IqabenchError`; the CLI prints its message as one line and exits 1.
Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class IqabenchError(Exception):
    """An error caused by input, with a message that says what to change."""
