"""Report tables from a :class:`~iqabench.analysis.types.Comparison`.

Every table is written twice, as CSV (numbers, for scripts) and Markdown (formatted,
for reports), and can be printed with rich. Writers return what they wrote.
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

NOT_MEASURED = "not measured"
#: Profile columns shown in profile.md (profile.csv keeps every column).
PROFILE_COLUMNS = ("backbone", "hyper_input", "params_m", "gmacs", "gflops", "gmacs_per_image",
                   "thop_gmacs", "ms_per_patch", "ms_per_image", "images_per_s", "peak_mem_mb",
                   "device", "dtype", "batch_size", "input_size", "n_crops", "source")
LOSS_NAMES = {"l1": "L1", "l1+rank": "L1 + α·rank", "rank": "rank only"}


@dataclass
class Table:
    """One report table: ``data`` goes to CSV, ``display`` to Markdown and the terminal."""

    name: str  # file stem
    title: str
    note: str
    data: pd.DataFrame
    display: pd.DataFrame


# --------------------------------------------------------------------------- formatting


def fmt(value, digits: int = 3, signed: bool = False) -> str:
    """A number for a table cell; NaN reads as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def mean_std(mean: float, std: float, rounds: int) -> str:
    if rounds < 2 or math.isnan(std):
        return f"{fmt(mean)} (1 round)"
    return f"{fmt(mean)} ± {fmt(std)}"


def slug(text: str) -> str:
    """A file-name-safe version of a run label."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "run"


# --------------------------------------------------------------------------- tables


def _profile_row(profiles: pd.DataFrame | None, run: Run) -> pd.Series | None:
    """The profile measurement of a run's variant: same backbone (and hyper input when
    the profile records it), at the run's crop size when profiled at it; the first CUDA
    row when there is one, else the first row. All rows stay in profile.md."""
    if profiles is None or profiles.empty:
        return None
    match = profiles[profiles["backbone"].astype(str) == run.backbone]
    if "hyper_input" in match.columns:
        match = match[match["hyper_input"].astype(str) == run.hyper_input]
    if "input_size" in match.columns and (match["input_size"] == run.input_size).any():
        match = match[match["input_size"] == run.input_size]
    if match.empty:
        return None
    if "device" in match.columns:
        cuda = match[match["device"].astype(str).str.startswith("cuda")]
        if not cuda.empty:
            return cuda.iloc[0]
    return match.iloc[0]


def _measured_on(row: pd.Series) -> str:
    """``cuda, bf16, batch 64, 224 px, 25 crops/image``: what the latency holds."""
    parts = []
    for key, before, after in (("device", "", ""), ("dtype", "", ""), ("batch_size", "batch ", ""),
                               ("input_size", "", " px"), ("n_crops", "", " crops/image")):
        if key in row.index and pd.notna(row[key]):
            value = row[key]
            if isinstance(value, (float, np.floating)) and float(value).is_integer():
                value = int(value)  # CSV reads integer columns with gaps as float
            parts.append(f"{before}{value}{after}")
    return ", ".join(parts) or "?"


def _summary_row(summary: pd.DataFrame | None, label: str, dataset: str) -> pd.Series | None:
    """A run's aggregated metrics on one test set, or None when it was not scored there."""
    if summary is None or (label, dataset) not in summary.index:
        return None
    return summary.loc[(label, dataset)]


def _value(row: pd.Series | None, key: str) -> float:
    if row is None or key not in row.index or pd.isna(row[key]):
        return math.nan
    return float(row[key])


