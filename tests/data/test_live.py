"""LIVE R2: 982 aligned entries, reference copies dropped, DMOS flipped, folder numbering."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from iqabench.data import load_dataset
from iqabench.data.check import check_dataset
from iqabench.errors import IqabenchError

FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))


def _write_release(root: Path, n_entries: int = 982, seed: int = 0) -> dict:
    """The two .mat files with the release's shapes: 1x982 rows, 203 reference copies."""
    rng = np.random.default_rng(seed)
    orgs = np.zeros(n_entries, dtype=bool)
    orgs[rng.choice(n_entries, size=203, replace=False)] = True
    dmos = np.where(orgs, 0.0, rng.uniform(5, 95, n_entries))
    refs = np.empty((1, n_entries), dtype=object)
    for i in range(n_entries):
        refs[0, i] = f"ref{i % 29:02d}.bmp"
    rows = {"dmos_new": dmos, "orgs": orgs.astype(np.uint8), "dmos_std": np.full(n_entries, 7.5)}
    scipy.io.savemat(root / "dmos_realigned.mat", {k: v.reshape(1, -1) for k, v in rows.items()})
    scipy.io.savemat(root / "refnames_all.mat", {"refnames_all": refs})
    return {"dmos": dmos, "orgs": orgs, "refs": refs.ravel().tolist()}


def test_fixture_release(tmp_path: Path):
    truth = _write_release(tmp_path)
    table = load_dataset("live", tmp_path)
    keep = np.flatnonzero(~truth["orgs"])
    assert len(table) == 779 == len(keep)
    np.testing.assert_allclose(table.frame["mos"], 100.0 - truth["dmos"][keep])
    assert table.mos_range == (0.0, 100.0) and "flipped" in table.label_note
    assert table.frame["content_id"].tolist() == [truth["refs"][i] for i in keep]
    assert table.frame["content_id"].nunique() == 29
    starts = np.cumsum([0] + [n for _, n in FOLDERS])
    kept_per_folder = {f: int((~truth["orgs"][a:b]).sum()) for (f, _), a, b in zip(FOLDERS, starts, starts[1:])}
    assert table.frame["distortion"].value_counts().to_dict() == kept_per_folder
    # entry k maps to the k-th image of the folder sequence: jp2k img1..227, jpeg img1..233, ...
    expected = [f"{f}/img{i}.bmp" for f, n in FOLDERS for i in range(1, n + 1)]
    assert table.frame["name"].tolist() == [expected[i] for i in keep]
    first_jpeg = next(i for i in keep if i >= 227)
    assert table.frame.set_index("name").loc[expected[first_jpeg], "distortion"] == "jpeg"

    # a few images written where the table says: the check finds them and reports the rest
    for name in table.frame["name"][:3]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (24, 16), (1, 2, 3)).save(tmp_path / name)
    assert check_dataset(replace(table, frame=table.frame.head(3))) == []


def test_stripped_copies_are_refused(tmp_path: Path):
    """The re-saved copies on GitHub have orgs/refnames of length 779: not alignable."""
    _write_release(tmp_path)
    scipy.io.savemat(tmp_path / "refnames_all.mat", {"refnames_all": np.array([["a.bmp"]] * 779, dtype=object)})
    with pytest.raises(IqabenchError, match="refnames_all has 779 entries, expected 982"):
        load_dataset("live", tmp_path)


def test_dmos_past_100_widens_the_range(tmp_path: Path):
    truth = _write_release(tmp_path)
    dmos = truth["dmos"].copy()
    dmos[np.flatnonzero(~truth["orgs"])[0]] = 111.7
    content = scipy.io.loadmat(tmp_path / "dmos_realigned.mat")
    content["dmos_new"] = dmos.reshape(1, -1)
    scipy.io.savemat(tmp_path / "dmos_realigned.mat", {k: v for k, v in content.items() if not k.startswith("__")})
    table = load_dataset("live", tmp_path)
    assert table.mos_range == (-12.0, 100.0) and "widened" in table.label_note
    assert table.frame["mos"].min() == pytest.approx(100 - 111.7)
