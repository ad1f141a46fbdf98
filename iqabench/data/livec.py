"""LIVE In the Wild Challenge (Ghadiyaram & Bovik, TIP 2016): 1,162 authentic photos.

ROOT is the ``ChallengeDB_release`` folder: ``Data/AllImages_release.mat`` (a 1169x1 cell
of file names), ``Data/AllMOS_release.mat`` (1x1169 MOS, 0-100),
``Data/AllStdDev_release.mat`` (optional) and the images in ``Images/``. The first 7
entries are the training images shown to subjects (``Images/trainingImages/t1..t7``);
as in every published protocol they are left out, leaving 1,162.
"""

from __future__ import annotations

from pathlib import Path


from iqabench.data._native import dataset_root, load_mat_variable, make_table, mat_text
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError

N_TRAINING_IMAGES = 7  # t1..t7, shown to subjects before the study


def read_livec(root: str | Path) -> DatasetTable:
    """LIVE Challenge: ROOT is ``ChallengeDB_release`` (``Data/*.mat`` and ``Images/``)."""
    root = dataset_root(root, "livec")
    data = root / "Data"
    names = [mat_text(c) for c in load_mat_variable(data / "AllImages_release.mat", "AllImages_release", "livec")]
    mos = load_mat_variable(data / "AllMOS_release.mat", "AllMOS_release", "livec").astype(float)
    std_path = data / "AllStdDev_release.mat"
    std = load_mat_variable(std_path, "AllStdDev_release", "livec").astype(float) if std_path.is_file() else None
    if len(mos) != len(names) or (std is not None and len(std) != len(names)):
        counts = f"{len(mos)} in AllMOS_release.mat"
        if std is not None:
            counts += f", {len(std)} in AllStdDev_release.mat"
        raise IqabenchError(f"livec: AllImages_release.mat lists {len(names)} images but there are {counts}")
    keep = slice(N_TRAINING_IMAGES, None)
    return make_table(
        "livec",
        root,
        [root / "Images" / name for name in names[keep]],
        mos[keep],
        mos_std=None if std is None else std[keep],
        mos_range=(0.0, 100.0),
        label_note=f"MOS (0-100) from AllMOS_release.mat; first {N_TRAINING_IMAGES} (training images) excluded",
    )
