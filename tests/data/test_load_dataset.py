"""load_dataset: the one door in; names, ROOT and --mos-range routed or refused clearly."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from iqabench.data import DATASETS, load_dataset
from iqabench.data.table import COLUMNS, DatasetTable
from iqabench.errors import IqabenchError


def test_every_short_id_is_registered():
    assert set(DATASETS) == {
        "koniq10k", "livec", "live", "csiq", "tid2013", "kadid10k", "bid", "spaq", "agiqa3k", "csv", "synthetic"
    }  # fmt: skip


def test_every_entry_names_a_reader_function_of_its_module():
    for name, entry in DATASETS.items():
        module, _, function = entry.reader.partition(":")
        reader = entry.load_reader()
        assert callable(reader) and reader.__module__ == module and reader.__name__ == function, name
        assert reader is getattr(importlib.import_module(module), function)
        assert entry.summary and "\n" not in entry.summary, name


def test_the_registry_loads_no_reader_until_one_is_used():
    """`iqabench data list` reads the registry only: no reader module, pandas, torch or skimage."""
    code = (
        "import sys, iqabench.data as d; "
        "print(sorted(m for m in sys.modules if m.startswith('iqabench.data.') "
        "or m.split('.')[0] in ('pandas', 'torch', 'skimage', 'scipy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_dataset_gets_a_hint():
    with pytest.raises(IqabenchError, match="did you mean 'koniq10k'"):
        load_dataset("koniq", "/")


def test_root_is_required_except_for_synthetic(tmp_path: Path):
    with pytest.raises(IqabenchError, match="'tid2013' needs ROOT"):
        load_dataset("tid2013")
    with pytest.raises(IqabenchError, match="is not a folder"):
        load_dataset("tid2013", tmp_path / "absent")


def test_mos_range_only_for_csv(tmp_path: Path):
    with pytest.raises(IqabenchError, match="only to the csv dataset"):
        load_dataset("agiqa3k", tmp_path, mos_range=(0, 1))


def test_synthetic_goes_to_the_pipeline_reader(monkeypatch):
    """Wiring only: generating the real synthetic set takes tens of seconds."""
    calls = []
    fake = DatasetTable("synthetic", None, pd.DataFrame(columns=list(COLUMNS)), (0.0, 100.0))
    module = types.ModuleType("iqabench.data.synthetic")  # stands in whether or not the real one exists
    module.read_synthetic = lambda root=None: calls.append(root) or fake
    monkeypatch.setitem(sys.modules, "iqabench.data.synthetic", module)
    assert load_dataset("synthetic") is fake
    assert load_dataset("synthetic", "/some/where") is fake
    assert calls == [None, Path("/some/where")]
