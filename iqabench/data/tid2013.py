"""TID2013 (Ponomarenko et al., SPIC 2015): 3,000 distorted images of 25 references.

ROOT holds ``mos_with_names.txt`` (``<MOS> <name>`` per line, CRLF, MOS 0-9 higher =
better), optionally ``mos_std.txt`` (one std per line, same order) and the images in
``distorted_images/``. Names are ``iXX_YY_Z.bmp`` (reference XX, distortion YY, level Z),
but the release writes 75 of them as ``IXX_..`` or ``.BMP``, so they are matched to the
files on disk case-insensitively. The content id is the reference number XX.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from iqabench.data._native import dataset_root, file_index, make_table
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError

SCORE_FILE = "mos_with_names.txt"
STD_FILE = "mos_std.txt"
IMAGE_FOLDER = "distorted_images"
NAME = re.compile(r"^i(\d\d)_(\d\d)_(\d)\.bmp$", re.IGNORECASE)


def read_tid2013(root: str | Path) -> DatasetTable:
    """TID2013: ROOT holds ``mos_with_names.txt`` and ``distorted_images/``."""
    root = dataset_root(root, "tid2013")
    score_path = root / SCORE_FILE
    if not score_path.is_file():
        raise IqabenchError(f"tid2013: no score file under {root} (looked for {SCORE_FILE})")
    mos, names = [], []
    for number, line in enumerate(score_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not NAME.match(parts[1]):
            raise IqabenchError(f"{score_path}:{number}: expected '<MOS> iXX_YY_Z.bmp', got {line.strip()!r}")
        try:
            mos.append(float(parts[0]))
        except ValueError:
            raise IqabenchError(f"{score_path}:{number}: MOS {parts[0]!r} is not a number") from None
        names.append(parts[1])

    std = None
    if (root / STD_FILE).is_file():
        std = _read_std(root / STD_FILE)
        if len(std) != len(names):
            raise IqabenchError(f"{root / STD_FILE}: {len(std)} values for {len(names)} images in {SCORE_FILE}")

    on_disk = file_index(root / IMAGE_FOLDER)
    files = [on_disk.get(n.lower(), root / IMAGE_FOLDER / n) for n in names]
    parsed = [NAME.match(n).groups() for n in names]
    return make_table(
        "tid2013",
        root,
        files,
        mos,
        mos_std=std,
        content_id=[ref for ref, _, _ in parsed],
        mos_range=(0.0, 9.0),
        label_note=f"MOS (0-9) from {SCORE_FILE}" + (f"; std from {STD_FILE}" if std is not None else ""),
        extra_columns={"distortion": [int(d) for _, d, _ in parsed], "level": [int(v) for _, _, v in parsed]},
    )


def _read_std(path: Path) -> np.ndarray:
    try:
        return np.array([float(x) for x in path.read_text().split()])
    except ValueError as err:
        raise IqabenchError(f"{path}: expected one number per line ({err})") from err
