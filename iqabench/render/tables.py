"""Report tables from a :class:`~iqabench.analysis.types.Comparison`.

Every table is written three times: CSV (numbers, for scripts), Markdown and LaTeX
(booktabs; formatted, for reports), and can be printed with rich. Runs appear under
their short names (``Run.name``); the runs table gives each name's full identity.
Writers return what they wrote.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

from iqabench.analysis.types import MIN_COMMON_IMAGES, Comparison, Run, Written

#: Profile columns shown in profile.md (profile.csv keeps every column).
PROFILE_COLUMNS = ("backbone", "hyper_input", "params_m", "gmacs", "gflops", "gmacs_per_image",
                   "thop_gmacs", "ms_per_patch", "ms_per_image", "images_per_s", "peak_mem_mb",
                   "device", "dtype", "batch_size", "input_size", "n_crops", "source")
LOSS_NAMES = {"l1": "L1", "l1+rank": "L1 + α·rank", "rank": "rank only"}
#: p-values below this print as ``<0.001``.
P_FLOOR = 0.001
#: Design-card accuracy cells of a variant without a run.
NO_RUN, NO_WEIGHTS = "no run", "no ImageNet weights offline"


@dataclass
class Table:
    """One report table: ``data`` goes to CSV, ``display`` to Markdown, LaTeX and the
    terminal; ``note`` reads before the table, ``footer`` (a finding) after it."""

    name: str  # file stem
    title: str
    note: str
    data: pd.DataFrame
    display: pd.DataFrame
    footer: str = ""


# --------------------------------------------------------------------------- formatting


def fmt(value, digits: int = 3, signed: bool = False) -> str:
    """A number for a table cell; NaN reads as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_p(value) -> str:
    """A p-value: three decimals, ``<0.001`` below that (never ``0.000``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"<{P_FLOOR:g}" if float(value) < P_FLOOR else f"{float(value):.3f}"


def mean_std(mean: float, std: float, rounds: int) -> str:
    if rounds < 2 or math.isnan(std):
        return f"{fmt(mean)} (1 round)"
    return f"{fmt(mean)} ± {fmt(std)}"


def slug(text: str) -> str:
    """A file-name-safe version of a run label."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "run"


def _interval(value: float, low: float, high: float) -> str:
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


# --------------------------------------------------------------------------- tables


def _summary_row(summary: pd.DataFrame | None, label: str, dataset: str) -> pd.Series | None:
    """A run's aggregated metrics on one test set, or None when it was not scored there."""
    if summary is None or (label, dataset) not in summary.index:
        return None
    return summary.loc[(label, dataset)]


def _value(row: pd.Series | None, key: str) -> float:
    if row is None or key not in row.index or pd.isna(row[key]):
        return math.nan
    return float(row[key])


def _val_srcc(comp: Comparison, label: str) -> float:
    frame = comp.validation[comp.validation["run"] == label]["val_srcc"].dropna()
    return float(frame.median()) if len(frame) else -math.inf


def _shown_run(comp: Comparison, labels: list[str]) -> str | None:
    """The run whose test metrics a design-card row shows: the best median validation
    SRCC among the variant's runs (the first when none has validation)."""
    if not labels:
        return None
    return max(labels, key=lambda label: (_val_srcc(comp, label), -labels.index(label)))


