"""Correctness smoke of iqabench's training and scoring paths on one device, through the CLI.

Written for the CUDA paths that only a GPU machine exercises (bf16 autocast on CUDA, the
pinned prefetch, cuDNN, TorchInductor on CUDA, DDP over nccl); on CPU it runs the same
checks (small settings make it a test of this script). Every check is a real command
whose log is kept; the verdicts go to ``checks.csv`` and ``smoke.md``:

1. ``train``: a short training run finishes and writes test metrics (run A).
2. ``resume``: the same run, killed (SIGKILL) after its first checkpoint and resumed
   (run B), against A. CPU kernels are deterministic, so B must equal A (1e-6). CUDA
   training is not bitwise repeatable (cuDNN autotuning, atomics in some backward
   kernels), so a second uninterrupted run C measures that noise, and B passes when
   ``|SRCC_B - SRCC_A| <= max(3 |SRCC_C - SRCC_A|, 0.01)``; B must also have exactly A's
   optimiser steps (the killed epoch's steps dropped, none repeated).
3. ``eval``: ``iqabench eval --split A`` reproduces A's test SRCC (1e-4).
4. ``compile``: ``iqabench eval --compile`` reproduces eager SRCC to 3 decimals (5e-4).
5. ``ddp``: ``torchrun --standalone --nproc_per_node 1`` trains under DDP; its
   environment.json records the process-group backend (nccl on CUDA, gloo on CPU).

The training runs share the device at the same time (on a GPU a short run is mostly start-up
and, in its first epoch, cuDNN's algorithm search), so the times in ``smoke.md`` are not
measurements of speed.

    python -m benchmarks.cuda_smoke --root .gpu_data/agiqa3k --weights .gpu_data/lite0.pth \\
        --device cuda --out results/gpu/h200/smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

if __package__ in (None, ""):  # started as `python benchmarks/cuda_smoke.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import readme  # noqa: E402

CLI = [sys.executable, "-m", "iqabench.cli.app"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
            "-m", "iqabench.cli.app"]


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


class Runner:
    """Runs commands with their output in ``logs/NAME.log`` and remembers each command."""

    def __init__(self, out: Path):
        self.out = out
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.commands: list[tuple[str, str, float]] = []
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        log.write(shlex.join(args) + "\n")
        log.flush()
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        proc.log = log  # type: ignore[attr-defined]
        proc.name, proc.started = name, time.perf_counter()  # type: ignore[attr-defined]
        return proc

    def finish(self, proc: subprocess.Popen) -> int:
        code = proc.wait()
        proc.log.close()  # type: ignore[attr-defined]
        seconds = time.perf_counter() - proc.started  # type: ignore[attr-defined]
        self.commands.append((proc.name, shlex.join(proc.args), seconds))  # type: ignore[attr-defined]
        return code

    def run(self, name: str, args: list[str]) -> int:
        return self.finish(self.start(name, args))

    def tail(self, name: str, lines: int = 3) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])


def test_srcc(run_dir: Path) -> float:
    return float(pd.read_csv(run_dir / "test_metrics.csv")["srcc"].iloc[0])


def eval_srcc(eval_dir: Path) -> float:
    return float(pd.read_csv(eval_dir / "metrics.csv")["srcc"].iloc[0])


def kill_after_first_checkpoint(runner: Runner, name: str, args: list[str], run_dir: Path,
                                timeout_s: float = 900) -> tuple[int, int]:
    """Start a run, SIGKILL it once last.pt exists; (return code, epochs it had saved)."""
    import torch

    proc = runner.start(name, args)
    deadline = time.time() + timeout_s
    while not (run_dir / "last.pt").is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    code = runner.finish(proc)
    saved = torch.load(run_dir / "last.pt", weights_only=True, map_location="cpu")["epoch"] \
        if (run_dir / "last.pt").is_file() else 0
    return code, saved


def train_args(opts: argparse.Namespace, out: Path) -> list[str]:
    args = ["train", "--dataset", opts.dataset, "--root", str(opts.root),
            "--backbone", opts.backbone, "--epochs", str(opts.epochs),
            "--batch-size", str(opts.batch_size), "--crops-per-image", "2",
            "--eval-crops", "9", "--val-crops", "4", "--eval-batch-size", str(opts.eval_batch_size),
            "--input-size", str(opts.input_size), "--n-boot", "0", "--device", opts.device,
            "--amp", opts.amp, "--seed", str(opts.seed), "--no-tensorboard", "--quiet",
            "--out", str(out)]
    if opts.weights is not None:
        args += ["--weights", str(opts.weights)]
    else:
        args += ["--no-pretrained"]
    if opts.limit is not None:
        args += ["--limit", str(opts.limit)]
    return args


def smoke(opts: argparse.Namespace) -> list[Check]:
    """The checks; the training runs (A, the killed B, the repeat C, the DDP run D) run
    at the same time, since on a GPU each process spends most of its time starting up."""
    out: Path = opts.out
    runs = out / "runs"
    runner = Runner(out)
    a, b, c, d = (runs / n for n in ("uninterrupted", "resumed", "repeat", "ddp"))
    cuda = opts.device != "cpu"

    proc_a = runner.start("train", CLI + train_args(opts, a))
    proc_c = runner.start("repeat", CLI + train_args(opts, c)) if cuda else None
    ddp_args = train_args(opts, d)
    ddp_args[ddp_args.index("--epochs") + 1] = "2"
    proc_d = runner.start("ddp", TORCHRUN + ddp_args)
    kill_code, saved = kill_after_first_checkpoint(runner, "resume_killed",
                                                   CLI + train_args(opts, b), b)
    killed = kill_code == -signal.SIGKILL and 1 <= saved < opts.epochs
    proc_b = runner.start("resume", CLI + ["train", "--resume", str(b), "--quiet"]) if killed else None
    code_a = runner.finish(proc_a)

    checks: list[Check] = []
    trained = code_a == 0 and (a / "test_metrics.csv").is_file()
    checks.append(Check("train", trained, f"test SRCC {test_srcc(a):.4f}, {_epoch_seconds(a)}"
                        if trained else f"exit {code_a}: {runner.tail('train')}"))
    eval_common = CLI + ["eval", "--checkpoint", str(a / "best.pt"), "--split", str(a),
                         "--n-boot", "0", "--device", opts.device, "--amp", opts.amp]
    eager, compiled = out / "eval_eager", out / "eval_compiled"
    code_eval = runner.run("eval", eval_common + ["--out", str(eager)]) if trained else None
    code_compile = (runner.run("compile", eval_common + ["--compile", "--out", str(compiled)])
                    if code_eval == 0 else None)
    code_b = runner.finish(proc_b) if proc_b is not None else None
    code_c = runner.finish(proc_c) if proc_c is not None else None
    code_d = runner.finish(proc_d)

    checks.append(_resume_check(opts, runner, a, b, c, trained, killed, kill_code, saved,
                                code_b, code_c))
    if code_eval is not None:
        ok = code_eval == 0 and abs(eval_srcc(eager) - test_srcc(a)) <= 1e-4
        checks.append(Check("eval", ok, f"eval SRCC {eval_srcc(eager):.5f} vs training's "
                            f"{test_srcc(a):.5f}" if code_eval == 0 else
                            f"exit {code_eval}: {runner.tail('eval')}"))
    if code_compile is not None:
        ok = code_compile == 0 and abs(eval_srcc(compiled) - eval_srcc(eager)) < 5e-4
        checks.append(Check("compile", ok, f"compiled SRCC {eval_srcc(compiled):.5f} vs eager "
                            f"{eval_srcc(eager):.5f}" if code_compile == 0 else
                            f"exit {code_compile}: {runner.tail('compile')}"))
    expected = "gloo" if opts.device == "cpu" else "nccl"
    if code_d == 0 and (d / "test_metrics.csv").is_file():
        env = json.loads((d / "environment.json").read_text())
        record = env[-1] if isinstance(env, list) else env
        ok = record.get("dist_backend") == expected and record.get("world_size") == 1
        checks.append(Check("ddp", ok, f"backend {record.get('dist_backend')} (expected "
                            f"{expected}), world size {record.get('world_size')}, "
                            f"test SRCC {test_srcc(d):.4f}"))
    else:
        checks.append(Check("ddp", False, f"exit {code_d}: {runner.tail('ddp')}"))
    write_report(out, opts, checks, runner)
    return checks


def _resume_check(opts, runner: Runner, a: Path, b: Path, c: Path, trained: bool, killed: bool,
                  kill_code: int, saved: int, code_b: int | None, code_c: int | None) -> Check:
    if not killed:
        return Check("resume", False, f"the run to kill exited {kill_code} with {saved} "
                     f"epochs saved: {runner.tail('resume_killed')}")
    if code_b != 0 or not (b / "test_metrics.csv").is_file():
        return Check("resume", False, f"resume exit {code_b}: {runner.tail('resume')}")
    if not trained:
        return Check("resume", False, "no uninterrupted run to compare with")
    diff = abs(test_srcc(b) - test_srcc(a))
    if opts.device == "cpu":
        tolerance, noise = 1e-6, "CPU kernels are deterministic"
    elif code_c != 0 or not (c / "test_metrics.csv").is_file():
        return Check("resume", False, f"repeat run exit {code_c}: {runner.tail('repeat')}")
    else:
        repeat = abs(test_srcc(c) - test_srcc(a))
        tolerance = max(3 * repeat, 0.01)
        noise = f"uninterrupted repeat differs by {repeat:.4f}"
    steps_a = pd.read_csv(a / "steps.csv")["step"].tolist()
    steps_b = pd.read_csv(b / "steps.csv")["step"].tolist()
    ok = diff <= tolerance and steps_a == steps_b
    return Check("resume", ok, f"killed after epoch {saved}; resumed SRCC {test_srcc(b):.4f} vs "
                 f"{test_srcc(a):.4f} (difference {diff:.4f}, allowed {tolerance:.4f}: {noise}); "
                 f"optimiser steps {len(steps_b)} vs {len(steps_a)}, "
                 f"{'the same' if steps_a == steps_b else 'DIFFERENT'}")


def _epoch_seconds(run_dir: Path) -> str:
    log = pd.read_csv(run_dir / "log.csv")
    return f"{len(log)} epochs, {log['seconds'].median():.1f} s/epoch (median)"


def run_facts(opts: argparse.Namespace) -> dict[str, str]:
    import torch

    device = torch.device(opts.device) if opts.device.startswith("cuda") else None
    return readme.run_facts(readme.command("cuda_smoke", opts.argv), device)


def write_provenance(out: Path, opts: argparse.Namespace) -> None:
    """Command, commit, date and machine in logs/ before anything runs, so a smoke cut off
    by a time limit still says where its logs came from (each run folder has its own
    environment.json, each eval folder too)."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "PROVENANCE.md").write_text("# CUDA smoke: provenance of these logs\n\n"
                                        + readme.bullets(run_facts(opts)) + "\n")


