"""``report.md``: how a comparison was made, its runs, every table, plot and note."""

from __future__ import annotations

from pathlib import Path

from iqabench.analysis.types import Comparison, Written
from iqabench.render.tables import markdown, tables


def write_report(comp: Comparison, out: Path, plots: list[Path], commit: str,
                 date: str) -> Written:
    """``out/report.md``: the command, code commit and date it was made with, the runs,
    every table, the ``plots`` (PNGs next to it) and ``comp.notes``."""
    made = [f"- command: `{comp.command}`"] if comp.command else []
    made += [f"- iqabench commit: {commit}", f"- date: {date}"]
    lines = ["# iqabench compare report", "", *made, "", "## Runs", "",
             "| label | folder | rounds | trained on | epochs |", "|---|---|---|---|---|"]
    for run in comp.runs:
        mark = " (baseline)" if run is comp.baseline else ""
        lines.append(f"| {run.label}{mark} | `{run.path}` | {len(run.rounds)} | "
                     f"{run.train_dataset} | {run.epochs} |")
    lines.append("")
    for table in tables(comp):
        lines += [markdown(table), ""]
    pngs = [p for p in plots if p.suffix == ".png"]
    if pngs:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}]({p.name})\n" for p in pngs]
    if comp.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in comp.notes] + [""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return Written([path])
