"""AGIQA-3K (Li et al., TCSVT 2023): 2,982 AI-generated images from 300 prompts.

ROOT holds ``data.csv`` (``name, prompt, ..., mos_quality, std_quality, mos_align, ...``)
and ``images/``. The label is the perceptual-quality MOS ``mos_quality`` (0-5, higher =
better), never the text-alignment ``mos_align``. Images sharing a prompt share content,
so the prompt is the content id. The generator, parsed from the file name
(``<generator>_<variant>_<NNN>.jpg``: AttnGAN, DALLE2, glide, midjourney, sd1.5,
xl2.2), goes in the extra column ``group`` for plots.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from iqabench.data._native import dataset_root, find_file, make_table, require_columns
from iqabench.data.table import DatasetTable

SCORE_FILE = "data.csv"
COLUMNS = ("name", "prompt", "mos_quality", "std_quality")


def read_agiqa3k(root: str | Path) -> DatasetTable:
    """AGIQA-3K: ROOT holds ``data.csv`` and ``images/``."""
    root = dataset_root(root, "agiqa3k")
    path = find_file(root, (SCORE_FILE,), "agiqa3k")
    scores = pd.read_csv(path)
    require_columns(scores, COLUMNS, path)
    names = scores["name"].astype(str)
    return make_table(
        "agiqa3k",
        root,
        [root / "images" / n for n in names],
        pd.to_numeric(scores["mos_quality"], errors="coerce").to_numpy(),
        mos_std=pd.to_numeric(scores["std_quality"], errors="coerce").to_numpy(),
        content_id=scores["prompt"].astype(str).tolist(),
        mos_range=(0.0, 5.0),
        label_note=f"mos_quality (0-5) from {SCORE_FILE}; content id = prompt",
        extra_columns={"group": [generator(n) for n in names]},
    )


def generator(name: str) -> str:
    """``sd1.5_lowstep_267.jpg`` -> ``sd1.5``: the text before the last two ``_`` fields."""
    parts = Path(name).stem.rsplit("_", 2)
    return parts[0] if len(parts) == 3 else ""
