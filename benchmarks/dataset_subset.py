"""A smaller AGIQA-3K folder of whole prompts, for machines the full set cannot travel to.

The GPU machine receives the working tree (64 MiB at most), so the 101 MiB AGIQA-3K folder
cannot go whole. This copies a seeded random choice of whole prompts (every image of a
chosen prompt, so prompt-disjoint splits still hold) until the images reach a size budget,
and writes a ``data.csv`` with just their rows; the result reads as ``--dataset agiqa3k``.

    python -m benchmarks.dataset_subset ../shared/data/agiqa3k .gpu_data/agiqa3k --mib 24
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def choose_prompts(scores: pd.DataFrame, sizes: pd.Series, budget_bytes: int,
                   seed: int) -> list[str]:
    """Prompts in a seeded random order, taken while their images fit the budget."""
    per_prompt = sizes.groupby(scores["prompt"]).sum()
    order = np.random.default_rng(seed).permutation(per_prompt.index.to_numpy())
    chosen, total = [], 0
    for prompt in order:
        if total + per_prompt[prompt] > budget_bytes:
            continue
        chosen.append(prompt)
        total += per_prompt[prompt]
    return chosen


def make_subset(source: Path, dest: Path, mib: float, seed: int = 0) -> pd.DataFrame:
    """Copy the chosen prompts' images and their data.csv rows into ``dest``."""
    scores = pd.read_csv(source / "data.csv")
    paths = [source / "images" / name for name in scores["name"]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"dataset_subset: {missing[0]} is listed in data.csv but missing "
                         f"({len(missing)} missing in all)")
    if dest.exists():
        raise SystemExit(f"dataset_subset: {dest} exists; remove it first")
    sizes = pd.Series([p.stat().st_size for p in paths], index=scores.index)
    chosen = set(choose_prompts(scores, sizes, int(mib * 2**20), seed))
    subset = scores[scores["prompt"].isin(chosen)]
    (dest / "images").mkdir(parents=True)
    for name in subset["name"]:
        shutil.copy2(source / "images" / name, dest / "images" / name)
    subset.to_csv(dest / "data.csv", index=False)
    return subset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="an AGIQA-3K folder (data.csv, images/)")
    parser.add_argument("dest", type=Path, help="the new folder (must not exist)")
    parser.add_argument("--mib", type=float, default=24.0, help="image bytes budget, MiB")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    subset = make_subset(args.source, args.dest, args.mib, args.seed)
    size = sum(p.stat().st_size for p in (args.dest / "images").iterdir()) / 2**20
    print(f"{args.dest}: {len(subset)} images of {subset['prompt'].nunique()} prompts, "
          f"{size:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