def design_table(comp: Comparison) -> Table | None:
    """The design card: per backbone x hyper input, params, GFLOPs, ms/image and the
    test SRCC/PLCC (with 95% intervals) of the variant's run chosen on validation.
    Cells that could not be measured say why."""
    design = comp.design
    if design is None or design.empty:
        return None
    datasets = comp.datasets()
    intervals = (comp.intervals.set_index(["run", "dataset", "metric"])
                 if comp.intervals is not None and not comp.intervals.empty else None)
    timed = design[design["latency_why"] == ""]
    settings = list(dict.fromkeys(timed["latency_setting"]))
    ms_head = f"ms/image ({settings[0]})" if len(settings) == 1 else (
        "ms/image (device dtype, crops)" if settings else "ms/image")
    units = sorted({str(u).split(" (")[0] for u in comp.intervals["unit"]}
                   if intervals is not None else [])
    trained = {r.backbone for r in comp.runs}
    data_rows, show_rows = [], []
    for _, row in design.iterrows():
        shown = _shown_run(comp, list(row["runs"]))
        name = comp.name_of(shown) if shown else "—"
        if shown and len(row["runs"]) > 1:
            name += f" (best on val of {len(row['runs'])})"
        ms = row["ms_per_image"]
        ms_cell = row["latency_why"] or (fmt(ms, 1) if len(settings) == 1
                                         else f"{fmt(ms, 1)} ({row['latency_setting']})")
        data = {"backbone": row["backbone"], "hyper_input": row["hyper_input"],
                "input_size": int(row["input_size"]), "params_m": row["params_m"],
                "gflops": row["gflops"], "cost_why": row["cost_why"],
                "ms_per_image": ms, "latency_setting": row["latency_setting"],
                "latency_why": row["latency_why"], "run": shown or "",
                "runs": ";".join(row["runs"])}
        show = {"backbone": row["backbone"], "hyper input": row["hyper_input"],
                "input (px)": str(int(row["input_size"])),
                "params (M)": row["cost_why"] or fmt(row["params_m"], 2),
                "GFLOPs/crop": row["cost_why"] or fmt(row["gflops"], 2),
                ms_head: ms_cell, "run shown": name}
        for d in datasets:
            for m in ("srcc", "plcc"):
                key = (shown, d, m)
                if shown is None:
                    cell = (f"{NO_RUN} ({NO_WEIGHTS})" if not row["weights_offline"]
                            and row["backbone"] not in trained else NO_RUN)
                    value = low = high = math.nan
                elif intervals is None or key not in intervals.index:
                    cell, value, low, high = "not tested", math.nan, math.nan, math.nan
                else:
                    hit = intervals.loc[key]
                    value, low, high = (float(hit[k]) for k in ("value", "ci_low", "ci_high"))
                    cell = _interval(value, low, high)
                data.update({f"{d}_{m}": value, f"{d}_{m}_ci_low": low,
                             f"{d}_{m}_ci_high": high})
                show[f"{d} {m.upper()} [95% CI]"] = cell
        data_rows.append(data)
        show_rows.append(show)
    unit = " or ".join(f"{u}s" for u in units) or "images"
    units_of = ({d: list(dict.fromkeys(f["unit"]))
                 for d, f in comp.intervals.groupby("dataset", sort=False)}
                if intervals is not None else {})
    per_set = "; ".join(f"{d}: {', '.join(units_of[d])}" for d in datasets if d in units_of)
    note = ("One row per backbone × hyper input. Params: millions, whole model; GFLOPs: "
            "2 × fvcore's multiply-accumulates for one crop of 'input' pixels at batch 1. Both "
            "are counted by compare from a randomly initialised model (weights do not change "
            "them), as `iqabench profile` counts them. ms/image: from the --profile outputs "
            "(median forward time per crop × crops per image, on the device and dtype in the "
            "header). SRCC/PLCC: the run shown (the variant's best run on validation), mean "
            f"over its rounds, recomputed from predictions.csv; 95% bootstrap interval "
            f"resampling test {unit} (whole content groups where test images share a content "
            f"id{'; ' + per_set if per_set else ''}); it covers test sampling, not training "
            "seeds. Cells without a number say why.")
    return Table("design_card", "Design card: cost and test accuracy per backbone and hyper "
                 "input", note, pd.DataFrame(data_rows), pd.DataFrame(show_rows))


