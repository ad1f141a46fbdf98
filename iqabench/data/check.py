"""Find what would break training before it starts: bad files, bad scores, duplicates.

:func:`scan_dataset` decodes every image once (in threads; Pillow's decoders release the
GIL) with truncated images treated as errors, checks every score against the table's
``mos_range`` and looks for duplicate names. Each fault becomes a :class:`Problem` that
names the file at fault; :func:`skip_bad` drops those rows for ``train --skip-bad``.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFile

from iqabench.data.table import DatasetTable

#: Problem kinds, in the order they are reported.
KINDS = ("missing", "unreadable", "truncated", "bad-score", "out-of-range", "duplicate")


@dataclass(frozen=True)
class Problem:
    """One fault: ``file`` is the image path (as in the table's ``path`` column)."""

    file: str
    kind: str  # one of KINDS
    detail: str


@dataclass
class ScanReport:
    """What ``iqabench data check`` prints: counts, score range, sizes, problems."""

    dataset: str
    n_images: int
    mos_min: float
    mos_max: float
    mos_range: tuple[float, float]
    label_note: str = ""
    n_contents: int = 0  # distinct content ids (references, prompts)
    split_counts: dict[str, int] = field(default_factory=dict)  # official split, if any
    sizes: Counter = field(default_factory=Counter)  # (width, height) -> number of images
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0


def check_dataset(table: DatasetTable, workers: int | None = None) -> list[Problem]:
    """Every problem in ``table``: missing/unreadable/truncated images, bad scores, duplicates."""
    return scan_dataset(table, workers=workers).problems


def scan_dataset(table: DatasetTable, workers: int | None = None) -> ScanReport:
    """Decode every image and check every score; see :class:`ScanReport`."""
    start = time.perf_counter()
    frame = table.frame
    problems = _score_problems(table) + _duplicate_problems(table)
    paths = frame["path"].astype(str).tolist()
    workers = workers or min(8, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_inspect_image, paths))
    sizes: Counter = Counter()
    for size, problem in results:
        if problem is not None:
            problems.append(problem)
        if size is not None:
            sizes[size] += 1
    order = {kind: i for i, kind in enumerate(KINDS)}
    problems.sort(key=lambda p: (order.get(p.kind, len(KINDS)), p.file))
    mos = frame["mos"].to_numpy(dtype=float)
    finite = mos[np.isfinite(mos)]
    return ScanReport(
        dataset=table.name,
        n_images=len(frame),
        mos_min=float(finite.min()) if len(finite) else math.nan,
        mos_max=float(finite.max()) if len(finite) else math.nan,
        mos_range=table.mos_range,
        label_note=table.label_note,
        n_contents=int(frame["content_id"].nunique()),
        split_counts=_split_counts(frame["official_split"]),
        sizes=sizes,
        problems=problems,
        seconds=time.perf_counter() - start,
    )


