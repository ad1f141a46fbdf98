"""KonIQ-10k (Hosu et al., TIP 2020): 10,073 in-the-wild photos, official 7058/1000/2015 split.

The release has two score files; either or both may be present in ROOT:

- ``koniq10k_scores_and_distributions.csv``: ``image_name, c1..c5, c_total, MOS, SD,
  MOS_zscore`` with ``MOS`` and ``SD`` on the 1-5 rating scale and ``MOS_zscore`` on 0-100;
- ``koniq10k_distributions_sets.csv``: ``image_name, c1..c5, c_total, MOS, SD, set``
  where ``MOS`` is the 0-100 value (the other file's ``MOS_zscore``), ``SD`` is on 1-5 and
  ``set`` is training/validation/test.

The label is the 0-100 score (what Hyper-IQA trains on). ``SD`` cannot be moved to that
scale (the 0-100 score is a rescaled z-score, not a linear map of the 1-5 MOS), so it is
kept in the extra column ``sd_1to5`` and ``mos_std`` stays NaN.

Images live in ``1024x768/`` (resized to 512x384, width x height, when decoded, as
Hyper-IQA does) or in the authors' ``512x384/`` release (used as is, and preferred).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from iqabench.data._native import dataset_root, make_table, require_columns
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError

SCORES_FILE = "koniq10k_scores_and_distributions.csv"
SETS_FILE = "koniq10k_distributions_sets.csv"
SPLIT_NAMES = {"training": "train", "validation": "val", "test": "test"}


def read_koniq(root: str | Path) -> DatasetTable:
    """KonIQ-10k: ROOT holds the score CSV(s) and ``1024x768/`` or ``512x384/``."""
    root = dataset_root(root, "koniq10k")
    scores_path, sets_path = root / SCORES_FILE, root / SETS_FILE
    if not scores_path.is_file() and not sets_path.is_file():
        raise IqabenchError(f"koniq10k: no score file under {root} (looked for {SCORES_FILE}, {SETS_FILE})")

    sets = _read_sets(sets_path) if sets_path.is_file() else None
    if scores_path.is_file():
        scores = pd.read_csv(scores_path)
        require_columns(scores, ("image_name", "MOS", "SD", "MOS_zscore"), scores_path)
        table = pd.DataFrame(
            {
                "image_name": scores["image_name"].astype(str),
                "mos": scores["MOS_zscore"].astype(float),
                "mos_1to5": scores["MOS"].astype(float),
                "sd_1to5": scores["SD"].astype(float),
            }
        )
        note = f"MOS_zscore (0-100) from {SCORES_FILE}; SD (1-5 scale) kept as sd_1to5"
        if sets is not None:
            table = _attach_sets(table, sets, scores_path, sets_path)
            note += f"; official split from {SETS_FILE}"
        else:
            table["split"] = ""
    else:
        table = sets.rename(columns={"MOS": "mos", "SD": "sd_1to5"})
        note = f"MOS (0-100) from {SETS_FILE}; SD (1-5 scale) kept as sd_1to5"

    folder, resize = _image_folder(root)
    return make_table(
        "koniq10k",
        root,
        [root / folder / name for name in table["image_name"]],
        table["mos"].to_numpy(),
        mos_range=(0.0, 100.0),
        official_split=table["split"].tolist(),
        label_note=note,
        resize=resize,
        extra_columns={c: table[c].to_numpy() for c in ("mos_1to5", "sd_1to5") if c in table},
        extras={"image_folder": folder},
    )


def _read_sets(path: Path) -> pd.DataFrame:
    sets = pd.read_csv(path)
    require_columns(sets, ("image_name", "MOS", "SD", "set"), path)
    unknown = sorted(set(sets["set"].astype(str)) - set(SPLIT_NAMES))
    if unknown:
        raise IqabenchError(f"{path}: column 'set' has values {unknown}; expected training/validation/test")
    return pd.DataFrame(
        {
            "image_name": sets["image_name"].astype(str),
            "MOS": sets["MOS"].astype(float),
            "SD": sets["SD"].astype(float),
            "split": sets["set"].map(SPLIT_NAMES),
        }
    )


def _attach_sets(table: pd.DataFrame, sets: pd.DataFrame, scores_path: Path, sets_path: Path) -> pd.DataFrame:
    """Add the official split to the scores table; both files must list the same images."""
    only_scores = set(table["image_name"]) - set(sets["image_name"])
    only_sets = set(sets["image_name"]) - set(table["image_name"])
    if only_scores or only_sets:
        example = sorted(only_scores or only_sets)[0]
        raise IqabenchError(
            f"koniq10k: {scores_path.name} and {sets_path.name} list different images "
            f"({len(only_scores)} only in the first, {len(only_sets)} only in the second, e.g. {example})"
        )
    merged = table.merge(sets[["image_name", "MOS", "split"]], on="image_name", how="left", validate="many_to_one")
    far = np.abs(merged["MOS"] - merged["mos"]) > 1e-3
    if far.any():
        example = merged.loc[far, "image_name"].iloc[0]
        raise IqabenchError(
            f"koniq10k: MOS_zscore in {scores_path.name} disagrees with MOS in {sets_path.name} "
            f"for {int(far.sum())} images, e.g. {example}"
        )
    return merged.drop(columns="MOS")


def _image_folder(root: Path) -> tuple[str, str | None]:
    """``512x384`` as is when the authors' small release is there, else ``1024x768`` resized."""
    if (root / "512x384").is_dir():
        return "512x384", None
    return "1024x768", "512x384"
