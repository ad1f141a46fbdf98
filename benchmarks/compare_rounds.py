"""Two finished rounds of the same study settings side by side, e.g. trained on two CPUs.

Prints (for a results file): each round's start, commit and machine from environment.json,
whether the splits are identical, the test metrics and their difference, the training loss
and validation SRCC per epoch, and how far the per-image predictions moved.

    python -m benchmarks.compare_rounds ROUND_A ROUND_B > comparison.txt
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pandas as pd


def compare(a: Path, b: Path) -> list[str]:
    lines = []
    for who, folder in (("A", a), ("B", b)):
        env = json.loads((folder / "environment.json").read_text())[0]
        lines.append(f"# {who} {folder}: started {env['started']}, commit {env['commit']}, "
                     f"{env['cpu']} ({env['cpu_count']} cores), torch {env['torch']}")
    same = pd.read_csv(a / "split.csv").equals(pd.read_csv(b / "split.csv"))
    lines.append(f"split.csv: {'identical' if same else 'DIFFERS'}")
    ta, tb = (pd.read_csv(f / "test_metrics.csv").iloc[0] for f in (a, b))
    for m in ("srcc", "plcc", "krcc", "rmse"):
        lines.append(f"test {m}: A {ta[m]:.4f}  B {tb[m]:.4f}  B-A {tb[m] - ta[m]:+.4f}")
    la, lb = (pd.read_csv(f / "log.csv") for f in (a, b))
    for (_, x), (_, y) in zip(la.iterrows(), lb.iterrows()):
        lines.append(f"epoch {int(x['epoch'])}: train_loss A {x['train_loss']:.5f} "
                     f"B {y['train_loss']:.5f}; val SRCC A {x['val_srcc']:.4f} B {y['val_srcc']:.4f}")
    pa, pb = (pd.read_csv(f / "predictions.csv") for f in (a, b))
    moved = (pa["pred"] - pb["pred"]).abs()
    lines.append(f"predictions: {len(pa)} test images, same names in the same order: "
                 f"{list(pa['name']) == list(pb['name'])}; |B-A| median {moved.median():.4f}, "
                 f"max {moved.max():.4f} (MOS units); SRCC between A's and B's predictions "
                 f"{pa['pred'].corr(pb['pred'], method='spearman'):.4f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m benchmarks.compare_rounds ROUND_A ROUND_B", file=sys.stderr)
        return 2
    print("# command: " + shlex.join(["python", "-m", "benchmarks.compare_rounds", *args]))
    print("\n".join(compare(Path(args[0]), Path(args[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