def _duration(seconds: float) -> str:
    """Seconds as a reader scans them: ``45 s``, ``29 min``, ``2.4 h``; ``—`` when unknown."""
    if math.isnan(seconds):
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def runs_table(comp: Comparison) -> Table:
    """Each run's short name with its full identity and the budget that trained it:
    folder, backbone, hyper input, loss, alpha, seed, rounds, epochs, training crops per
    image, test crops, precision, training data, wall time per round and machine."""
    data_rows, show_rows = [], []
    for run in comp.runs:
        alpha = run.alpha if run.loss == "l1+rank" else math.nan
        cfg = run.config
        per_round, fastest = run.train_seconds_per_round(), run.fastest_epoch_seconds()
        machines = "; ".join(run.machines())
        data = {"name": run.name, "label": run.label, "path": str(run.path),
                "baseline": run is comp.baseline, "backbone": run.backbone,
                "hyper_input": run.hyper_input, "input_size": run.input_size, "loss": run.loss,
                "alpha": alpha, "seed": cfg.seed, "rounds": len(run.rounds),
                "epochs": run.epochs, "crops_per_image": cfg.crops_per_image,
                "eval_crops": cfg.eval_crops, "amp": cfg.amp,
                "train_dataset": run.train_dataset, "train_s_per_round": per_round,
                "fastest_epoch_s": fastest, "machine": machines}
        data_rows.append(data)
        time_cell = _duration(per_round)
        if not math.isnan(fastest):
            time_cell += f" (fastest epoch {fastest:.0f} s)"
        show_rows.append({
            "name": run.name + (" (baseline)" if run is comp.baseline else ""),
            "folder": f"`{run.path}`", "backbone": run.backbone, "hyper input": run.hyper_input,
            "input (px)": str(run.input_size), "loss": LOSS_NAMES.get(run.loss, run.loss),
            "α": fmt(alpha, 2) if run.loss == "l1+rank" else "—",
            "seed": str(cfg.seed), "rounds": str(len(run.rounds)),
            "epochs": str(run.epochs), "crops/image": str(cfg.crops_per_image),
            "test crops": str(cfg.eval_crops), "amp": str(cfg.amp),
            "trained on": run.train_dataset, "train time/round": time_cell,
            "machine": machines or "—"})
    note = ("Short names used in every table and figure, what each run is and the budget "
            "that trained it. The paired table tests every run against the baseline. "
            "crops/image: random training crops per image per epoch; test crops: crops "
            "averaged per test image; amp: autocast precision of training (auto: bf16 on "
            "CUDA, none on CPU); train time/round: the epochs' wall time summed (training "
            "and validation, not test scoring), mean over rounds, with the fastest epoch of "
            "any round (other work on the machine only lengthens an epoch, so the fastest "
            "epoch x epochs is the cost on a machine to itself); machine: the CPU or GPU of "
            "every start and resume, from the rounds' environment.json.")
    return Table("runs", "Runs", note, pd.DataFrame(data_rows), pd.DataFrame(show_rows))


def _alpha_key(run: Run) -> float:
    return math.inf if math.isnan(run.alpha) else run.alpha


def _val_by_run(comp: Comparison) -> dict[str, dict]:
    out = {}
    for label, frame in comp.validation.groupby("run", sort=False):
        s, p = frame["val_srcc"].dropna(), frame["val_plcc"].dropna()
        out[label] = {"dataset": frame["dataset"].iloc[0], "rounds": len(s),
                      "val_srcc": float(s.median()) if len(s) else math.nan,
                      "val_srcc_mean": float(s.mean()) if len(s) else math.nan,
                      "val_srcc_std": float(s.std(ddof=1)) if len(s) > 1 else math.nan,
                      "val_plcc": float(p.median()) if len(p) else math.nan,
                      "epochs": float(frame["epochs"].median())}
    return out


def _val_mean_std(v: dict) -> str:
    return mean_std(v["val_srcc_mean"], v["val_srcc_std"], v["rounds"])


def ablation_table(comp: Comparison) -> Table:
    """Loss (L1 vs L1 + alpha*rank) x hyper input (last vs multiscale), on validation,
    with the change against the same backbone's last-stage L1 run."""
    val = _val_by_run(comp)
    datasets = comp.datasets()
    summary = comp.summary.set_index(["run", "dataset"]) if not comp.summary.empty else None
    runs = sorted(comp.runs, key=lambda r: (r.backbone, r.train_dataset, r.hyper_input != "last",
                                           r.uses_rank, _alpha_key(r)))
    refs = {}
    for r in runs:
        if r.hyper_input == "last" and not r.uses_rank:
            refs.setdefault((r.backbone, r.train_dataset), r.label)
    data_rows, show_rows = [], []
    for run in runs:
        v = val[run.label]
        ref = refs.get((run.backbone, run.train_dataset))
        delta = v["val_srcc"] - val[ref]["val_srcc"] if ref and ref != run.label else math.nan
        data = {"run": run.label, "backbone": run.backbone, "hyper_input": run.hyper_input,
                "loss": run.loss, "alpha": run.alpha, "val_dataset": v["dataset"],
                "rounds": v["rounds"], "val_srcc": v["val_srcc"],
                "val_srcc_mean": v["val_srcc_mean"], "val_srcc_std": v["val_srcc_std"],
                "val_plcc": v["val_plcc"],
                "delta_val_srcc": delta, "reference": ref or ""}
        show = {"run": run.name, "hyper input": run.hyper_input,
                "loss": LOSS_NAMES.get(run.loss, run.loss),
                "α": fmt(run.alpha, 2) if run.loss == "l1+rank" else "—",
                "val set": v["dataset"], "val SRCC median": fmt(v["val_srcc"]),
                "val SRCC mean ± std": _val_mean_std(v),
                "val PLCC median": fmt(v["val_plcc"]),
                "Δ val SRCC vs last/L1": "ref" if ref == run.label else fmt(delta, signed=True)}
        for d in datasets:
            row = _summary_row(summary, run.label, d)
            for m in ("srcc", "plcc"):
                value = _value(row, m)
                data[f"test_{d}_{m}"] = value
                show[f"test {d} {m.upper()}"] = fmt(value)
        data_rows.append(data)
        show_rows.append(show)
    note = ("Validation: the best epoch by validation SRCC in log.csv (the epoch best.pt was "
            "kept at), its SRCC and the PLCC at that same epoch; median over rounds. Δ is "
            "against the same backbone's last-stage L1 run on the same data (the original "
            "Hyper-IQA). Test columns (median over rounds) are for reference only: choose "
            "variants on validation. Differences between runs are only supported where the "
            "paired test (paired.md) says significant.")
    return Table("ablation", "Ablation: loss and hyper-network input (validation)", note,
                 pd.DataFrame(data_rows), pd.DataFrame(show_rows))


