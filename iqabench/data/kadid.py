"""KADID-10k (Lin et al., QoMEX 2019): 10,125 distorted images of 81 references.

ROOT holds ``dmos.csv`` (``dist_img, ref_img, dmos, var``) and ``images/``. Despite its
name, ``dmos`` is a MOS on 1-5 with higher = better, so it is used as is; ``mos_std`` is
``sqrt(var)``. Distorted names are ``IXX_YY_ZZ.png`` (reference, distortion type, level).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from iqabench.data._native import dataset_root, find_file, make_table, require_columns
from iqabench.data.table import DatasetTable

SCORE_FILE = "dmos.csv"
COLUMNS = ("dist_img", "ref_img", "dmos", "var")


def read_kadid(root: str | Path) -> DatasetTable:
    """KADID-10k: ROOT holds ``dmos.csv`` and ``images/``."""
    root = dataset_root(root, "kadid10k")
    path = find_file(root, (SCORE_FILE,), "kadid10k")
    scores = pd.read_csv(path)
    require_columns(scores, COLUMNS, path)
    names = scores["dist_img"].astype(str)
    pieces = names.str.replace(r"\.\w+$", "", regex=True).str.split("_")
    return make_table(
        "kadid10k",
        root,
        [root / "images" / n for n in names],
        pd.to_numeric(scores["dmos"], errors="coerce").to_numpy(),
        mos_std=np.sqrt(pd.to_numeric(scores["var"], errors="coerce").to_numpy()),
        content_id=scores["ref_img"].astype(str).tolist(),
        mos_range=(1.0, 5.0),
        label_note=f"'dmos' (1-5, higher = better despite its name) from {SCORE_FILE}, kept; std = sqrt(var)",
        extra_columns={"distortion": [p[1] if len(p) == 3 else "" for p in pieces]},
    )
