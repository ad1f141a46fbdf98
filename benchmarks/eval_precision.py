"""What faster scoring costs in quality: one trained checkpoint scored on its test split in
fp32, with bf16 autocast, and with bf16 autocast through ``compile_for_inference``
(``iqabench eval --amp bf16 --compile``).

Same checkpoint, same images, same crops; only the arithmetic differs. The table gives
each mode's SRCC/PLCC, the largest change of any image's predicted score against fp32
(MOS units), the SRCC between the fp32 and the faster mode's predictions, and the
scoring wall time (compilation apart).

    python -m benchmarks.eval_precision --checkpoint runs/study/baseline/round_00/best.pt \
        --dataset agiqa3k --root ../shared/data/agiqa3k --out results/agiqa3k_study/precision
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # started as `python benchmarks/eval_precision.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from benchmarks import SCORING_MODES, readme  # noqa: E402
from iqabench.checkpoint import load_checkpoint  # noqa: E402
from iqabench.config import EvalConfig  # noqa: E402
from iqabench.data import load_dataset  # noqa: E402
from iqabench.data.cache import ImageCache  # noqa: E402
from iqabench.data.splits import check_split, read_split  # noqa: E402
from iqabench.errors import IqabenchError  # noqa: E402
from iqabench.evaluation import checkpoint_settings, predict, score_images  # noqa: E402
from iqabench.profiling import timed  # noqa: E402
from iqabench.runtime import compile_for_inference  # noqa: E402

MODES = SCORING_MODES


README = """\
# Scoring precision: fp32 vs bf16 vs bf16 compiled, one checkpoint

$intro `max_abs_pred_change`: the largest change of one image's predicted score against fp32, \
in MOS units; `srcc_vs_fp32`: rank agreement of the predictions with fp32's; `seconds`: \
scoring wall time (`iqabench.profiling.timed`), compilation apart in `compile_s`.

$table

$run
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a run round's best.pt")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--split", type=Path, default=None,
                        help="split.csv (default: the one beside the checkpoint)")
    parser.add_argument("--eval-crops", type=int, default=25, help="test crops per image (5x5 grid)")
    parser.add_argument("--eval-batch-size", type=int, default=32, help="crops per forward pass")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--force", action="store_true", help="replace an existing precision.csv")
    args = parser.parse_args(argv)
    if args.split is None:
        args.split = args.checkpoint.parent / "split.csv"
    for path in (args.checkpoint, args.split):
        if not path.is_file():
            raise IqabenchError(f"{path}: no such file")
    if args.eval_crops < 1 or args.eval_batch_size < 1:
        raise IqabenchError("--eval-crops and --eval-batch-size must be at least 1")
    if (args.out / "precision.csv").exists() and not args.force:
        raise IqabenchError(f"{args.out / 'precision.csv'} exists; pass --force to replace it")
    if args.modes[0] != "fp32":
        raise IqabenchError("--modes must start with fp32, the reference of the differences")
    return args


def main(argv: Sequence[str] | None = None) -> Path:
    args = parse_args(argv)
    model, ckpt = load_checkpoint(args.checkpoint)
    model.to(memory_format=torch.channels_last).eval()
    table = load_dataset(args.dataset, str(args.root) if args.root else None)
    split = read_split(args.split)
    check_split(split, sorted(table.frame["name"].astype(str)), source=str(args.split))
    names = list(split.subset("test"))
    cache = ImageCache.build(table, names=names, min_size=model.config.input_size)
    rows, reference, cpu = [], None, torch.device("cpu")
    for mode in args.modes:
        amp, compiled = MODES[mode]
        cfg = EvalConfig(checkpoint=str(args.checkpoint), dataset=args.dataset, eval_crop_mode="grid",
                         eval_crops=args.eval_crops, eval_batch_size=args.eval_batch_size, device="cpu", amp=amp,
                         compile=compiled)
        settings = checkpoint_settings(cfg, model, ckpt, cpu)
        scorer = copy.deepcopy(model)
        compile_s = 0.0
        if compiled:  # compiled (and timed) apart, on the first image's crops through predict
            with timed(cpu) as compiling:
                scorer = compile_for_inference(scorer)
                predict(scorer, cache, names[:1], "grid", args.eval_crops, settings.crop_size,
                        args.eval_batch_size, amp_dtype=settings.amp_dtype)
            compile_s = compiling.seconds
        with timed(cpu) as scoring:
            frame, metrics = score_images(scorer, table, names, cache, settings, n_boot=0)
        seconds = scoring.seconds
        pred = frame["pred"].to_numpy()
        reference = pred if reference is None else reference
        rows.append({
            "mode": mode, "n": metrics["n"], "crops_per_image": args.eval_crops,
            "srcc": round(metrics["srcc"], 4), "plcc": round(metrics["plcc"], 4),
            "max_abs_pred_change": float(np.abs(pred - reference).max()),
            "srcc_vs_fp32": round(float(stats.spearmanr(pred, reference)[0]), 6),
            "seconds": round(seconds, 2), "images_per_s": round(len(names) / seconds, 3),
            "compile_s": round(compile_s, 1),
        })
        print(f"{mode}: SRCC {metrics['srcc']:.4f} PLCC {metrics['plcc']:.4f} in {seconds:.1f} s "
              f"(compile {compile_s:.1f} s)", flush=True)
    result = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    result.to_csv(args.out / "precision.csv", index=False)
    intro = (f"`{args.checkpoint}` ({model.config.backbone}, {model.config.hyper_input} hyper input) "
             f"on its {len(names)} {table.name} test images, {args.eval_crops} grid crops each, batch "
             f"{args.eval_batch_size}, CPU.")
    facts = readme.run_facts(readme.command("eval_precision", argv))
    facts["machine"] += "; no GPU"
    readme.write(args.out / "README.md", README, intro=intro, table=result.to_markdown(index=False),
                 run=readme.bullets(facts))
    return args.out


if __name__ == "__main__":
    try:
        print(main())
    except IqabenchError as exc:
        sys.exit(f"error: {exc}")