def _alpha_finding(name: str, members: list[Run], val: dict[str, dict]) -> str:
    """One sentence: which α the sweep chose among the ranking runs, and whether any
    of them beat the L1 run (α = 0) on validation."""
    ranked = [r for r in members if r.uses_rank and not math.isnan(val[r.label]["val_srcc"])]
    l1 = [r for r in members if not r.uses_rank and not math.isnan(val[r.label]["val_srcc"])]
    if not ranked:
        return ""
    best = max(ranked, key=lambda r: val[r.label]["val_srcc"])
    score = f"val SRCC {fmt(val[best.label]['val_srcc'])}"
    if len(ranked) == 1:
        chosen = f"{name}: the one α tried, {best.alpha:g} ({score}),"
    else:
        alphas = ", ".join(f"{r.alpha:g}" for r in ranked)
        chosen = f"{name}: among α = {alphas} the sweep chose α = {best.alpha:g} ({score}),"
    if not l1:
        return f"{chosen} and there is no L1 run (α = 0) to compare it with."
    ref = f"L1 alone (α = 0, val SRCC {fmt(val[l1[0].label]['val_srcc'])})"
    beat = [r for r in ranked if val[r.label]["val_srcc"] > val[l1[0].label]["val_srcc"]]
    if not beat:
        every = "it" if len(ranked) == 1 else "every α"
        return f"{chosen} but {ref} scored at least as well as {every}: no α beat L1."
    if len(ranked) == 1:
        return f"{chosen} and it beat {ref}."
    return f"{chosen} and {len(beat)} of the {len(ranked)} α values beat {ref}."


def alpha_table(comp: Comparison) -> Table | None:
    """Validation SRCC/PLCC per ranking weight alpha (alpha 0 = the L1 run), per
    backbone, hyper input and dataset; None when no run uses the ranking loss. The
    footer says which alpha the sweep chose and whether any alpha beat L1."""
    swept = [r for r in comp.runs if r.loss in ("l1", "l1+rank")]
    if not any(r.loss == "l1+rank" for r in swept):
        return None
    val = _val_by_run(comp)
    data_rows, show_rows, findings = [], [], []
    groups: dict[tuple, list[Run]] = {}
    for r in swept:
        groups.setdefault((r.backbone, r.hyper_input, r.train_dataset), []).append(r)
    for (backbone, hyper, dataset), members in sorted(groups.items()):
        if not any(r.loss == "l1+rank" for r in members):
            continue
        members = sorted(members, key=lambda r: r.alpha)
        best = max((val[r.label]["val_srcc"] for r in members
                    if not math.isnan(val[r.label]["val_srcc"])), default=math.nan)
        for r in members:
            v = val[r.label]
            is_best = len(members) > 1 and not math.isnan(best) and v["val_srcc"] == best
            data_rows.append({"backbone": backbone, "hyper_input": hyper, "val_dataset": dataset,
                              "alpha": r.alpha, "run": r.label, "name": r.name,
                              "rounds": v["rounds"],
                              "val_srcc": v["val_srcc"], "val_srcc_mean": v["val_srcc_mean"],
                              "val_srcc_std": v["val_srcc_std"], "val_plcc": v["val_plcc"],
                              "best_on_val": is_best})
            show_rows.append({"backbone": backbone, "hyper input": hyper, "val set": dataset,
                              "α": fmt(r.alpha, 2) + (" (L1)" if not r.uses_rank else ""),
                              "run": r.name, "val SRCC median": fmt(v["val_srcc"]),
                              "val SRCC mean ± std": _val_mean_std(v),
                              "val PLCC median": fmt(v["val_plcc"]),
                              "best on val": "yes" if is_best else ""})
        findings.append(_alpha_finding(f"{backbone} · {hyper} on {dataset}", members, val))
    note = ("Loss = L1 + α · pairwise ranking hinge; α = 0 is the plain L1 run. Best validation "
            "SRCC per round (median over rounds) and the PLCC at that epoch. Pick α here, "
            "never on test; with few rounds or small validation sets, neighbouring α values "
            "are rarely distinguishable.")
    return Table("alpha_sweep", "Ranking-loss weight α (validation)", note,
                 pd.DataFrame(data_rows), pd.DataFrame(show_rows),
                 footer=" ".join(f for f in findings if f))


