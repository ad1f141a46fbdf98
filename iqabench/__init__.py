"""iqabench: benchmark no-reference image quality models around Hyper-IQA.

The same functions the CLI calls, for notebooks and scripts (imported on first use, so
``import iqabench`` stays light)::

    from iqabench import TrainConfig, train
    result = train(TrainConfig(dataset="synthetic", out="runs/demo", pretrained=False))

- ``train(cfg: TrainConfig) -> RunResult`` (:func:`iqabench.training.fit`)
- ``evaluate(cfg: EvalConfig) -> EvalResult`` (:func:`iqabench.evaluation.evaluate_checkpoint`)
- ``load_scorer(checkpoint, device="auto", amp="auto") -> Scorer``
  (:func:`iqabench.scoring.load_scorer`): ``scorer("photo.jpg")`` is the photo's score on
  the checkpoint's own MOS scale
- ``build_model(backbone, hyper_input, pretrained, ...) -> HyperIQA``
- ``load_dataset(name, root) -> DatasetTable``
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "train": ("iqabench.training", "fit"),
    "evaluate": ("iqabench.evaluation", "evaluate_checkpoint"),
    "load_scorer": ("iqabench.scoring", "load_scorer"),
    "Scorer": ("iqabench.scoring", "Scorer"),
    "build_model": ("iqabench.models.hyperiqa", "build_model"),
    "load_dataset": ("iqabench.data", "load_dataset"),
    "TrainConfig": ("iqabench.config", "TrainConfig"),
    "EvalConfig": ("iqabench.config", "EvalConfig"),
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        module, attr = _PUBLIC[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'iqabench' has no attribute {name!r}")
