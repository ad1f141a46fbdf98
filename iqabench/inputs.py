"""Which image files a list of command-line PATHs means (``iqabench predict PATH...``).

Each PATH is one of:

- an image file (any name; it is tried as an image whatever its extension);
- a folder: every file under it, recursively, with an image extension
  (:data:`IMAGE_EXTENSIONS`, any case), in sorted order; other files there are listed
  as ignored, not scored;
- a glob (``photos/*.jpg``, ``data/**/*.png``): the files and folders it matches;
- a list file (``.txt``, ``.lst``, ``.list``): one path per line, relative to the list
  file's folder or absolute; blank lines and lines starting with ``#`` are skipped;
- a ``.csv`` with a ``path`` column (as ``--dataset csv`` reads it): those paths.

A PATH that does not exist, or a list entry that does not, is a :class:`Missing` entry
with its reason; nothing is dropped without being named. This module reads no pixels.
"""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp",
                              ".gif", ".ppm", ".pgm", ".jp2", ".j2k", ".jfif"})
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Missing:
    """A PATH or list entry that names no file, and why."""

    path: str
    reason: str


@dataclass
class Inputs:
    """The image files to score, in order (no repeats), and what was not usable."""

    files: list[str] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)  # not scored: named, with the reason
    ignored: list[str] = field(default_factory=list)  # non-image files found in folders
    empty: list[str] = field(default_factory=list)  # folders/globs that held no image file


def gather(paths: Iterable[str | Path]) -> Inputs:
    """The image files that ``paths`` name (see the module docstring)."""
    out = Inputs()
    seen: set[str] = set()

    def add(path: Path) -> None:
        key = str(path.resolve())
        if key not in seen:
            seen.add(key)
            out.files.append(str(path))

    for raw in paths:
        text = str(raw)
        path = Path(text)
        if path.is_dir():
            _add_folder(path, add, out)
        elif path.is_file():
            suffix = path.suffix.lower()
            if suffix in LIST_EXTENSIONS or suffix == ".csv":
                _add_list(path, add, out)
            else:
                add(path)
        elif _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                out.missing.append(Missing(text, "no file matches this pattern"))
            for match in matches:
                match_path = Path(match)
                if match_path.is_dir():
                    _add_folder(match_path, add, out)
                elif match_path.is_file():
                    add(match_path)
        else:
            out.missing.append(Missing(text, "no such file or folder"))
    return out


def _add_folder(folder: Path, add, out: Inputs) -> None:
    found = False
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            add(path)
            found = True
        else:
            out.ignored.append(str(path))
    if not found:
        out.empty.append(str(folder))


def _add_list(path: Path, add, out: Inputs) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        out.missing.append(Missing(str(path), f"not a readable list of paths ({err})"))
        return
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or "path" not in rows[0]:
            out.missing.append(Missing(str(path), "a .csv PATH needs a 'path' column"))
            return
        entries = [row["path"] for row in rows]
    else:
        entries = [line.strip() for line in text.splitlines()]
        entries = [e for e in entries if e and not e.startswith("#")]
    if not entries:
        out.empty.append(str(path))
    for entry in entries:
        target = Path(entry)
        if not target.is_absolute():
            target = path.parent / target
        if target.is_file():
            add(target)
        else:
            out.missing.append(Missing(str(target), f"listed in {path}, no such file"))


__all__ = ["IMAGE_EXTENSIONS", "LIST_EXTENSIONS", "Inputs", "Missing", "gather"]
