"""load_scorer / Scorer: every input kind scores as ``iqabench eval`` scores the same
image, on the checkpoint's label scale, and files stream one chunk at a time."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import iqabench
from iqabench import scoring
from iqabench.checkpoint import save_checkpoint
from iqabench.config import EvalConfig, HyperIQAConfig
from iqabench.errors import IqabenchError
from iqabench.evaluation import evaluate_checkpoint, predict_crops
from iqabench.models.hyperiqa import HyperIQA

SIZE = 32


def write_checkpoint(path, label_range=(0.0, 5.0), label_scale="unit", crops=4, batch=8,
                     dataset="csv", seed=0):
    torch.manual_seed(seed)
    model = HyperIQA(HyperIQAConfig(backbone="test_resnet", input_size=SIZE)).eval()
    save_checkpoint({"model": model.state_dict(), "model_config": model.config.to_dict(),
                     "label_range": list(label_range), "label_scale": label_scale,
                     "protocol": {"crop_mode": "grid", "crops": crops, "batch_size": batch,
                                  "resize": None, "dataset": dataset}}, path)
    return model


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Six PNGs (one smaller than a crop) and a CSV of them with MOS 0-5."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    rows = []
    for i, (h, w) in enumerate([(40, 48), (36, 52), (48, 40), (24, 30), (44, 44), (40, 60)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"{i}.png")
        rows.append({"path": f"{i}.png", "mos": [0.0, 5.0, 1.0, 2.0, 3.0, 4.0][i]})
    pd.DataFrame(rows).to_csv(root / "scores.csv", index=False)
    return root


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    write_checkpoint(path)
    return path


def test_load_scorer_is_exported_lazily():
    assert iqabench.load_scorer is scoring.load_scorer and "load_scorer" in iqabench.__all__


def test_paths_pil_arrays_and_tensors_score_as_eval_does(folder, ckpt):
    scorer = iqabench.load_scorer(ckpt, device="cpu", amp="none")
    paths = sorted(folder.glob("*.png"))
    batch = scorer([str(p) for p in paths])
    assert batch.shape == (6,)
    result = evaluate_checkpoint(EvalConfig(checkpoint=str(ckpt), dataset="csv",
                                            root=str(folder / "scores.csv"), n_boot=0,
                                            device="cpu", amp="none"))
    by_name = result.predictions.set_index("name")["pred"]
    np.testing.assert_allclose(batch, [by_name[p.name] for p in paths], atol=1e-6)
    assert scorer(paths[0]) == pytest.approx(batch[0], abs=1e-6)
    with Image.open(paths[1]) as img:
        assert scorer(img) == pytest.approx(batch[1], abs=1e-6)
        array = np.array(img.convert("RGB"))
    assert scorer(array) == pytest.approx(batch[1], abs=1e-6)
    tensor = torch.from_numpy(array).permute(2, 0, 1).float().div(255).unsqueeze(0)
    np.testing.assert_allclose(scorer(tensor), batch[1:2], atol=1e-6)  # [0, 1] floats
    assert scorer(tensor[0]) == pytest.approx(batch[1], abs=1e-6)


def test_scores_are_on_the_label_scale_with_the_crop_spread(folder, tmp_path):
    model = write_checkpoint(tmp_path / "a.pt", label_range=(1.0, 9.0))
    scorer = scoring.load_scorer(tmp_path / "a.pt", device="cpu")
    pixels = scorer.pixels(folder / "0.png")
    raw = predict_crops(model, {"x": pixels}, ["x"], "grid", 4, SIZE)[0]  # unit outputs
    score, spread = scorer.score_pixels([pixels], ["x"])
    assert score[0] == pytest.approx(1 + 8 * raw.mean()) and spread[0] == pytest.approx(8 * raw.std())
    write_checkpoint(tmp_path / "raw.pt", label_range=(0.0, 100.0), label_scale="raw")
    raw_scorer = scoring.load_scorer(tmp_path / "raw.pt", device="cpu")
    assert raw_scorer(folder / "0.png") == pytest.approx(raw.mean())  # "raw": outputs as they are


def test_protocol_overrides_and_their_errors(ckpt):
    scorer = scoring.load_scorer(ckpt, device="cpu")
    assert (scorer.info.crop_mode, scorer.crops, scorer.info.batch_size) == ("grid", 4, 8)
    assert scorer.chunk_size == 2  # 2 images x 4 crops = one batch of 8
    center = scoring.load_scorer(ckpt, device="cpu", crop_mode="center", batch_size=3)
    assert center.crops == 1 and center.chunk_size == 3
    with pytest.raises(IqabenchError, match="square number"):
        scoring.load_scorer(ckpt, device="cpu", n_crops=5)
    with pytest.raises(IqabenchError, match="uint8"):
        scorer(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(IqabenchError, match="not a readable image"):
        scorer(ckpt)  # a checkpoint is no image


def test_score_files_streams_one_chunk_at_a_time(folder, ckpt, monkeypatch, tmp_path):
    """A recording stand-in for the decoder counts the decoded images alive at once."""
    scorer = scoring.load_scorer(ckpt, device="cpu", crop_mode="center", batch_size=2)
    alive, peak, real = [0], [0], scoring.decode_image

    def recording(path, resize, min_size):
        pixels = real(path, resize, min_size)
        alive[0] += 1
        peak[0] = max(peak[0], alive[0])
        weakref.finalize(pixels, lambda: alive.__setitem__(0, alive[0] - 1))
        return pixels

    monkeypatch.setattr(scoring, "decode_image", recording)
    (tmp_path / "bad.png").write_text("not an image")
    paths = [str(p) for p in sorted(folder.glob("*.png"))] * 3 + [str(tmp_path / "bad.png")]
    done = []
    rows = list(scorer.score_files(paths, on_done=done.append))
    assert [r.path for r in rows] == paths and sum(done) == len(paths)
    assert peak[0] <= scorer.chunk_size == 2  # never more than one chunk decoded
    assert rows[-1].error and "not a readable image" in rows[-1].error and np.isnan(rows[-1].score)
    assert all(np.isfinite(r.score) and r.crop_std == 0 for r in rows[:-1])  # one crop each
    expected = scorer(paths[:6])
    np.testing.assert_allclose([r.score for r in rows[:6]], expected, atol=1e-6)
