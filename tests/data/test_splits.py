"""Splits: disjoint, covering, content-aware, seeded, official, and round-tripped as files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iqabench.data.splits import (
    Split,
    check_split,
    make_splits,
    official_split,
    read_split,
    write_split,
)
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError


def make_table(group_sizes: list[int], official: list[str] | None = None) -> DatasetTable:
    """A table with one content id per group, groups of the given sizes."""
    rows = []
    for g, size in enumerate(group_sizes):
        for k in range(size):
            rows.append({"name": f"img_{g:03d}_{k}.png", "content_id": f"ref{g:03d}"})
    frame = pd.DataFrame(rows)
    frame["path"] = "/nowhere/" + frame["name"]
    frame["mos"] = np.linspace(0, 1, len(frame))
    frame["mos_std"] = np.nan
    frame["official_split"] = official if official is not None else ""
    frame = frame[["name", "path", "mos", "mos_std", "content_id", "official_split"]]
    return DatasetTable("toy", None, frame, (0.0, 1.0))


def sides(split: Split) -> list[set[str]]:
    return [set(split.train), set(split.val), set(split.test)]


def test_rounds_are_disjoint_and_cover_the_dataset():
    table = make_table([1] * 200)  # every image its own content
    splits = make_splits(table, rounds=10, seed=3)
    assert [s.round for s in splits] == list(range(10))
    everything = set(table.frame["name"])
    for split in splits:
        train, val, test = sides(split)
        assert not (train & val or train & test or val & test)
        assert train | val | test == everything
        assert len(test) == 40  # 20% of 200
        assert len(val) == 16  # 10% of the remaining 160
        assert split.kind == "random_by_content" and split.seed == 3
    assert len({s.test for s in splits}) == 10  # rounds differ


def test_content_never_lands_on_two_sides():
    rng = np.random.default_rng(0)
    table = make_table(rng.integers(1, 12, size=60).tolist())
    content = dict(zip(table.frame["name"], table.frame["content_id"]))
    n = len(table)
    for split in make_splits(table, rounds=5, seed=1):
        per_side = [{content[name] for name in side} for side in sides(split)]
        assert not (per_side[0] & per_side[1] or per_side[0] & per_side[2] or per_side[1] & per_side[2])
        assert sum(len(side) for side in sides(split)) == n
        assert abs(len(split.test) - 0.2 * n) <= 11  # whole groups: within one group of the target


def test_by_image_ignores_content():
    table = make_table([5] * 20)
    split = make_splits(table, rounds=1, by_content=False)[0]
    assert split.kind == "random_by_image"
    assert len(split.test) == 20
    content = dict(zip(table.frame["name"], table.frame["content_id"]))
    train_refs = {content[n] for n in split.train}
    assert train_refs & {content[n] for n in split.test}  # with 20 groups of 5 they mix


def test_seeded_and_independent_of_row_order_and_round_count():
    table = make_table([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4])
    first = make_splits(table, rounds=4, seed=7)
    assert first == make_splits(table, rounds=4, seed=7)
    assert first[3] == make_splits(table, rounds=10, seed=7)[3]
    assert first[0] != make_splits(table, rounds=1, seed=8)[0]
    shuffled = DatasetTable("toy", None, table.frame.sample(frac=1, random_state=5), (0.0, 1.0))
    assert make_splits(shuffled, rounds=4, seed=7) == first


def test_no_validation_and_bad_arguments():
    table = make_table([1] * 10)
    split = make_splits(table, rounds=1, val_fraction=0.0)[0]
    assert split.val == () and len(split.train) == 8
    with pytest.raises(IqabenchError, match="test fraction"):
        make_splits(table, test_fraction=1.0)
    with pytest.raises(IqabenchError, match="rounds"):
        make_splits(table, rounds=0)
    with pytest.raises(IqabenchError, match="split unit"):
        make_splits(make_table([5, 5]))  # two contents cannot make three sides


def test_official_split_from_column_and_missing():
    table = make_table([1] * 6, official=["train", "train", "val", "test", "training", "test"])
    split = official_split(table)
    assert split.kind == "official"
    assert split.counts() == {"train": 3, "val": 1, "test": 2}
    with pytest.raises(IqabenchError, match="no official split"):
        official_split(make_table([1] * 6))


def test_koniq_official_split_counts(shared_data: Path):
    path = shared_data / "meta" / "koniq10k" / "koniq10k_distributions_sets.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    raw = pd.read_csv(path)
    frame = pd.DataFrame(
        {
            "name": raw["image_name"].astype(str),
            "path": "",
            "mos": raw["MOS"],
            "mos_std": np.nan,
            "content_id": raw["image_name"].astype(str),
            "official_split": raw["set"],  # training/validation/test as distributed
        }
    )
    split = official_split(DatasetTable("koniq10k", None, frame, (0.0, 100.0)))
    assert split.counts() == {"train": 7058, "val": 1000, "test": 2015}
    assert set(split.train) | set(split.val) | set(split.test) == set(frame["name"])


def test_agiqa3k_rounds_keep_each_prompt_on_one_side(shared_data: Path):
    root = shared_data / "agiqa3k"
    if not (root / "data.csv").is_file():
        pytest.skip(f"{root}/data.csv not present")
    from iqabench.data import load_dataset

    table = load_dataset("agiqa3k", root)
    prompt = dict(zip(table.frame["name"], table.frame["content_id"]))
    assert len(set(prompt.values())) == 300
    for split in make_splits(table, rounds=3, seed=0):
        per_side = [{prompt[name] for name in side} for side in sides(split)]
        assert not (per_side[0] & per_side[1] or per_side[0] & per_side[2] or per_side[1] & per_side[2])
        assert abs(len(split.test) / len(table) - 0.2) < 0.01


def test_write_read_round_trip(tmp_path: Path):
    table = make_table([2] * 30)
    for split in make_splits(table, rounds=2, seed=11) + [
        official_split(make_table([1] * 4, official=["train", "val", "test", "train"]))
    ]:
        path = write_split(split, tmp_path / f"{split.kind}_{split.round}.csv")
        assert read_split(path) == split
        frame = pd.read_csv(path)
        assert list(frame.columns[:2]) == ["name", "subset"]


def test_write_refuses_to_replace_a_different_split(tmp_path: Path):
    a, b = make_splits(make_table([1] * 20), rounds=2)
    path = write_split(a, tmp_path / "split.csv")
    write_split(a, path)  # identical: fine
    with pytest.raises(IqabenchError, match="already exists"):
        write_split(b, path)
    write_split(b, path, overwrite=True)
    assert read_split(path) == b


def test_read_split_errors(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,subset\na.png,train\nb.png,holdout\n")
    with pytest.raises(IqabenchError, match="holdout"):
        read_split(bad)
    bad.write_text("name,part\na.png,train\n")
    with pytest.raises(IqabenchError, match="subset"):
        read_split(bad)
    bad.write_text("name,subset\nNA,train\nb.png,test\n")
    assert read_split(bad).train == ("NA",)  # a file literally named NA stays a name
    with pytest.raises(IqabenchError, match="not found"):
        read_split(tmp_path / "absent.csv")


def test_check_split_names_unknown_images():
    table = make_table([1] * 10)
    split = make_splits(table, rounds=1)[0]
    check_split(split, table.frame["name"].tolist())
    with pytest.raises(IqabenchError, match="not in the dataset"):
        check_split(split, table.frame["name"].tolist()[:-3], source="split.csv")
