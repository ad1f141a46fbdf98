"""Renderers of a comparison: tables (CSV, Markdown, terminal), PNG plots, the data-flow
diagram and report.md.

They import only :mod:`iqabench.analysis.types` (plus numpy, pandas, matplotlib and
rich), never models or loaders, draw on :class:`matplotlib.figure.Figure` objects (no
pyplot, no backend switch) and return what they wrote as
:class:`~iqabench.analysis.types.Written`.
"""
