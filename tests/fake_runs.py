"""Run folders in the ``iqabench train`` format, with predictions made from known MOS plus
noise, so compare/reporting tests know what the answer must be. Not a test module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from iqabench import runfolder
from iqabench.config import TrainConfig
from iqabench.data.splits import Split, write_split

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


def fake_config(*, backbone: str = "test_resnet", hyper_input: str = "last", loss: str = "l1",
                alpha: float = 0.5, dataset: str = "synthetic", round_: int | None = 0,
                rounds: int = 1, seed: int = 0, epochs: int = 4) -> TrainConfig:
    """The TrainConfig a run of this kind would have resolved."""
    return TrainConfig.from_dict({
        "dataset": dataset, "tests": [{"dataset": dataset}], "loss": loss, "alpha": alpha,
        "margin": 0.1, "seed": seed, "rounds": max(rounds, (round_ or 0) + 1), "round": round_,
        "epochs": epochs,
        "model": {"backbone": backbone, "hyper_input": hyper_input, "input_size": 64}})


def write_round(folder: Path, images: pd.DataFrame, pred: np.ndarray, *,
                backbone: str = "test_resnet", hyper_input: str = "last", loss: str = "l1",
                alpha: float = 0.5, dataset: str = "synthetic", round_: int = 0, seed: int = 0,
                epochs: int = 4, val_srcc: list[float] | None = None, rounds: int = 1,
                extra: dict[str, tuple[pd.DataFrame, np.ndarray]] | None = None) -> Path:
    """One round folder, written by the run-folder writers training uses: config.yaml,
    split.csv, log.csv, predictions.csv, test_metrics.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = fake_config(backbone=backbone, hyper_input=hyper_input, loss=loss, alpha=alpha,
                      dataset=dataset, round_=round_, rounds=rounds, seed=seed, epochs=epochs)
    runfolder.write_config(cfg, folder)
    split = Split(round=round_, seed=seed, kind="random_by_content", train=("train_a.png",),
                  val=("val_a.png",), test=tuple(sorted(images["name"])))
    write_split(split, folder / runfolder.SPLIT, overwrite=True)
    curve = val_srcc or list(np.linspace(0.5, 0.8, epochs))
    for epoch, (loss_value, v) in enumerate(zip(np.linspace(0.3, 0.1, len(curve)), curve), 1):
        runfolder.append_log(folder, {"epoch": epoch, "train_loss": float(loss_value),
                                      "val_srcc": float(v), "val_plcc": float(v) - 0.02,
                                      "val_krcc": float(v) - 0.2, "val_rmse": 10.0,
                                      "lr": 1e-4, "seconds": 1.0})
    rows = [images.assign(dataset=dataset, subset="test", pred=pred)]
    for name, (imgs, p) in (extra or {}).items():
        rows.append(imgs.assign(dataset=name, subset="test", pred=p))
    preds = pd.concat(rows, ignore_index=True)
    runfolder.write_predictions(folder, preds[["dataset", "subset", "name", "mos", "pred",
                                               "content_id", "group"]])
    runfolder.write_test_metrics(folder, {"dataset": dataset, "round": round_,
                                          "n": len(images)})
    return folder


def write_multi_round(folder: Path, rounds: list[tuple[pd.DataFrame, np.ndarray]],
                      **kwargs) -> Path:
    """``folder/round_XX/`` per (images, predictions) pair, and the resolved config.yaml
    beside them (``round`` unset), as ``iqabench train --rounds N`` writes it."""
    for k, (images, pred) in enumerate(rounds):
        write_round(folder / runfolder.round_name(k), images, pred, round_=k,
                    rounds=len(rounds), **kwargs)
    cfg = runfolder.read_config(folder / runfolder.round_name(0))
    runfolder.write_config(cfg.replace(round=None), folder)
    return folder
