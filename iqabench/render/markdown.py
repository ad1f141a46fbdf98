"""``report.md``: how a comparison was made, every table (the design card first, then
the runs and their short names), every plot and note."""

from __future__ import annotations

from pathlib import Path

from iqabench.analysis.types import Comparison, Written
from iqabench.render.tables import markdown, tables


def write_report(comp: Comparison, out: Path, plots: list[Path], commit: str,
                 date: str) -> Written:
    """``out/report.md``: the command, code commit and date it was made with, every
    table, the ``plots`` (PNGs shown, their PDFs linked) and ``comp.notes``."""
    made = [f"- command: `{comp.command}`"] if comp.command else []
    made += [f"- iqabench commit: {commit}", f"- date: {date}",
             f"- baseline of the paired tests: {comp.baseline.name}"]
    lines = ["# iqabench compare report", "", *made, ""]
    for table in tables(comp):
        lines += [markdown(table), ""]
    names = {p.name for p in plots}
    pngs = [p for p in plots if p.suffix == ".png"]
    if pngs:
        lines += ["## Plots", ""]
        for p in pngs:
            pdf = p.with_suffix(".pdf").name
            also = f" ([PDF]({pdf}))" if pdf in names else ""
            lines += [f"![{p.stem}]({p.name}){also}", ""]
    if comp.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in comp.notes] + [""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return Written([path])
