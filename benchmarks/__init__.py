"""Benchmarks of iqabench against the original Hyper-IQA code path, and of its scoring modes.

Run each from the repository root as a module (``python benchmarks/NAME.py`` works too):

- ``python -m benchmarks.train_eval_speed``: training and 25-crop evaluation throughput,
  iqabench vs the original code path (``results/speed/``);
- ``python -m benchmarks.data_pipeline``: training patches per second of the data pipeline
  alone (``results/data_pipeline/``);
- ``python -m benchmarks.eval_precision``: one checkpoint scored in fp32, bf16 and bf16
  compiled (``results/agiqa3k_study/precision/``);
- ``python -m benchmarks.predict_speed``: images/s of ``iqabench predict`` at 9 and 25
  crops, fp32 and bf16 compiled (``results/predict_speed/``);
- ``python -m benchmarks.cli_startup``: how long ``iqabench --help`` and
  ``iqabench data list`` take to start (``results/cli_startup/``);
- ``bash benchmarks/agiqa3k_study.sh`` and ``bash benchmarks/profile_backbones.sh``: the
  AGIQA-3K study and the backbone profiles, through the ``iqabench`` command.

``original_hyperiqa`` is the re-created original code path; ``readme`` writes each
results folder's README (template, tables, provenance). Timing goes through
:mod:`iqabench.profiling`, provenance through :mod:`iqabench.provenance`.
"""

#: Scoring modes the scoring benchmarks compare: name -> (``--amp`` value, ``--compile``).
SCORING_MODES = {
    "fp32": ("none", False),
    "bf16": ("bf16", False),
    "bf16+compile": ("bf16", True),
}
