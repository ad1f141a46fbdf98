"""What every reader needs to turn a folder as distributed into a table.

Finding the score file, checking its columns, matching listed names to files on disk
whatever their case, and building the frame in :data:`~iqabench.data.table.COLUMNS`
order. Readers do not require the images to exist: ``iqabench data check`` reports
missing ones, so the score files alone can be read (and tested) without images.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from iqabench.data.table import COLUMNS, DatasetTable
from iqabench.errors import IqabenchError


def decode_threads() -> int:
    """Threads used to decode: one per available core, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def dataset_root(root: str | Path | None, dataset: str) -> Path:
    """``root`` as an absolute folder, or an error naming the dataset that needs it."""
    if root is None:
        raise IqabenchError(f"dataset {dataset!r} needs ROOT, the folder as its authors distribute it")
    path = absolute(root)
    if not path.is_dir():
        raise IqabenchError(f"{dataset} root {path} is not a folder")
    return path


def absolute(path: str | Path) -> Path:
    """``path`` made absolute with ``..`` folded, symlinks left alone."""
    return Path(os.path.abspath(Path(path).expanduser()))


def find_file(root: Path, candidates: Sequence[str], dataset: str) -> Path:
    """The first of ``candidates`` (paths relative to ``root``) that exists."""
    for candidate in candidates:
        if (root / candidate).is_file():
            return root / candidate
    listed = ", ".join(candidates)
    raise IqabenchError(f"{dataset}: no score file under {root} (looked for {listed})")


def require_columns(frame: pd.DataFrame, columns: Iterable[str], file: Path) -> None:
    """Raise unless ``frame`` (read from ``file``) has every one of ``columns``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns))
        raise IqabenchError(
            f"{file}: expected columns {', '.join(columns)}; missing {', '.join(missing)} (found: {found})"
        )


def file_index(folder: Path) -> dict[str, Path]:
    """Every file under ``folder`` keyed by its lower-cased name (empty if no folder).

    Releases list names in a case that need not match the files (TID2013 lists
    ``I01_01_1.bmp`` for ``i01_01_1.bmp``), and on a case-sensitive file system only a
    lookup by lower-cased name finds them.
    """
    index: dict[str, Path] = {}
    if not folder.is_dir():
        return index
    for dirpath, _dirnames, filenames in os.walk(folder):
        for filename in filenames:
            index.setdefault(filename.lower(), Path(dirpath) / filename)
    return index


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form: the table's ``name`` key."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def make_table(
    dataset: str,
    root: Path,
    files: Sequence[Path],
    mos: Sequence[float] | np.ndarray,
    *,
    mos_range: tuple[float, float],
    mos_std: Sequence[float] | np.ndarray | None = None,
    content_id: Sequence[str] | None = None,
    official_split: Sequence[str] | None = None,
    label_note: str = "",
    resize: str | None = None,
    extra_columns: dict[str, Sequence] | None = None,
    extras: dict | None = None,
) -> DatasetTable:
    """Build a :class:`DatasetTable` from per-image sequences (``files`` absolute)."""
    n = len(files)
    names = [relative_name(Path(f), root) for f in files]
    frame = pd.DataFrame(
        {
            "name": names,
            "path": [str(f) for f in files],
            "mos": np.asarray(mos, dtype=np.float64),
            "mos_std": np.full(n, np.nan) if mos_std is None else np.asarray(mos_std, dtype=np.float64),
            "content_id": names if content_id is None else [str(c) for c in content_id],
            "official_split": [""] * n if official_split is None else list(official_split),
        },
        columns=list(COLUMNS),
    )
    for column, values in (extra_columns or {}).items():
        frame[column] = list(values)
    return DatasetTable(
        name=dataset,
        root=root,
        frame=frame,
        mos_range=(float(mos_range[0]), float(mos_range[1])),
        label_note=label_note,
        resize=resize,
        extras=dict(extras or {}),
    )


def cell_text(value: object) -> str:
    """A spreadsheet cell as text: ``1600.0`` (a number) -> ``"1600"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def load_mat_variable(path: Path, variable: str, dataset: str) -> np.ndarray:
    """One variable of a MATLAB .mat file, flattened."""
    if not path.is_file():
        raise IqabenchError(f"{dataset}: {path} not found")
    try:
        content = scipy.io.loadmat(path)
    except (ValueError, OSError) as err:
        raise IqabenchError(f"{path}: not a readable .mat file ({err})") from err
    if variable not in content:
        found = ", ".join(k for k in content if not k.startswith("__"))
        raise IqabenchError(f"{path}: expected variable {variable!r} (found: {found})")
    return np.asarray(content[variable]).ravel()


def mat_text(cell: object) -> str:
    """A MATLAB cell element (an array holding one string) as str."""
    return str(np.asarray(cell).ravel()[0]).strip()
