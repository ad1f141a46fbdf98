"""The regression gate: current metrics against a ``metrics.csv`` of an earlier compare."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from iqabench import runfolder
from iqabench.analysis.types import GATE_METRICS
from iqabench.errors import IqabenchError

#: Columns the gate needs in a baseline file (the ``metrics.csv`` compare writes).
BASELINE_KEYS = ("run", "dataset")


def check_gate(summary: pd.DataFrame, baseline_file: Path, metrics: tuple[str, ...],
               max_drop: float) -> pd.DataFrame:
    """Each baseline row x metric: ``ok``, ``regressed`` (more than ``max_drop`` below the
    baseline value) or ``missing`` (no such run/test set now). The baseline file is a
    ``metrics.csv`` written by an earlier ``iqabench compare`` (columns run, dataset,
    and one column per metric holding the median over rounds)."""
    baseline_file = Path(baseline_file)
    if not baseline_file.is_file():
        raise IqabenchError(f"baseline file {baseline_file} not found")
    wanted = tuple(m for m in metrics if m in GATE_METRICS)
    if not wanted:
        raise IqabenchError(f"the gate checks {', '.join(GATE_METRICS)}; none asked for")
    base = runfolder.read_csv(baseline_file, BASELINE_KEYS)
    missing = [m for m in wanted if m not in base.columns]
    if missing:
        raise IqabenchError(f"baseline file {baseline_file} lacks column(s) {', '.join(missing)} "
                            "(expected a metrics.csv written by 'iqabench compare --out')")
    if max_drop < 0:
        raise IqabenchError(f"--max-drop must be >= 0, not {max_drop}")
    current = summary.set_index(["run", "dataset"]) if not summary.empty else None
    rows = []
    for _, b in base.iterrows():
        key = (str(b["run"]), str(b["dataset"]))
        for m in wanted:
            if pd.isna(b[m]):
                continue
            now = math.nan
            if current is not None and key in current.index:
                now = float(current.loc[key, m])
            if math.isnan(now):
                status = "missing"
            else:
                status = "regressed" if now < float(b[m]) - max_drop - 1e-12 else "ok"
            rows.append({"run": key[0], "dataset": key[1], "metric": m,
                         "baseline": float(b[m]), "current": now,
                         "change": now - float(b[m]), "max_drop": max_drop, "status": status})
    if not rows:
        raise IqabenchError(f"baseline file {baseline_file} has no rows to check")
    return pd.DataFrame(rows)


def gate_message(failures: pd.DataFrame) -> str:
    """One line naming every failed metric, run and test set."""
    parts = []
    for _, f in failures.iterrows():
        if f["status"] == "missing":
            parts.append(f"{f['metric']} of {f['run']} on {f['dataset']} is missing (baseline "
                         f"{f['baseline']:.4f})")
        else:
            parts.append(f"{f['metric']} of {f['run']} on {f['dataset']} fell to "
                         f"{f['current']:.4f}, {-f['change']:.4f} below baseline "
                         f"{f['baseline']:.4f} (max drop {f['max_drop']:g})")
    return "regression gate failed: " + "; ".join(parts)
