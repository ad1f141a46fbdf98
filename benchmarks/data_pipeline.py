"""Training-patch throughput: iqabench's pipeline vs the original Hyper-IQA loader.

Both pipelines produce, per epoch, 25 random 224 x 224 crops (+ horizontal flip) of every
image, shuffled into batches of 96, from the same AGIQA-3K images on the same machine in
the same run.

- reference: the original training loader of :mod:`benchmarks.original_hyperiqa`: every
  image listed 25 times (``patch_num``), each sample opens and decodes its file with PIL,
  then ``RandomHorizontalFlip -> RandomCrop(224) -> ToTensor -> Normalize``, a torch
  ``DataLoader(shuffle=True, batch_size=96)``. The original used ``num_workers=0``;
  here it gets ``--workers`` processes (default 2, what iqabench uses on 2 cores).
- iqabench: ``ImageCache.build`` decodes each image once (``--workers`` threads), then
  ``TrainBatches`` cuts crops from memory (``--workers`` threads) and yields uint8.

Accounting: the decode is a one-time cost, timed on its own. Reported are (a) the
steady-state epoch rate (median epoch), (b) the measured total (decode + all measured
epochs), and (c) decode amortised over 1 and over 16 epochs (the original's epoch count),
projected from the measured decode time and median epoch time. iqabench yields uint8 and
normalises inside the model; (d) adds a CPU uint8 -> normalised float32 conversion per
batch, the work the reference does in its loader, for a like-for-like output. Every
interval is timed by :func:`iqabench.profiling.timed`.

Run from the repository root:
    python -m benchmarks.data_pipeline --limit 1000 --epochs 2
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # started as `python benchmarks/data_pipeline.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from benchmarks import readme  # noqa: E402
from benchmarks.original_hyperiqa import IMAGENET_MEAN, IMAGENET_STD, original_loader  # noqa: E402
from iqabench.data import load_dataset  # noqa: E402
from iqabench.data.cache import ImageCache  # noqa: E402
from iqabench.data.loader import TrainBatches  # noqa: E402
from iqabench.data.table import DatasetTable  # noqa: E402
from iqabench.errors import IqabenchError  # noqa: E402
from iqabench.profiling import timed  # noqa: E402

ORIGINAL_EPOCHS = 16
CPU = torch.device("cpu")


def time_reference(table: DatasetTable, names: list[str], args) -> list[float]:
    """Seconds per epoch of the original loader (worker start-up included: it recurs every epoch)."""
    frame = table.frame.set_index("name").loc[names]
    loader = original_loader(list(frame["path"].astype(str)), frame["mos"].to_numpy(),
                             args.crops_per_image, args.input_size, True, args.batch_size, args.workers)
    torch.manual_seed(0)
    seconds = []
    for epoch in range(args.ref_epochs):
        with timed(CPU) as epoch_time:
            n = sum(len(crops) for crops, _ in loader)
        seconds.append(epoch_time.seconds)
        if n != len(loader.dataset):
            raise RuntimeError(f"reference epoch gave {n} patches, expected {len(loader.dataset)}")
        print(f"reference epoch {epoch}: {n} patches in {seconds[-1]:.1f} s ({n / seconds[-1]:.0f}/s)", flush=True)
    return seconds


def build_iqabench(table: DatasetTable, names: list[str], args) -> tuple[TrainBatches, float]:
    """Decode once (timed), then the epoch iterator."""
    with timed(CPU) as decode:
        cache = ImageCache.build(table, names=names, min_size=args.input_size, threads=args.workers)
    print(f"iqabench decode: {len(names)} images in {decode.seconds:.1f} s "
          f"({cache.nbytes / 1e6:.0f} MB)", flush=True)
    labels = table.frame.set_index("name").loc[names, "mos"].to_numpy(np.float32)
    batches = TrainBatches(cache, names, labels, args.crops_per_image, args.batch_size,
                           crop_size=args.input_size, seed=0, threads=args.workers)
    return batches, decode.seconds


def time_epochs(batches: TrainBatches, epochs: range) -> list[float]:
    """Seconds per epoch of iqabench (uint8 crops, as the trainer gets them)."""
    seconds = []
    for epoch in epochs:
        batches.set_epoch(epoch)
        with timed(CPU) as epoch_time:
            n = sum(len(crops) for crops, _ in batches)
        seconds.append(epoch_time.seconds)
        print(f"iqabench epoch {epoch}: {n} patches in {seconds[-1]:.2f} s ({n / seconds[-1]:.0f}/s)", flush=True)
    return seconds


def time_normalised_epoch(batches: TrainBatches, epoch: int) -> float:
    """Seconds for one epoch whose crops are also turned into normalised float32 on the CPU."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    batches.set_epoch(epoch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the main thread normalises while the loader's threads cut crops
    try:
        n = 0
        with timed(CPU) as epoch_time:
            for crops, _ in batches:  # like-for-like output: normalised float32, on the CPU
                n += len(crops.float().sub_(mean).div_(std))
    finally:
        torch.set_num_threads(threads)
    print(f"iqabench epoch + CPU normalise: {n} patches in {epoch_time.seconds:.2f} s "
          f"({n / epoch_time.seconds:.0f}/s)", flush=True)
    return epoch_time.seconds


