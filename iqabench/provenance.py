"""Where a result came from: the git commit and the machine.

Every file iqabench or a benchmark writes under ``results/`` records these, so each
number can be traced to the code and hardware that produced it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

_SOURCES = Path(__file__).resolve().parent

#: What results depend on, relative to the checkout's top: a commit is "with uncommitted
#: changes" only when these differ from it. Outputs written inside the checkout (a report
#: under results/, runs) do not count, or every report would call its own commit dirty.
CODE_PATHS = ("iqabench", "benchmarks", "pyproject.toml")


def git_commit(paths: Sequence[str] = CODE_PATHS, cwd: Path = _SOURCES) -> str:
    """Full commit hash of the checkout holding ``cwd``, with " (with uncommitted changes)"
    when any of ``paths`` (relative to the checkout's top) is edited, added or deleted;
    "unknown" outside a checkout. A tree copied to another machine sets the
    ``IQABENCH_COMMIT`` environment variable to the commit it was copied at: then that
    commit, marked as declared, since the copy may travel without ``.git`` or with a
    stale one."""
    declared = os.environ.get("IQABENCH_COMMIT", "").strip()
    if declared:
        return f"{declared} (declared by IQABENCH_COMMIT)"
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--",
                                *(f":(top){path}" for path in paths)], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
