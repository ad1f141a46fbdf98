"""What every benchmark writes beside its numbers: a README from a template, with its tables
from :meth:`pandas.DataFrame.to_markdown` and a "Run" section saying how, where and from
which code the numbers came."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import shlex
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template

import numpy as np
import PIL
import torch
import torchvision

from iqabench.provenance import cpu_model, git_commit

REPO = Path(__file__).resolve().parents[1]


def command(module: str, argv: Sequence[str] | None) -> str:
    """The command line that reruns ``benchmarks.<module>`` with ``argv`` (default: this
    process's arguments)."""
    return shlex.join(["python", "-m", f"benchmarks.{module}",
                       *(sys.argv[1:] if argv is None else argv)])


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_facts(cmd: str, device: torch.device | None = None, **extra: str) -> dict[str, str]:
    """How, when, where and from which commit; ``extra`` items go after the machine."""
    gpu = f"; GPU {torch.cuda.get_device_name(device)}" if device and device.type == "cuda" else ""
    return {
        "command": f"`{cmd}`",
        "commit": git_commit(cwd=REPO),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"CPU {cpu_model()}, {cores()} cores available{gpu}",
        "torch threads": str(torch.get_num_threads()),
        **extra,
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, "
                    f"torchvision {torchvision.__version__}, numpy {np.__version__}, "
                    f"pillow {PIL.__version__}",
        "peak RSS of the benchmark process":
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
    }


def bullets(items: Mapping[str, str] | Sequence[str]) -> str:
    """``- key: value`` lines (or ``- item`` lines for a sequence)."""
    if isinstance(items, Mapping):
        return "\n".join(f"- {k}: {v}" for k, v in items.items())
    return "\n".join(f"- {item}" for item in items)


def render(template: str, **fields: object) -> str:
    """``template`` (dedented, ``$name`` placeholders) filled in; a missing field raises."""
    return Template(textwrap.dedent(template).strip("\n")).substitute(fields).rstrip() + "\n"


def write(path: Path, template: str, **fields: object) -> Path:
    """:func:`render` into ``path``."""
    path.write_text(render(template, **fields))
    return path
