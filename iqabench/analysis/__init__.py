"""Numbers about finished runs: load run folders, align their predictions, paired
bootstrap tests, the regression gate and weight-space projections.

Modules point down only: :mod:`~iqabench.analysis.types` (plain data) is imported by
every other module here and by :mod:`iqabench.render`; nothing here draws or writes a
report, and nothing here builds or runs a model.
"""
