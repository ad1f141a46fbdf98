"""Run folders in the ``iqabench train`` format, with predictions made from known MOS plus
noise, so compare/reporting tests know what the answer must be. Not a test module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

N_IMAGES = 120
GROUPS = ("blur", "noise", "jpeg", "contrast")


def make_images(n: int = N_IMAGES, seed: int = 0, prefix: str = "img") -> pd.DataFrame:
    """Names, MOS on 0-100, content ids (6 images each) and a distortion group."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "name": [f"{prefix}_{i:04d}.png" for i in range(n)],
        "mos": rng.uniform(5, 95, n),
        "content_id": [f"ref{i // 6:03d}" for i in range(n)],
        "group": [GROUPS[i % len(GROUPS)] for i in range(n)],
    })


def predictor(images: pd.DataFrame, model_error: float = 12.0, seed: int = 0) -> np.ndarray:
    """A fixed 'model': MOS plus its own error, in MOS units (deterministic in ``seed``)."""
    rng = np.random.default_rng(1000 + seed)
    return images["mos"].to_numpy() + rng.normal(0, model_error, len(images))


def rerun(base_pred: np.ndarray, noise: float = 2.0, seed: int = 0) -> np.ndarray:
    """The same model re-run (another seed): the same predictor plus small noise."""
    rng = np.random.default_rng(2000 + seed)
    return base_pred + rng.normal(0, noise, base_pred.size)


def write_round(folder: Path, images: pd.DataFrame, pred: np.ndarray, *,
                backbone: str = "test_resnet", hyper_input: str = "last", loss: str = "l1",
                alpha: float = 0.5, dataset: str = "synthetic", round_: int = 0, seed: int = 0,
                epochs: int = 4, val_srcc: list[float] | None = None,
                extra: dict[str, tuple[pd.DataFrame, np.ndarray]] | None = None) -> Path:
    """One round folder: config.yaml, split.csv, log.csv, predictions.csv, test_metrics.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"dataset": dataset, "root": None, "tests": [{"dataset": dataset, "root": None}],
              "model": {"backbone": backbone, "hyper_input": hyper_input, "input_size": 64},
              "loss": loss, "alpha": alpha, "margin": 0.1, "seed": seed, "round": round_,
              "epochs": epochs}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    split = pd.DataFrame({"name": list(images["name"]) + ["train_a.png", "val_a.png"],
                          "subset": ["test"] * len(images) + ["train", "val"]})
    split.to_csv(folder / "split.csv", index=False)
    curve = val_srcc or list(np.linspace(0.5, 0.8, epochs))
    pd.DataFrame({"epoch": range(1, len(curve) + 1),
                  "train_loss": np.linspace(0.3, 0.1, len(curve)),
                  "val_srcc": curve, "val_plcc": [v - 0.02 for v in curve],
                  "val_krcc": [v - 0.2 for v in curve], "val_rmse": 10.0, "lr": 1e-4,
                  "seconds": 1.0}).to_csv(folder / "log.csv", index=False)
    rows = [images.assign(dataset=dataset, subset="test", pred=pred)]
    for name, (imgs, p) in (extra or {}).items():
        rows.append(imgs.assign(dataset=name, subset="test", pred=p))
    preds = pd.concat(rows, ignore_index=True)
    preds[["dataset", "subset", "name", "mos", "pred", "content_id", "group"]].to_csv(
        folder / "predictions.csv", index=False)
    pd.DataFrame({"dataset": [dataset], "round": [round_], "n": [len(images)]}).to_csv(
        folder / "test_metrics.csv", index=False)
    return folder


def write_multi_round(folder: Path, rounds: list[tuple[pd.DataFrame, np.ndarray]],
                      **kwargs) -> Path:
    """``folder/round_XX/`` per (images, predictions) pair, and the resolved config.yaml
    beside them, as ``iqabench train --rounds N`` writes it."""
    for k, (images, pred) in enumerate(rounds):
        write_round(folder / f"round_{k:02d}", images, pred, round_=k, **kwargs)
    (folder / "config.yaml").write_text((folder / "round_00" / "config.yaml").read_text())
    return folder