def paired_table(comp: Comparison) -> Table:
    """Each variant against the baseline: difference, 95% interval, p-value, the
    resampled unit, the interval's reading and the verdict on the recipes."""
    data = comp.paired.copy()
    data.insert(1, "name", [comp.name_of(v) for v in data["variant"]])
    rows = []
    for _, r in data.iterrows():
        ci = ("—" if math.isnan(r["ci_low"])
              else f"[{fmt(r['ci_low'], signed=True)}, {fmt(r['ci_high'], signed=True)}]")
        rows.append({"variant": r["name"], "test set": r["dataset"],
                     "metric": r["metric"].upper(), "rounds": r["rounds"], "images": r["n_images"],
                     "baseline": fmt(r["baseline_value"]), "variant value": fmt(r["variant_value"]),
                     "diff": fmt(r["diff"], signed=True), "95% CI": ci, "p": fmt_p(r["p_value"]),
                     "resampled": _text(r.get("unit")), "interval": r["significance"],
                     "verdict": _text(r.get("verdict")), "method": _text(r.get("method")),
                     "note": _text(r.get("note"))})
    note = (f"Each variant minus the baseline `{comp.baseline.name}`, on the same test images "
            "(aligned on dataset and image name, round k against round k). diff = mean over "
            "paired rounds of metric(variant) − metric(baseline). 95% interval ('method'): with "
            "one round, a paired bootstrap of the test set (test sampling only); with several, "
            "a t-interval over the per-round differences that adds the test-sampling variance. "
            "'resampled': the bootstrap's unit, whole content groups where test images share a "
            "content id (AGIQA-3K prompts, reference images), else images. 'interval': "
            "'significant' when it excludes 0, 'not significant' when these data cannot "
            "support a difference. 'verdict': the claim about the training recipes, which "
            "needs at least two paired rounds ('too few rounds to judge' below). 'not "
            f"comparable': fewer than {MIN_COMMON_IMAGES} test images in common in every round.")
    return Table("paired", "Paired comparison against the baseline run", note, data,
                 pd.DataFrame(rows, columns=["variant", "test set", "metric", "rounds", "images",
                                             "baseline", "variant value", "diff", "95% CI", "p",
                                             "resampled", "interval", "verdict", "method",
                                             "note"]))


