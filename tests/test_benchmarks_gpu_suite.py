"""The GPU suite's parts that run anywhere: the dataset subset and the CUDA smoke's checks
(on CPU the smoke must find a resumed run equal to the uninterrupted one)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from benchmarks import cuda_smoke, dataset_subset
from iqabench.data import load_dataset


def _agiqa_like(root: Path, prompts: int = 6, per_prompt: int = 3) -> pd.DataFrame:
    (root / "images").mkdir(parents=True)
    rows = []
    for p in range(prompts):
        for i in range(per_prompt):
            name = f"sd1.5_normal_{p * per_prompt + i:03d}.jpg"
            Image.new("RGB", (240, 240), (p * 40, i * 60, 90)).save(root / "images" / name)
            rows.append({"name": name, "prompt": f"prompt {p}", "mos_quality": 1 + p * 0.5 + i * 0.1,
                         "std_quality": 0.5})
    table = pd.DataFrame(rows)
    table.to_csv(root / "data.csv", index=False)
    return table


def test_subset_takes_whole_prompts_within_the_budget(tmp_path):
    full = _agiqa_like(tmp_path / "full")
    sizes = {n: (tmp_path / "full" / "images" / n).stat().st_size for n in full["name"]}
    per_prompt = full.assign(size=full["name"].map(sizes)).groupby("prompt")["size"].sum()
    budget_mib = (per_prompt.max() * 2.5) / 2**20  # room for two prompts, not three
    subset = dataset_subset.make_subset(tmp_path / "full", tmp_path / "sub", budget_mib, seed=3)

    assert subset["prompt"].nunique() == 2
    assert subset.groupby("prompt").size().eq(3).all()  # every image of a chosen prompt
    copied = sorted(p.name for p in (tmp_path / "sub" / "images").iterdir())
    assert copied == sorted(subset["name"])
    assert sum(sizes[n] for n in copied) <= budget_mib * 2**20
    table = load_dataset("agiqa3k", tmp_path / "sub")  # reads as the dataset it came from
    assert len(table) == 6
    again = dataset_subset.make_subset(tmp_path / "full", tmp_path / "sub2", budget_mib, seed=3)
    assert list(again["name"]) == list(subset["name"])  # seeded
    with pytest.raises(SystemExit, match="exists"):
        dataset_subset.make_subset(tmp_path / "full", tmp_path / "sub", budget_mib)


def test_subset_names_a_missing_image(tmp_path):
    full = _agiqa_like(tmp_path / "full")
    (tmp_path / "full" / "images" / full["name"][4]).unlink()
    with pytest.raises(SystemExit, match=full["name"][4]):
        dataset_subset.make_subset(tmp_path / "full", tmp_path / "sub", 10)


@pytest.mark.slow
def test_smoke_passes_on_cpu(tmp_path):
    root = tmp_path / "synthetic"
    load_dataset("synthetic", root)
    out = tmp_path / "smoke"
    code = cuda_smoke.main(["--dataset", "synthetic", "--root", str(root), "--backbone",
                            "test_resnet", "--device", "cpu", "--amp", "none", "--epochs", "3",
                            "--batch-size", "12", "--eval-batch-size", "18", "--input-size", "32",
                            "--limit", "40", "--out", str(out)])
    checks = pd.read_csv(out / "checks.csv")
    assert code == 0, checks.to_string()
    assert list(checks["name"]) == ["train", "resume", "eval", "compile", "ddp"]
    assert checks["passed"].all()
    assert "backend gloo" in checks.set_index("name").loc["ddp", "detail"]
    report = (out / "smoke.md").read_text()
    assert report.startswith("# CUDA smoke: 5 of 5 checks passed")
    assert "torch.distributed.run --standalone --nproc_per_node 1" in report
    assert (out / "logs" / "resume_killed.log").is_file()
    for scored in ("eval_eager", "eval_compiled"):  # iqabench eval records its own provenance
        assert (out / scored / "environment.json").is_file(), scored
    provenance = (out / "logs" / "PROVENANCE.md").read_text()  # before the first command
    for fact in ("- command: `python -m benchmarks.cuda_smoke", "- commit: ", "- date: ",
                 "- machine: CPU "):
        assert fact in provenance, fact


def test_first_steps_times_each_setting_in_its_own_process(tmp_path):
    from benchmarks import cuda_first_steps
    out = tmp_path / "first"
    code = cuda_first_steps.main(["--device", "cpu", "--amp", "none", "--backbone", "test_resnet",
                                  "--input-size", "32", "--batch-size", "3", "--partial-batch", "2",
                                  "--score-batch", "4", "--steps", "6", "--out", str(out)])
    assert code == 0
    table = pd.read_csv(out / "first_steps.csv")
    assert list(table["setting"]) == ["autotune", "no-autotune"]
    assert (table[cuda_first_steps.COLUMNS] > 0).all().all()
    # each process measured itself from its own start, so its whole life exceeds its parts
    parts = table[["build_s", "step1_s", "partial1_s", "score1_s"]].sum(axis=1)
    assert (table["process_s"] > parts).all()
    assert "autotune" in (out / "README.md").read_text()


def test_first_steps_needs_a_steady_part(capsys):
    from benchmarks import cuda_first_steps
    with pytest.raises(SystemExit):
        cuda_first_steps.parse_args(["--steps", "5"])
    assert "--steps 5" in capsys.readouterr().err
