"""The CLI starts without torch: `import iqabench.cli.app` loads no heavy package, and the
start-up benchmark writes its table (timings themselves are not asserted: shared machine)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from benchmarks import cli_startup


def test_the_cli_imports_no_heavy_package():
    code = ("import sys, iqabench.cli.app; "
            f"print(sorted(m for m in {cli_startup.HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_benchmark_writes_csv_and_readme(tmp_path):
    out = cli_startup.main(["--repeats", "1", "--out", str(tmp_path / "startup")])
    frame = pd.read_csv(out / "results.csv")
    assert list(frame["command"]) == ["python -c pass", "iqabench --help", "iqabench data list"]
    assert (frame["repeats"] == 1).all() and (frame["median_s"] > 0).all()
    assert frame["commit"].notna().all() and frame["cpu"].notna().all()
    text = (out / "README.md").read_text()
    assert "| iqabench --help" in text and "Heavy packages loaded by" in text
    assert "packages loaded by `import iqabench.cli.app`: none." in text
    assert "python -m benchmarks.cli_startup --repeats 1" in text
