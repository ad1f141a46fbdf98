"""The study script's report stage keeps a report it would shrink; the script records the
command as called."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["name", "label", "path", "baseline", "rounds"]


def _finished_run(work: Path, name: str, rounds: int) -> None:
    for k in range(rounds):
        (work / name / f"round_{k:02d}").mkdir(parents=True)
        (work / name / f"round_{k:02d}" / "test_metrics.csv").write_text("srcc\n0.8\n")


def _report(out: Path, rows: list[tuple[str, str, int]], sub: str = "") -> None:
    folder = out / sub if sub else out
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"name": n, "label": n, "path": p, "baseline": i == 0, "rounds": r}
                  for i, (n, p, r) in enumerate(rows)], columns=COLUMNS).to_csv(
        folder / "runs.csv", index=False)
    (folder / "report.md").write_text("the committed report\n")


def _report_stage(work: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    """The report stage with an ``iqabench`` that stops at once (exit 3): past the guard, the
    stage's first command is ``iqabench profile``."""
    fake = work.parent / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "iqabench").write_text("#!/bin/sh\necho \"fake iqabench $1\" >&2\nexit 3\n")
    (fake / "iqabench").chmod(0o755)
    path = os.pathsep.join([str(fake), str(Path(sys.executable).parent), os.environ["PATH"]])
    environ = {**os.environ, "STAGES": "report", "OUT": str(out), "PRECISION_CROPS": "0",
               "PATH": path, **env}
    return subprocess.run(["bash", str(REPO / "benchmarks" / "agiqa3k_study.sh"),
                           str(work / "data"), str(work)], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_report_stage_keeps_a_report_over_runs_the_work_folder_lacks(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    _finished_run(work, "lite0_baseline", 3)
    _finished_run(work, "lite0_rank", 2)  # one round short
    _report(out, [("L1", "runs/study/lite0_baseline", 3), ("rank", "runs/study/lite0_rank", 3),
                  ("multiscale", "runs/study/lite0_multiscale", 3)])
    _report(out, [("L1 only", "runs/study/lite0_baseline/round_00", 1),
                  ("L1 + 1 rank", "runs/study/alpha_1", 1)], sub="alpha_sweep")

    done = _report_stage(work, out)

    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert "alpha_1 lite0_multiscale lite0_rank" in message  # not lite0_baseline(/round_00)
    assert "set OUT to another folder" in message
    assert (out / "report.md").read_text() == "the committed report\n"
    assert not (tmp_path / "out.old").exists()


@pytest.mark.parametrize("how", ["all runs present", "REPLACE_REPORT=1", "no report yet"])
def test_report_stage_goes_on_when_nothing_would_be_dropped(tmp_path, how):
    work, out = tmp_path / "work", tmp_path / "out"
    _finished_run(work, "lite0_baseline", 3)
    rows = [("L1", "runs/study/lite0_baseline", 3)]
    if how == "REPLACE_REPORT=1":
        rows.append(("rank", "runs/study/lite0_rank", 3))
    if how != "no report yet":
        _report(out, rows)

    done = _report_stage(work, out, **({"REPLACE_REPORT": "1"} if how == "REPLACE_REPORT=1" else {}))

    assert done.returncode == 3, done.stderr  # past the guard, at `iqabench profile`
    assert "fake iqabench profile" in done.stderr
    assert "a new report would drop them" not in done.stderr
    if how != "no report yet":
        assert (tmp_path / "out.old" / "report.md").is_file()  # kept aside until the new one is whole


def test_the_command_it_records_names_every_setting_the_caller_gave(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    _finished_run(work, "lite0_baseline", 3)

    done = _report_stage(work, out, STAGES="backbones report", BEST_VARIANT="both",
                         CHOSEN_ALPHA="1")

    command = next(line for line in done.stdout.splitlines() if line.startswith("== command: "))
    assert 'STAGES="backbones report" ' in command
    assert f"OUT={out} " in command
    assert "PRECISION_CROPS=0 CHOSEN_ALPHA=1 BEST_VARIANT=both " in command
    assert "EPOCHS=" not in command  # a default is not a setting the caller gave
    assert command.endswith(f"bash benchmarks/agiqa3k_study.sh {work / 'data'} {work}")
