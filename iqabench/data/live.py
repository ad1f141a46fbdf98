"""LIVE Image Quality Assessment Database Release 2 (Sheikh et al., 2006): 779 distorted images.

ROOT is ``databaserelease2``: ``dmos_realigned.mat`` (``dmos_new``, ``orgs``, optional
``dmos_std``; 1x982 each), ``refnames_all.mat`` (``refnames_all``, 1x982 reference names)
and one folder per distortion. The 982 entries run through the folders in this order,
each numbered ``img1.bmp`` .. ``imgN.bmp`` (so ``info.txt`` is not needed): jp2k 227,
jpeg 233, wn 174, gblur 174, fastfading 174. Entries with ``orgs == 1`` are copies of the
reference images (DMOS 0) and are dropped, leaving 779.

Realigned DMOS is lower = better on a nominal 0-100 scale; the label is ``100 - dmos``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from iqabench.data._native import dataset_root, load_mat_variable, make_table, mat_text
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError

#: (folder, number of entries) in the order of ``dmos_new``.
FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
N_ENTRIES = sum(n for _, n in FOLDERS)  # 982
DMOS_SCALE = 100.0


def read_live(root: str | Path) -> DatasetTable:
    """LIVE R2: ROOT is ``databaserelease2`` (the .mat files and jp2k/jpeg/wn/gblur/fastfading)."""
    root = dataset_root(root, "live")
    dmos_path, refs_path = root / "dmos_realigned.mat", root / "refnames_all.mat"
    dmos = load_mat_variable(dmos_path, "dmos_new", "live").astype(float)
    orgs = load_mat_variable(dmos_path, "orgs", "live").astype(bool)
    refnames = [mat_text(c) for c in load_mat_variable(refs_path, "refnames_all", "live")]
    try:
        dmos_std = load_mat_variable(dmos_path, "dmos_std", "live").astype(float)
    except IqabenchError:
        dmos_std = np.full(len(dmos), np.nan)  # older copies have no per-image std
    for what, values in (("dmos_new", dmos), ("orgs", orgs), ("dmos_std", dmos_std), ("refnames_all", refnames)):
        if len(values) != N_ENTRIES:
            raise IqabenchError(
                f"live: {what} has {len(values)} entries, expected {N_ENTRIES} aligned with the image folders "
                f"({', '.join(f'{f} {n}' for f, n in FOLDERS)}); re-saved copies that dropped the "
                "reference entries cannot be aligned"
            )

    files = [root / folder / f"img{i}.bmp" for folder, n in FOLDERS for i in range(1, n + 1)]
    distortion = [folder for folder, n in FOLDERS for _ in range(n)]
    keep = np.flatnonzero(~orgs)
    mos = DMOS_SCALE - dmos[keep]
    # The realigned scale can run past 0-100 by a little; widen rather than report them.
    lo = min(0.0, math.floor(mos.min())) if len(mos) else 0.0
    hi = max(DMOS_SCALE, math.ceil(mos.max())) if len(mos) else DMOS_SCALE
    note = f"realigned DMOS (0-{DMOS_SCALE:g}, lower = better) flipped: mos = {DMOS_SCALE:g} - dmos_new"
    if (lo, hi) != (0.0, DMOS_SCALE):
        note += f"; mos_range widened to {lo:g}-{hi:g} to cover the data"
    return make_table(
        "live",
        root,
        [files[i] for i in keep],
        mos,
        mos_std=dmos_std[keep],
        content_id=[refnames[i] for i in keep],
        mos_range=(lo, hi),
        label_note=note,
        extra_columns={"distortion": [distortion[i] for i in keep]},
    )
