"""`iqabench export CKPT --out FILE.safetensors`: weights and scoring metadata in one
safetensors file (:func:`iqabench.checkpoint.export_safetensors`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from iqabench.cli import options


@options.takes("out", "force", help={"out": "The .safetensors file to write (default: CKPT "
                                            "with the suffix .safetensors).",
                                     "force": "Overwrite --out if it exists."})
def export(
    checkpoint: Annotated[Path, typer.Argument(
        help="A run's best.pt (or last.pt) or an imported checkpoint.")],
    **values,
) -> None:
    """Export a checkpoint's weights to .safetensors, with its model config, label range
    and scale and crop protocol as JSON metadata; eval, predict and load_scorer read it
    like the checkpoint. No optimiser state, no pickle."""
    from iqabench.checkpoint import export_safetensors

    out = values["out"] or checkpoint.with_suffix(".safetensors")
    path = export_safetensors(checkpoint, out, force=values["force"])
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