def _text(value) -> str:
    """A text cell; empty or missing reads as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "":
        return "—"
    return str(value)


def gate_table(comp: Comparison) -> Table | None:
    if comp.gate is None:
        return None
    rows = [{"run": g["run"], "test set": g["dataset"], "metric": g["metric"].upper(),
             "baseline": fmt(g["baseline"]), "current": fmt(g["current"]),
             "change": fmt(g["change"], signed=True), "status": g["status"]}
            for _, g in comp.gate.iterrows()]
    max_drop = float(comp.gate["max_drop"].iloc[0])
    note = (f"A metric fails when it falls more than {max_drop:g} (absolute) below the "
            "baseline file's value (a metrics.csv from an earlier `iqabench compare --out`), "
            "or when its run/test set is missing now.")
    return Table("gate", "Regression gate", note, comp.gate, pd.DataFrame(rows))


def profile_table(comp: Comparison) -> Table | None:
    if comp.profiles is None:
        return None
    shown = comp.profiles[[c for c in PROFILE_COLUMNS if c in comp.profiles.columns]]
    return Table("profile", "Profile measurements (as given)",
                 "Every row of the profile outputs passed with --profile (all columns in "
                 "profile.csv, including the ops fvcore did not count).", comp.profiles,
                 shown.map(lambda v: fmt(v, 3) if isinstance(v, float) else v))


def tables(comp: Comparison) -> list[Table]:
    """Every report table, in report order: the design card first, then the runs."""
    paired = paired_table(comp) if len(comp.runs) > 1 else None
    found = [design_table(comp), runs_table(comp), ablation_table(comp), alpha_table(comp),
             paired, profile_table(comp), gate_table(comp)]
    return [t for t in found if t is not None]


def markdown(table: Table) -> str:
    """``## title``, the note, the table (every column named), the footer."""
    body = ("(no rows)" if table.display.empty
            else table.display.to_markdown(index=False, disable_numparse=True))
    footer = f"\n{table.footer}\n" if table.footer else ""
    return f"## {table.title}\n\n{table.note}\n\n{body}\n{footer}"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"α": r"$\alpha$", "Δ": r"$\Delta$", "±": r"$\pm$", "·": r"$\cdot$",
                  "×": r"$\times$", "−": r"$-$", "—": "---", "–": "--", "→": r"$\to$",
                  "≥": r"$\geq$", "≤": r"$\leq$", "<": r"$<$", ">": r"$>$"}


def latex_escape(text: object) -> str:
    """``text`` for a LaTeX cell: specials escaped, the Greek letters and symbols the
    tables use in math mode, backticks dropped, ``--`` kept as two hyphens
    (pdflatex-safe)."""
    text = str(text).replace("`", "")
    out = []
    for i, ch in enumerate(text):
        if ch == "-" and text[i + 1:i + 2] == "-":
            out.append("-{}")  # "--flag" stays two hyphens, not an en dash
            continue
        out.append(_LATEX_SPECIAL.get(ch) or _LATEX_UNICODE.get(ch) or ch)
    return "".join(out)


def latex(table: Table) -> str:
    """The table as a booktabs ``table`` environment: caption = title, the note and
    footer below the tabular in small type."""
    frame = table.display
    cols = "l" * max(1, len(frame.columns))
    lines = [r"\begin{table}[htbp]", r"\centering", r"\small",
             f"\\caption{{{latex_escape(table.title)}}}", f"\\label{{tab:{table.name}}}",
             f"\\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in frame.columns) + r" \\", r"\midrule"]
    if frame.empty:
        lines.append(f"\\multicolumn{{{len(cols)}}}{{l}}{{(no rows)}} \\\\")
    for _, row in frame.iterrows():
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", "",
              r"\par\footnotesize " + latex_escape(table.note)]
    if table.footer:
        lines.append(r"\par " + latex_escape(table.footer))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def write_tables(comp: Comparison, out: Path) -> Written:
    """``NAME.csv``, ``NAME.md`` and ``NAME.tex`` per table, plus ``metrics.csv`` (run x
    test set; the gate's baseline format), ``rounds.csv``, ``validation.csv`` and
    ``intervals.csv`` (data only)."""
    written = []
    frames = [("metrics", comp.summary), ("rounds", comp.per_round),
              ("validation", comp.validation)]
    if comp.intervals is not None:
        frames.append(("intervals", comp.intervals))
    for name, frame in frames:
        frame.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
        written.append(out / f"{name}.csv")
    for table in tables(comp):
        table.data.to_csv(out / f"{table.name}.csv", index=False, float_format="%.6g")
        (out / f"{table.name}.md").write_text(markdown(table))
        (out / f"{table.name}.tex").write_text(latex(table))
        written += [out / f"{table.name}.{ext}" for ext in ("csv", "md", "tex")]
    return Written(written)


def print_tables(comp: Comparison, console: Console) -> None:
    """Every table on the terminal; mean ± std columns are left to the Markdown files."""
    for table in tables(comp):
        shown = table.display[[c for c in table.display.columns if "mean ± std" not in str(c)]]
        rich = RichTable(title=f"{table.title} ({table.name}.md)", title_justify="left")
        for col in shown.columns:
            rich.add_column(str(col), overflow="fold")
        for _, row in shown.iterrows():
            rich.add_row(*[str(v) for v in row])
        console.print(rich)
        console.print(f"[dim]{table.note}[/dim]", highlight=False)
        if table.footer:
            console.print(table.footer, highlight=False)
        console.print()