def _inspect_image(path: str) -> tuple[tuple[int, int] | None, Problem | None]:
    """(width, height) and the problem, if any, of one image, decoding it in full."""
    if not os.path.isfile(path):
        return None, Problem(path, "missing", "file not found")
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone switched it on globally: we must not hide truncation
        return None, Problem(path, "unreadable", "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on; cannot check")
    size = None
    try:
        with Image.open(path) as image:
            size = image.size
            if image.format == "JPEG":
                # Decoding at 1/8 scale still reads every entropy-coded byte (truncation
                # still fails) but skips most of the inverse DCT: several times faster.
                image.draft(image.mode, (max(1, size[0] // 8), max(1, size[1] // 8)))
            image.load()
    except OSError as err:
        kind = "truncated" if "truncated" in str(err) else "unreadable"
        return size, Problem(path, kind, f"{type(err).__name__}: {err}")
    except Exception as err:  # decoders raise ValueError, SyntaxError, DecompressionBombError...
        return size, Problem(path, "unreadable", f"{type(err).__name__}: {err}")
    return size, None


def _split_counts(subsets: pd.Series) -> dict[str, int]:
    """Images per official subset, train/val/test first; {} when there is no split."""
    counts = subsets[subsets != ""].value_counts()
    order = {"train": 0, "val": 1, "test": 2}
    return {k: int(counts[k]) for k in sorted(counts.index, key=lambda k: (order.get(k, 3), k))}


def _score_problems(table: DatasetTable) -> list[Problem]:
    lo, hi = table.mos_range
    slack = 1e-9 * max(1.0, abs(hi - lo))
    problems = []
    for path, mos in zip(table.frame["path"], table.frame["mos"].to_numpy(dtype=float)):
        if not np.isfinite(mos):
            problems.append(Problem(str(path), "bad-score", f"MOS is {mos}"))
        elif mos < lo - slack or mos > hi + slack:
            problems.append(Problem(str(path), "out-of-range", f"MOS {mos:g} outside {lo:g}-{hi:g}"))
    return problems


def _duplicate_problems(table: DatasetTable) -> list[Problem]:
    frame = table.frame
    problems = []
    for column in ("name", "path"):
        counts = frame[column].value_counts()
        for value, count in counts[counts > 1].items():
            paths = frame.loc[frame[column] == value, "path"].astype(str).unique()
            for path in paths:
                problems.append(Problem(path, "duplicate", f"{column} {value!r} listed {count} times"))
    return list(dict.fromkeys(problems))  # a repeated row is repeated in both columns: report once


def skip_bad(table: DatasetTable, problems: list[Problem]) -> tuple[DatasetTable, list[Problem]]:
    """``table`` without every row whose file has a problem, and the problems skipped.

    All rows of a duplicated name are dropped: the scores cannot tell which is right.
    """
    bad = {p.file for p in problems}
    keep = ~table.frame["path"].astype(str).isin(bad)
    present = set(table.frame["path"].astype(str))
    skipped = [p for p in problems if p.file in present]
    frame = table.frame.loc[keep].reset_index(drop=True)
    return replace(table, frame=frame, extras={**table.extras, "skipped": len(table.frame) - len(frame)}), skipped


def write_problems(problems: list[Problem], path: str | Path) -> None:
    """Problems as a CSV (``file,kind,detail``), e.g. the skipped list of a run."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "kind", "detail"])
        writer.writerows((p.file, p.kind, p.detail) for p in problems)


def format_report(report: ScanReport) -> str:
    """The report as text lines: summary first, then every problem with its file."""
    lo, hi = report.mos_range
    lines = [
        f"{report.dataset}: {report.n_images} images, {report.n_contents} content ids, "
        f"checked in {report.seconds:.1f} s",
        f"MOS: {report.mos_min:.4g} .. {report.mos_max:.4g} (scale {lo:g}-{hi:g})",
    ]
    if report.label_note:
        lines.append(f"labels: {report.label_note}")
    if report.split_counts:
        lines.append("official split: " + ", ".join(f"{k} {v}" for k, v in report.split_counts.items()))
    lines.append(f"resolution: {_size_summary(report.sizes)}")
    if not report.problems:
        lines.append("no problems found")
        return "\n".join(lines)
    counts = Counter(p.kind for p in report.problems)
    lines.append(f"{len(report.problems)} problems: " + ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k]))
    lines += [f"  {p.kind:<12} {p.file}  ({p.detail})" for p in report.problems]
    return "\n".join(lines)


def _size_summary(sizes: Counter) -> str:
    if not sizes:
        return "no readable images"
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    common = ", ".join(f"{w}x{h} x{n}" for (w, h), n in sizes.most_common(5))
    more = f", ... ({len(sizes) - 5} more)" if len(sizes) > 5 else ""
    return (
        f"{len(sizes)} distinct size{'s' if len(sizes) > 1 else ''} ({common}{more}); "
        f"width {min(widths)}..{max(widths)}, height {min(heights)}..{max(heights)}"
    )