def write_report(out: Path, opts: argparse.Namespace, checks: list[Check], runner: Runner) -> None:
    pd.DataFrame([c.__dict__ for c in checks]).to_csv(out / "checks.csv", index=False)
    lines = [f"# CUDA smoke: {sum(c.passed for c in checks)} of {len(checks)} checks passed", "",
             readme.bullets(run_facts(opts)), "",
             "| check | passed | detail |", "|---|---|---|"]
    lines += [f"| {c.name} | {'yes' if c.passed else 'NO'} | {c.detail} |" for c in checks]
    lines += ["", "## Commands (logs in logs/)", ""]
    lines += [f"- {name} ({seconds:.1f} s): `{command}`" for name, command, seconds in runner.commands]
    (out / "smoke.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="agiqa3k")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None,
                        help="local backbone weights (default: random, --no-pretrained)")
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--amp", default="bf16")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-batch-size", type=int, default=144)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    opts = parser.parse_args(argv)
    opts.argv = list(sys.argv[1:] if argv is None else argv)
    if opts.out.exists() and any(opts.out.iterdir()):
        parser.error(f"--out {opts.out} is not empty")
    opts.out.mkdir(parents=True, exist_ok=True)
    write_provenance(opts.out, opts)
    checks = smoke(opts)
    for c in checks:
        print(f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.detail}")
    return 0 if checks and all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
