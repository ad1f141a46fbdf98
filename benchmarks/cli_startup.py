"""Start-up time of the ``iqabench`` command: ``iqabench --help`` and ``iqabench data list``.

Each command runs ``--repeats`` times in a fresh process; the median wall time is
reported beside ``python -c pass`` (the interpreter's own start-up, measured in the same
run) and the target of 1.5 s. One ``python -X importtime -c "import iqabench.cli.app"``
says where the remaining import time goes, and which heavy packages (torch, timm,
torchvision, pandas, matplotlib) the CLI loads before a command needs them: none is the goal.

    python -m benchmarks.cli_startup [--repeats 5] [--out results/cli_startup]

Writes OUT/results.csv and OUT/README.md. Run it on a quiet machine: other processes
competing for the cores inflate every number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/cli_startup.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from benchmarks import readme  # noqa: E402
from iqabench.provenance import cpu_model, git_commit  # noqa: E402

TARGET_S = 1.5
HEAVY = ("torch", "timm", "torchvision", "pandas", "matplotlib")

TEMPLATE = """
    # CLI start-up time

    Median wall time of $repeats fresh processes per command (target: under $target s).
    `python -c pass` is the interpreter's own start-up on the same machine in the same run.

    $table

    Heavy packages loaded by `import iqabench.cli.app`: $heavy.

    Largest imports of `import iqabench.cli.app` (`python -X importtime`, cumulative):

    $imports

    ## Run

    $facts
"""


def iqabench_command() -> list[str]:
    """The installed ``iqabench`` script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "iqabench"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "iqabench.cli.app"]


def wall_seconds(argv: list[str], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` runs of ``argv``, each a fresh process; fails loudly if
    the command fails."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - start)
    return times


def import_profile(top: int = 10, depth: int = 4) -> tuple[list[str], pd.DataFrame]:
    """Heavy packages that ``import iqabench.cli.app`` loads, and its ``top`` largest
    imports (cumulative milliseconds) at most ``depth`` levels down."""
    code = ("import sys, iqabench.cli.app; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True,
                          capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():  # "import time: SELF | CUMULATIVE |  name"
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or \
                not parts[1].strip().isdigit():
            continue
        level = (len(parts[2]) - len(parts[2].lstrip()) + 1) // 2
        if level <= depth:
            rows.append({"module": parts[2].strip(), "level": level,
                         "cumulative_ms": int(parts[1]) / 1000})
    frame = pd.DataFrame(rows).sort_values("cumulative_ms", ascending=False).head(top)
    return proc.stdout.split(), frame


def measure(repeats: int) -> pd.DataFrame:
    cli = iqabench_command()
    cases = {"python -c pass": [sys.executable, "-c", "pass"],
             "iqabench --help": [*cli, "--help"],
             "iqabench data list": [*cli, "data", "list"]}
    rows = []
    for label, argv in cases.items():
        times = wall_seconds(argv, repeats)
        rows.append({"command": label, "repeats": repeats,
                     "median_s": round(statistics.median(times), 3),
                     "min_s": round(min(times), 3), "max_s": round(max(times), 3)})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per command")
    parser.add_argument("--out", type=Path, default=readme.REPO / "results" / "cli_startup")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    frame = measure(args.repeats)
    commit = git_commit(cwd=readme.REPO)
    cpu = cpu_model()
    date = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    frame = frame.assign(commit=commit, cpu=cpu, date=date)
    heavy, imports = import_profile()

    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "results.csv", index=False)
    shown = frame[["command", "repeats", "median_s", "min_s", "max_s"]].assign(
        under_target=[("" if c.startswith("python") else ("yes" if m < TARGET_S else "NO"))
                      for c, m in zip(frame["command"], frame["median_s"])])
    facts = {"command": f"`{readme.command('cli_startup', argv)}`", "commit": commit,
             "date": date, "machine": f"CPU {cpu}, {readme.cores()} cores available",
             "python": sys.version.split()[0]}
    readme.write(args.out / "README.md", TEMPLATE, repeats=args.repeats, target=TARGET_S,
                 table=shown.to_markdown(index=False), heavy=", ".join(heavy) or "none",
                 imports=imports.to_markdown(index=False, floatfmt=".1f"),
                 facts=readme.bullets(facts))
    print(shown.to_string(index=False))
    print(f"wrote {args.out / 'results.csv'} and {args.out / 'README.md'}")
    return args.out


if __name__ == "__main__":
    main()
