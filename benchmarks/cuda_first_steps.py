"""What the first steps of a training process cost on a device, with cuDNN autotuning on and off.

A short CUDA training run spends most of its first epoch before its steady state: CUDA
context creation, kernel loading, and (with ``torch.backends.cudnn.benchmark``, which
iqabench sets on CUDA) one algorithm search per new convolution shape: the training batch,
the epoch's last partial batch and each scoring batch. Each setting runs in a fresh process
(autotuning results and loaded kernels live in the process), on random uint8 crops, so the
times hold the device's costs only, not data loading:

- ``cuda_init_s``: first CUDA tensor (context creation); ``build_s``: the model to the device
- ``step1_s``, ``steps2_5_s`` (mean), ``steady_s`` (mean of the remaining steps): training
  steps (forward, L1 loss, backward, Adam) at ``--batch-size`` with the given autocast
- ``partial1_s``, ``partial2_s``: the first and second step at another batch size
- ``score1_s``, ``score2_s``: the first and second inference pass at ``--score-batch``

    python -m benchmarks.cuda_first_steps --device cuda --out results/gpu/h200b/first_steps
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # started as `python benchmarks/cuda_first_steps.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STARTED = time.perf_counter()

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from benchmarks import readme  # noqa: E402
from iqabench.config import resolve_train_config  # noqa: E402
from iqabench.models.hyperiqa import HyperIQA  # noqa: E402
from iqabench.profiling import timed  # noqa: E402
from iqabench.runtime import autocast, resolve_amp, resolve_device, set_backend_flags  # noqa: E402

SETTINGS = {"autotune": True, "no-autotune": False}  # torch.backends.cudnn.benchmark
COLUMNS = ["cuda_init_s", "build_s", "step1_s", "steps2_5_s", "steady_s", "partial1_s",
           "partial2_s", "score1_s", "score2_s", "process_s"]


def measure(opts: argparse.Namespace, setting: str) -> dict[str, float]:
    """One fresh process's costs (run in the child)."""
    device = resolve_device(opts.device)
    amp_dtype = resolve_amp(opts.amp, device)
    row: dict[str, float] = {}
    with timed(device) as t:
        torch.zeros(1, device=device)
    row["cuda_init_s"] = t.seconds
    set_backend_flags(device)
    torch.backends.cudnn.benchmark = SETTINGS[setting]
    torch.manual_seed(0)
    cfg = resolve_train_config(overrides={"dataset": "synthetic", "pretrained": False, "model": {
        "backbone": opts.backbone, "input_size": opts.input_size}})
    with timed(device) as t:
        model = HyperIQA(cfg.model, pretrained=False).to(device).to(memory_format=torch.channels_last)
    row["build_s"] = t.seconds
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)

    def crops(n: int) -> torch.Tensor:
        size = opts.input_size
        return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8).to(device).contiguous(
            memory_format=torch.channels_last)

    def step(n: int) -> float:
        """One training step at batch ``n`` (inputs made outside the timed block)."""
        x, y = crops(n), torch.rand(n, device=device)
        model.train()
        with timed(device) as t:
            with autocast(device, amp_dtype):
                pred = model(x)
            loss = (pred.float().view(-1) - y).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return t.seconds

    def score(n: int) -> float:
        x = crops(n)
        model.eval()
        with timed(device) as t, torch.inference_mode(), autocast(device, amp_dtype):
            model(x)
        return t.seconds

    steps = [step(opts.batch_size) for _ in range(opts.steps)]
    row["step1_s"] = steps[0]
    row["steps2_5_s"] = sum(steps[1:5]) / len(steps[1:5])
    row["steady_s"] = sum(steps[5:]) / len(steps[5:])
    row["partial1_s"] = step(opts.partial_batch)
    row["partial2_s"] = step(opts.partial_batch)
    row["score1_s"] = score(opts.score_batch)
    row["score2_s"] = score(opts.score_batch)
    row["process_s"] = time.perf_counter() - STARTED
    return row


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--amp", default="bf16", help="autocast: bf16, fp16 or none")
    p.add_argument("--backbone", default="tf_efficientnet_lite0")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--partial-batch", type=int, default=7, help="another batch size (an epoch's last)")
    p.add_argument("--score-batch", type=int, default=144, help="crops per inference pass")
    p.add_argument("--steps", type=int, default=20, help="training steps at --batch-size (>= 6)")
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    p.add_argument("--out", type=Path, default=Path("results/first_steps"))
    p.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.steps < 6:
        p.error(f"--steps {opts.steps}: need at least 6 (step 1, steps 2-5 and a steady part)")
    return opts


def child_args(argv: Sequence[str] | None, setting: str) -> list[str]:
    args = list(sys.argv[1:] if argv is None else argv)
    return [sys.executable, "-m", "benchmarks.cuda_first_steps", *args, "--child", setting]


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.child:
        print(json.dumps(measure(opts, opts.child)))
        return 0
    rows = []
    for setting in opts.settings:  # one at a time: each process has the device alone
        done = subprocess.run(child_args(argv, setting), capture_output=True, text=True,
                              cwd=readme.REPO)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"cuda_first_steps: the {setting} process failed: {tail}", file=sys.stderr)
            return 1
        rows.append({"setting": setting, **json.loads(done.stdout.strip().splitlines()[-1])})
    table = pd.DataFrame(rows, columns=["setting", *COLUMNS])
    opts.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(opts.out / "first_steps.csv", index=False)
    device = resolve_device(opts.device)
    facts = readme.run_facts(readme.command("cuda_first_steps", argv), device,
                             model=f"Hyper-IQA over {opts.backbone} (random weights), "
                                   f"{opts.input_size} px crops, autocast {opts.amp}")
    readme.write(opts.out / "README.md", """
        # First-step costs of a training process ($device)

        $facts

        Each row is one fresh process; `autotune` is `torch.backends.cudnn.benchmark = True`
        (iqabench's setting on CUDA). Training steps at batch $batch ($steps steps), then two
        steps at batch $partial, then two inference passes of $score crops. Seconds:

        $table
        """, device=opts.device, facts=readme.bullets(facts), batch=opts.batch_size,
        steps=opts.steps, partial=opts.partial_batch, score=opts.score_batch,
        table=table.to_markdown(index=False, floatfmt=".4f"))
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
