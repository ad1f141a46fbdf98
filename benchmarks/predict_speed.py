"""Throughput of ``iqabench predict``: images per second, decode included, at 9 and 25 grid
crops, fp32 and bf16 autocast through ``compile_for_inference``.

Scoring runs through the command's own code path (:func:`iqabench.scoring.load_scorer`
and :meth:`~iqabench.scoring.Scorer.score_files`, streamed chunk by chunk), on the first
N AGIQA-3K images (sorted by name). The model is Hyper-IQA over EfficientNet-Lite0 built
from the converted ImageNet weights (``iqabench weights convert-lite 0``): its scores are
meaningless, its speed is that of a trained one. Compilation is timed apart
(``compile_s``: the first chunk, scored once before the timed pass).

    python -m benchmarks.predict_speed --root ../shared/data/agiqa3k --out results/predict_speed
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # started as `python benchmarks/predict_speed.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from benchmarks import SCORING_MODES, readme  # noqa: E402
from iqabench.checkpoint import save_checkpoint  # noqa: E402
from iqabench.config import HyperIQAConfig  # noqa: E402
from iqabench.data import load_dataset  # noqa: E402
from iqabench.errors import IqabenchError  # noqa: E402
from iqabench.inputs import gather  # noqa: E402
from iqabench.models.hyperiqa import HyperIQA  # noqa: E402
from iqabench.models.weights import convert_lite  # noqa: E402
from iqabench.profiling import timed  # noqa: E402
from iqabench.scoring import load_scorer  # noqa: E402

MODES = SCORING_MODES

README = """\
# `iqabench predict` throughput

$intro `images_per_s`: images scored per second of wall time, decoding included
(`iqabench.profiling.timed` around `Scorer.score_files`, the command's code path);
`compile_s`: TorchInductor compilation, before the timed pass.

$table

$run
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/data/agiqa3k"),
                        help="AGIQA-3K folder (data.csv and images/)")
    parser.add_argument("--images", nargs="+", default=None,
                        help="score these PATHs (as predict takes them) instead of AGIQA-3K")
    parser.add_argument("--n", type=int, default=100, help="images scored per setting")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint to time (default: Lite0 from the converted ImageNet "
                             "weights)")
    parser.add_argument("--eval-crops", type=int, nargs="+", default=[9, 25],
                        help="grid crops per image")
    parser.add_argument("--eval-batch-size", type=int, default=32, help="crops per forward pass")
    parser.add_argument("--modes", nargs="+", default=["fp32", "bf16+compile"],
                        choices=list(MODES))
    parser.add_argument("--out", type=Path, default=Path("results/predict_speed"))
    parser.add_argument("--force", action="store_true", help="replace an existing results.csv")
    args = parser.parse_args(argv)
    if args.n < 1 or args.eval_batch_size < 1:
        raise IqabenchError("--n and --eval-batch-size must be at least 1")
    if (args.out / "results.csv").exists() and not args.force:
        raise IqabenchError(f"{args.out / 'results.csv'} exists; pass --force to replace it")
    return args


def lite0_checkpoint(path: Path) -> Path:
    """A Hyper-IQA Lite0 checkpoint on the AGIQA-3K scale (0-5) from ImageNet weights."""
    weights = convert_lite(0, path.with_name("lite0.safetensors"), force=True)
    model = HyperIQA(HyperIQAConfig(backbone="tf_efficientnet_lite0"), weights=weights)
    save_checkpoint({"model": model.state_dict(), "model_config": model.config.to_dict(),
                     "label_range": [0.0, 5.0], "label_scale": "unit",
                     "protocol": {"crop_mode": "grid", "crops": 25, "batch_size": 32,
                                  "resize": None, "dataset": "agiqa3k"}}, path)
    return path


def image_paths(args: argparse.Namespace) -> list[str]:
    if args.images:
        files = gather(args.images).files
    else:
        frame = load_dataset("agiqa3k", args.root).frame.sort_values("name")
        files = frame["path"].astype(str).tolist()
    if len(files) < args.n:
        raise IqabenchError(f"{len(files)} image(s) found, --n {args.n} asked for")
    return files[:args.n]


def main(argv: Sequence[str] | None = None) -> Path:
    args = parse_args(argv)
    paths = image_paths(args)
    cpu = torch.device("cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or lite0_checkpoint(Path(tmp) / "lite0.pt")
        for crops in args.eval_crops:
            for mode in args.modes:
                amp, compiled = MODES[mode]
                scorer = load_scorer(checkpoint, device="cpu", amp=amp, compile=compiled,
                                     crop_mode="grid", n_crops=crops,
                                     batch_size=args.eval_batch_size)
                compile_s = 0.0
                if compiled:
                    with timed(cpu) as compiling:
                        list(scorer.score_files(paths[:scorer.chunk_size]))
                    compile_s = compiling.seconds
                with timed(cpu) as scoring:
                    scored = list(scorer.score_files(paths))
                bad = [r for r in scored if r.error]
                if bad:
                    raise IqabenchError(f"{bad[0].path}: {bad[0].error}")
                rows.append({"eval_crops": crops, "mode": mode, "n": len(paths),
                             "eval_batch_size": args.eval_batch_size,
                             "seconds": round(scoring.seconds, 2),
                             "images_per_s": round(len(paths) / scoring.seconds, 2),
                             "crops_per_s": round(len(paths) * crops / scoring.seconds, 1),
                             "compile_s": round(compile_s, 1)})
                print(f"{crops} crops, {mode}: {rows[-1]['images_per_s']} images/s "
                      f"(compile {compile_s:.1f} s)", flush=True)
        backbone = load_scorer(checkpoint, device="cpu").model.config.backbone
    result = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    result.to_csv(args.out / "results.csv", index=False)
    source = "the given images" if args.images else f"the first {len(paths)} AGIQA-3K images"
    intro = (f"Hyper-IQA over {backbone} ({args.checkpoint or 'converted ImageNet weights'}) on "
             f"{source} (by name), grid crops, batch {args.eval_batch_size} crops, CPU.")
    facts = readme.run_facts(readme.command("predict_speed", argv))
    readme.write(args.out / "README.md", README, intro=intro,
                 table=result.to_markdown(index=False), run=readme.bullets(facts))
    return args.out


if __name__ == "__main__":
    try:
        print(main())
    except IqabenchError as exc:
        sys.exit(f"error: {exc}")
