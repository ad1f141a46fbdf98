"""`iqabench predict PATH... --checkpoint CKPT`: score images without MOS
(:mod:`iqabench.inputs` finds the files, :class:`iqabench.scoring.Scorer` scores them)."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from iqabench.cli import options
from iqabench.errors import IqabenchError

#: Without --out, up to this many images are shown as a table; more are written to stdout.
TABLE_MAX = 20
FROM_CHECKPOINT = "the checkpoint's"
COLUMNS = ("path", "score", "crop_std")


@options.takes("checkpoint", "eval_crop_mode", "eval_crops", "eval_batch_size", "device", "amp",
               "channels_last", "compile", "out", "format", "skip_bad", "force", "quiet",
               from_run={"eval_crop_mode": FROM_CHECKPOINT, "eval_crops": FROM_CHECKPOINT,
                         "eval_batch_size": FROM_CHECKPOINT},
               help={"checkpoint": "A run's best.pt, an imported Hyper-IQA checkpoint or an "
                                   "'iqabench export' .safetensors file.",
                     "out": f"Write the rows here (CSV or JSON lines, see --format). Without "
                            f"it: a table for up to {TABLE_MAX} images (unless --format is "
                            "given), else rows on stdout.",
                     "skip_bad": "Exit 0 even when some files could not be scored (they are "
                                 "still listed).",
                     "force": "Overwrite --out if it exists.",
                     "eval_crop_mode": "Test-time crops (default: the checkpoint's protocol).",
                     "eval_crops": "Crops per image, averaged (default: the checkpoint's).",
                     "eval_batch_size": "Crops per forward pass (default: the checkpoint's)."})
def predict(
    paths: Annotated[list[str], typer.Argument(
        help="Images, folders (searched recursively for image files), globs, or list files "
             "(.txt: one path per line; .csv: a 'path' column).", show_default=False)],
    **values,
) -> None:
    """Score images with a checkpoint, on its own label scale (the MOS scale it was
    trained on), with its crop protocol; no MOS needed.

    Rows are path,score,crop_std (the standard deviation of the image's crop scores).
    Files that cannot be read are listed with the reason and the rest are scored; the
    exit status is then 1 unless --skip-bad.
    """
    from rich.console import Console

    from iqabench.inputs import IMAGE_EXTENSIONS, gather

    stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # paths stay whole on one line
    found = gather(paths)
    for path in found.empty:
        stderr.print(f"[yellow]note:[/] {path} holds no image file")
    if found.ignored:
        shown = ", ".join(found.ignored[:5]) + (", ..." if len(found.ignored) > 5 else "")
        stderr.print(f"[yellow]note:[/] ignored {len(found.ignored)} file(s) without an image "
                     f"extension: {shown}")
    bad = [(m.path, m.reason) for m in found.missing]
    if not found.files:
        reasons = "; ".join(f"{p}: {r}" for p, r in bad) or "; ".join(
            f"{p} holds no image file ({', '.join(sorted(IMAGE_EXTENSIONS)[:6])}, ...)"
            for p in found.empty) or "no image files given"
        raise IqabenchError(f"nothing to score: {reasons}")
    out: Path | None = values["out"]
    if out is not None and out.exists() and not values["force"]:
        raise IqabenchError(f"{out} exists; pass --force to overwrite it")

    from iqabench.scoring import load_scorer

    typed = options.given(values)
    scorer = load_scorer(values["checkpoint"], device=values["device"], amp=values["amp"],
                         compile=values["compile"], crop_mode=typed.get("eval_crop_mode"),
                         n_crops=typed.get("eval_crops"),
                         batch_size=typed.get("eval_batch_size"),
                         channels_last=values["channels_last"])
    info = scorer.info
    lo, hi = info.label_range
    stderr.print(f"scoring {len(found.files)} image(s): {scorer.crops} {info.crop_mode} crop(s) "
                 f"of {info.crop_size} px, batch {info.batch_size}, {scorer.device}; scores "
                 f"on the checkpoint's scale {lo:g}-{hi:g}"
                 + (f" ({info.dataset})" if info.dataset else ""))

    fmt = values["format"]
    table = out is None and len(found.files) <= TABLE_MAX and "format" not in typed
    sink, tmp = None, None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial")
        sink = open(tmp, "w", newline="")
    elif not table:
        sink = sys.stdout
    rows = []
    scored = 0
    try:
        if sink is not None and fmt == "csv":
            sink.write(",".join(COLUMNS) + "\n")
        with _progress(len(found.files), values["quiet"]) as advance:
            for row in scorer.score_files(found.files, on_done=advance):
                if row.error:
                    bad.append((row.path, row.error))
                    continue
                scored += 1
                if sink is not None:
                    sink.write(_format(row, fmt))
                    sink.flush()
                else:
                    rows.append(row)
        if tmp is not None:
            sink.close()
            if scored:  # a file of no rows would hide the failure
                os.replace(tmp, out)
    finally:
        if tmp is not None and tmp.exists():
            if not sink.closed:
                sink.close()
            tmp.unlink()
    if table and rows:
        _print_table(rows, lo, hi)
    for path, reason in bad:
        stderr.print(f"[bold red]not scored:[/] {path}: {reason}")
    if out is not None and scored:
        stderr.print(f"wrote {scored} row(s) to {out}")
    if not scored:
        raise IqabenchError(f"nothing could be scored: all {len(bad)} input(s) failed "
                            "(listed above)")
    if bad and not values["skip_bad"]:
        raise IqabenchError(f"{len(bad)} input(s) not scored (listed above), {scored} scored; "
                            "pass --skip-bad to accept that")


def _format(row, fmt: str) -> str:
    if fmt == "jsonl":
        return json.dumps({"path": row.path, "score": row.score, "crop_std": row.crop_std}) + "\n"
    path = row.path
    if any(c in path for c in ',"\n'):
        path = '"' + path.replace('"', '""') + '"'
    return f"{path},{row.score!r},{row.crop_std!r}\n"


def _print_table(rows, lo: float, hi: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"scores ({lo:g}-{hi:g} scale)")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "path" else "right")
    for row in rows:
        table.add_row(row.path, f"{row.score:.4f}",
                      f"{row.crop_std:.4f}" if math.isfinite(row.crop_std) else "")
    Console().print(table)


class _progress:
    """A rich bar over images on stderr (off with --quiet or when stderr is no terminal);
    the context value is ``advance(n)``."""

    def __init__(self, total: int, quiet: bool):
        self.total = total
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.bar.start()
        task = self.bar.add_task("scoring", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