def backbone_table(comp: Comparison) -> Table:
    """Params, compute and latency (from profile outputs) next to test SRCC/PLCC."""
    datasets = comp.datasets()
    summary = comp.summary.set_index(["run", "dataset"]) if not comp.summary.empty else None
    data_rows, show_rows = [], []
    for run in comp.runs:
        prof = _profile_row(comp.profiles, run)
        data = {"run": run.label, "backbone": run.backbone, "hyper_input": run.hyper_input,
                "rounds": len(run.rounds)}
        show = {"run": run.label, "backbone": run.backbone, "hyper input": run.hyper_input,
                "rounds": len(run.rounds)}
        for key, head, digits in (("params_m", "params (M)", 2), ("gmacs", "GMACs/patch", 3),
                                  ("gflops", "GFLOPs/patch", 3), ("ms_per_image", "ms/image", 1)):
            value = _value(prof, key)
            data[key] = value
            show[head] = NOT_MEASURED if math.isnan(value) else fmt(value, digits)
        data["measured_on"] = _measured_on(prof) if prof is not None else ""
        show["measured on"] = data["measured_on"] or NOT_MEASURED
        for d in datasets:
            for m in ("srcc", "plcc"):
                row = _summary_row(summary, run.label, d)
                med, mean, std = (_value(row, k) for k in (m, f"{m}_mean", f"{m}_std"))
                data.update({f"{d}_{m}_median": med, f"{d}_{m}_mean": mean, f"{d}_{m}_std": std})
                show[f"{d} {m.upper()} median"] = fmt(med)
                show[f"{d} {m.upper()} mean ± std"] = (
                    "—" if row is None else mean_std(mean, std, int(row["rounds"])))
        data_rows.append(data)
        show_rows.append(show)
    note = ("SRCC/PLCC per test set: median over rounds, and mean ± sample std over rounds, "
            "recomputed from each round's predictions.csv. Params in millions, whole model. "
            "GMACs: billions of multiply-accumulates for one patch at batch 1 (fvcore, as "
            "`iqabench profile` counts them; profile.md lists any op it did not count and the "
            "thop cross-check); GFLOPs: profile.csv's gflops column (2 FLOPs per MAC). "
            "ms/image: the 'measured on' crops per image at that patch size, device, dtype and "
            "batch (a patch is one crop). "
            f"'{NOT_MEASURED}': no profile output given for that variant (--profile).")
    return Table("backbones", "Backbones: cost and test accuracy", note,
                 pd.DataFrame(data_rows), pd.DataFrame(show_rows))


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
        show = {"run": run.label, "hyper input": run.hyper_input,
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


def alpha_table(comp: Comparison) -> Table | None:
    """Validation SRCC/PLCC per ranking weight alpha (alpha 0 = the L1 run), per
    backbone, hyper input and dataset; None when no run uses the ranking loss."""
    swept = [r for r in comp.runs if r.loss in ("l1", "l1+rank")]
    if not any(r.loss == "l1+rank" for r in swept):
        return None
    val = _val_by_run(comp)
    data_rows, show_rows = [], []
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
                              "alpha": r.alpha, "run": r.label, "rounds": v["rounds"],
                              "val_srcc": v["val_srcc"], "val_srcc_mean": v["val_srcc_mean"],
                              "val_srcc_std": v["val_srcc_std"], "val_plcc": v["val_plcc"],
                              "best_on_val": is_best})
            show_rows.append({"backbone": backbone, "hyper input": hyper, "val set": dataset,
                              "α": fmt(r.alpha, 2) + (" (L1)" if not r.uses_rank else ""),
                              "run": r.label, "val SRCC median": fmt(v["val_srcc"]),
                              "val SRCC mean ± std": _val_mean_std(v),
                              "val PLCC median": fmt(v["val_plcc"]),
                              "": "best on val" if is_best else ""})
    note = ("Loss = L1 + α · pairwise ranking hinge; α = 0 is the plain L1 run. Best validation "
            "SRCC per round (median over rounds) and the PLCC at that epoch. Pick α here, "
            "never on test; with few rounds or small validation sets, neighbouring α values "
            "are rarely distinguishable.")
    return Table("alpha_sweep", "Ranking-loss weight α (validation)", note,
                 pd.DataFrame(data_rows), pd.DataFrame(show_rows))


def paired_table(comp: Comparison) -> Table:
    data = comp.paired.copy()
    rows = []
    for _, r in data.iterrows():
        ci = ("—" if math.isnan(r["ci_low"])
              else f"[{fmt(r['ci_low'], signed=True)}, {fmt(r['ci_high'], signed=True)}]")
        rows.append({"variant": r["variant"], "test set": r["dataset"],
                     "metric": r["metric"].upper(), "rounds": r["rounds"], "images": r["n_images"],
                     "baseline": fmt(r["baseline_value"]), "variant value": fmt(r["variant_value"]),
                     "diff": fmt(r["diff"], signed=True),
                     "95% CI": ci,
                     "p": fmt(r["p_value"]), "significance": r["significance"], "note": r["note"]})
    note = (f"Each variant minus the baseline `{comp.baseline.label}`, on the same test images "
            "(aligned on dataset and image name, round k against round k). diff = mean over "
            "paired rounds of metric(variant) − metric(baseline); 95% interval from a paired "
            "bootstrap that resamples rounds and, within each, images (both models scored on "
            "the same resample). 'not significant': the interval contains 0, so these data "
            "cannot support a difference. With 1 round the interval covers test-image "
            "sampling only, not training randomness (seed, split): train several rounds "
            "before crediting a recipe. 'not comparable': fewer than "
            f"{MIN_COMMON_IMAGES} test images in common in every round.")
    return Table("paired", "Paired comparison against the baseline run", note, data,
                 pd.DataFrame(rows, columns=["variant", "test set", "metric", "rounds", "images",
                                             "baseline", "variant value", "diff", "95% CI", "p",
                                             "significance", "note"]))


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
    """Every report table, in report order."""
    paired = paired_table(comp) if len(comp.runs) > 1 else None
    found = [backbone_table(comp), ablation_table(comp), alpha_table(comp), paired,
             profile_table(comp), gate_table(comp)]
    return [t for t in found if t is not None]


def markdown(table: Table) -> str:
    body = ("(no rows)" if table.display.empty
            else table.display.to_markdown(index=False, disable_numparse=True))
    return f"## {table.title}\n\n{table.note}\n\n{body}\n"


def write_tables(comp: Comparison, out: Path) -> Written:
    """``NAME.csv`` and ``NAME.md`` per table, plus ``metrics.csv`` (run x test set; the
    gate's baseline format), ``rounds.csv`` and ``validation.csv``."""
    written = []
    for name, frame in (("metrics", comp.summary), ("rounds", comp.per_round),
                        ("validation", comp.validation)):
        frame.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
        written.append(out / f"{name}.csv")
    for table in tables(comp):
        table.data.to_csv(out / f"{table.name}.csv", index=False, float_format="%.6g")
        (out / f"{table.name}.md").write_text(markdown(table))
        written += [out / f"{table.name}.csv", out / f"{table.name}.md"]
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
        console.print(f"[dim]{table.note}[/dim]\n", highlight=False)