README = """\
# Data pipeline: training patches per second

iqabench (ImageCache + TrainBatches) vs the original Hyper-IQA training loader, on \
$images $dataset images (seeded random subset), $crops random ${crop}px crops + flip per \
image per epoch, batch $batch_size, $workers workers each.

**Steady state: ${steady}x** the reference's patches per second; **${amortised}x** with the \
one-time decode amortised over $original_epochs epochs.

$table

## Accounting

$accounting

## Run

$run
"""


def accounting(args, cache_mb: float) -> list[str]:
    return [
        f"The reference decodes the full image for every patch ({args.crops_per_image} times per image per "
        "epoch), as the original does; its rate is one epoch's patches over the epoch's wall time, "
        "including DataLoader worker start-up (which the original pays every epoch too). "
        f"The original used `num_workers=0`; the reference here gets {args.workers} worker processes.",
        "iqabench decodes each image once (timed apart, row 'one-time decode'); epochs then only "
        "copy crops out of memory. 'decode + 1 epoch' is the worst case (a single epoch); "
        f"'amortised over {ORIGINAL_EPOCHS} epochs' matches the original's training length. "
        "Both projected rows combine the measured decode time with the median measured epoch.",
        "iqabench yields uint8 crops and normalises inside the model (on the GPU in practice); "
        "the reference yields normalised float32 (ToTensor + Normalize in its workers). The "
        "'+ CPU normalise' row adds that conversion on the CPU (main thread, one torch thread, "
        f"while {args.workers} loader threads cut the next crops) for a like-for-like output.",
        f"Memory: the decoded images take {cache_mb:.0f} MB in RAM "
        "(`cache_dir` keeps them in a memmap on disk instead).",
        "The machine is shared with other jobs; load averages are recorded below. Both pipelines ran "
        "in the same process on the same images; iqabench's epochs were timed before and after the "
        "reference's so both saw the same period of load.",
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="agiqa3k", help="a dataset name of iqabench.data")
    parser.add_argument("--root", type=Path, default=None,
                        help="dataset folder (default for agiqa3k: ../shared/data/agiqa3k)")
    parser.add_argument("--limit", type=int, default=1000, help="images (seeded random subset)")
    parser.add_argument("--epochs", type=int, default=2,
                        help="iqabench epochs timed before the reference, and as many after it")
    parser.add_argument("--ref-epochs", type=int, default=1, help="reference epochs timed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=96)
    parser.add_argument("--crops-per-image", type=int, default=25, help="patches per image per epoch")
    parser.add_argument("--input-size", type=int, default=224, help="crop side in pixels")
    parser.add_argument("--out", type=Path, default=readme.REPO / "results" / "data_pipeline")
    args = parser.parse_args(argv)
    if args.root is None and args.dataset == "agiqa3k":
        args.root = readme.REPO.parent / "shared" / "data" / "agiqa3k"
    for flag, value, low in (("--limit", args.limit, 0), ("--epochs", args.epochs, 1),
                             ("--ref-epochs", args.ref_epochs, 1), ("--workers", args.workers, 0),
                             ("--batch-size", args.batch_size, 1),
                             ("--crops-per-image", args.crops_per_image, 1),
                             ("--input-size", args.input_size, 16)):
        if value < low:
            raise IqabenchError(f"{flag} {value}: must be at least {low}")
    return args


def main(argv: Sequence[str] | None = None) -> Path:
    """Run the benchmark; returns the output folder (data_pipeline.csv, README.md)."""
    args = parse_args(argv)
    table = load_dataset(args.dataset, args.root)
    names = sorted(table.frame["name"].astype(str))
    if args.limit and args.limit < len(names):
        names = sorted(np.random.default_rng(0).choice(names, size=args.limit, replace=False).tolist())
    patches = len(names) * args.crops_per_image
    load_before = os.getloadavg()[0]
    print(f"{len(names)} images, {patches} patches per epoch; load average {load_before}", flush=True)

    # iqabench epochs before and after the reference, so both see the machine's load
    batches, decode_s = build_iqabench(table, names, args)
    epochs_before = time_epochs(batches, range(args.epochs))
    load_mid = os.getloadavg()[0]
    ref_s = time_reference(table, names, args)
    epochs_after = time_epochs(batches, range(args.epochs, 2 * args.epochs))
    normalise_s = time_normalised_epoch(batches, 2 * args.epochs)
    load_after = os.getloadavg()[0]
    measured = epochs_before + epochs_after

    ref_rate = patches / float(np.median(ref_s))
    epoch_s = float(np.median(measured))
    rows = [
        ("reference (original Hyper-IQA loader), per epoch", patches, float(np.median(ref_s)), "measured; median of "
         f"{len(ref_s)} epoch(s); decode + crop + ToTensor + Normalize every patch, worker start-up included"),
        ("iqabench one-time decode (not patches)", len(names), decode_s, "measured; images, not patches"),
        ("iqabench steady state, per epoch (uint8 out)", patches, epoch_s,
         f"measured; median of {len(measured)} epochs ({args.epochs} before, {args.epochs} after the reference)"),
        ("iqabench steady state + CPU normalise to float32", patches, normalise_s, "measured; 1 epoch"),
        (f"iqabench decode + {len(measured)} measured epochs", patches * len(measured),
         decode_s + sum(measured), "measured total"),
        ("iqabench decode + 1 epoch", patches, decode_s + epoch_s, "projected from measured decode and median epoch"),
        (f"iqabench decode amortised over {ORIGINAL_EPOCHS} epochs", patches * ORIGINAL_EPOCHS,
         decode_s + ORIGINAL_EPOCHS * epoch_s, "projected from measured decode and median epoch"),
    ]
    table_rows = []
    for label, count, seconds, note in rows:
        rate = count / seconds
        ratio = "" if label.startswith("iqabench one-time") else f"{rate / ref_rate:.1f}"
        table_rows.append({"pipeline": label, "count": count, "seconds": f"{seconds:.2f}",
                           "per_second": f"{rate:.0f}", "ratio_vs_reference": ratio, "note": note})
    result = pd.DataFrame(table_rows)
    args.out.mkdir(parents=True, exist_ok=True)
    result.to_csv(args.out / "data_pipeline.csv", index=False)

    shown = result.rename(columns={"count": "patches (images for decode)", "per_second": "per second",
                                   "ratio_vs_reference": "x reference", "note": "how obtained"})
    load = f"1-min load average {load_before:.1f} before, {load_mid:.1f} between, {load_after:.1f} after"
    text = readme.render(
        README, images=len(names), dataset=table.name, crops=args.crops_per_image,
        crop=args.input_size,
        batch_size=args.batch_size, workers=args.workers, original_epochs=ORIGINAL_EPOCHS,
        steady=f"{(patches / epoch_s) / ref_rate:.0f}", amortised=f"{float(table_rows[-1]['ratio_vs_reference']):.0f}",
        table=shown.to_markdown(index=False, disable_numparse=True,
                                colalign=("left", "right", "right", "right", "right", "left")),
        accounting=readme.bullets(accounting(args, batches.cache.nbytes / 1e6)),
        run=readme.bullets(readme.run_facts(readme.command("data_pipeline", argv), load=load)))
    (args.out / "README.md").write_text(text)
    print(text, flush=True)
    return args.out


if __name__ == "__main__":
    try:
        main()
    except IqabenchError as err:
        sys.exit(f"error: {err}")
