"""Report-ready tables and plots from a :class:`iqabench.compare.Comparison`.

Every table is written twice, as CSV (numbers, for scripts) and Markdown (formatted,
for reports), and printed with rich; every plot is a PNG next to them. ``report.md``
collects all of it with the notes on units and method. Plots use matplotlib's Agg
backend, so they work without a display.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from iqabench import metrics as iqa_metrics  # noqa: E402
from iqabench.errors import IqabenchError  # noqa: E402
from iqabench.provenance import git_commit  # noqa: E402

if TYPE_CHECKING:
    from rich.console import Console

    from iqabench.compare import Comparison, Run

NOT_MEASURED = "not measured"
#: Profile columns shown in profile.md (profile.csv keeps every column).
PROFILE_COLUMNS = ("backbone", "hyper_input", "params_m", "gmacs", "gflops", "gmacs_per_image",
                   "thop_gmacs", "ms_per_patch", "ms_per_image", "images_per_s", "peak_mem_mb",
                   "device", "dtype", "batch_size", "input_size", "n_crops", "source")
LOSS_NAMES = {"l1": "L1", "l1+rank": "L1 + α·rank", "rank": "rank only"}
DPI = 120


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


def _datasets(comp: Comparison) -> list[str]:
    """Test sets, training datasets first."""
    found = list(dict.fromkeys(comp.summary["dataset"])) if not comp.summary.empty else []
    train = [r.train_dataset for r in comp.runs]
    return sorted(found, key=lambda d: (d not in train, d))


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
    datasets = _datasets(comp)
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
    datasets = _datasets(comp)
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
            f"{_min_common()} test images in common in every round.")
    return Table("paired", "Paired comparison against the baseline run", note, data,
                 pd.DataFrame(rows, columns=["variant", "test set", "metric", "rounds", "images",
                                             "baseline", "variant value", "diff", "95% CI", "p",
                                             "significance", "note"]))


def _min_common() -> int:
    from iqabench.compare import MIN_COMMON_IMAGES

    return MIN_COMMON_IMAGES


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


def write_tables(comp: Comparison, out: Path) -> list[Path]:
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
    comp.files += written
    return written


def print_tables(comp: Comparison, console: Console) -> None:
    """Every table on the terminal; mean ± std columns are left to the Markdown files."""
    from rich.table import Table as RichTable

    for table in tables(comp):
        shown = table.display[[c for c in table.display.columns if "mean ± std" not in str(c)]]
        rich = RichTable(title=f"{table.title} ({table.name}.md)", title_justify="left")
        for col in shown.columns:
            rich.add_column(str(col), overflow="fold")
        for _, row in shown.iterrows():
            rich.add_row(*[str(v) for v in row])
        console.print(rich)
        console.print(f"[dim]{table.note}[/dim]\n", highlight=False)


# --------------------------------------------------------------------------- plots


def _save(fig, path: Path, comp: Comparison) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    comp.files.append(path)
    return path


def plot_validation_curves(comp: Comparison, out: Path) -> list[Path]:
    """Validation SRCC and PLCC per epoch, one figure per training dataset, one line per
    run (solid: L1, dashed: L1 + alpha*rank); median over rounds, band min-max."""
    paths = []
    colours = plt.get_cmap("tab10")
    by_dataset: dict[str, list[int]] = {}
    for i, run in enumerate(comp.runs):
        if any(r.log is not None for r in run.rounds):
            by_dataset.setdefault(run.train_dataset, []).append(i)
    for dataset, indices in by_dataset.items():
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
        multi = False
        for i in indices:
            run = comp.runs[i]
            style = "--" if run.uses_rank else "-"
            for ax, col in zip(axes, ("val_srcc", "val_plcc")):
                logs = [r.log.set_index("epoch")[col] for r in run.rounds
                        if r.log is not None and col in r.log.columns]
                if not logs:
                    continue
                curves = pd.concat(logs, axis=1)
                multi |= curves.shape[1] > 1
                med = curves.median(axis=1)
                ax.plot(med.index, med.to_numpy(), style, marker="o", ms=3, color=colours(i % 10),
                        label=f"{run.label} ({LOSS_NAMES.get(run.loss, run.loss)})")
                if curves.shape[1] > 1:
                    ax.fill_between(med.index, curves.min(axis=1), curves.max(axis=1),
                                    color=colours(i % 10), alpha=0.15)
        for ax, name in zip(axes, ("SRCC", "PLCC")):
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"validation {name}")
            ax.set_title(f"validation {name} per epoch")
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].legend(fontsize=8, loc="lower right")
        how = "median over rounds, band = min–max" if multi else "one round per run"
        fig.suptitle(f"Validation SRCC and PLCC per epoch on {dataset}: L1 (solid) vs "
                     f"L1 + α·rank (dashed) ({how})")
        paths.append(_save(fig, out / f"val_curves_{slug(dataset)}.png", comp))
    if not paths:
        comp.notes.append("no log.csv in any run: validation curves skipped")
    return paths


def _scatter_panel(ax, pred: np.ndarray, mos: np.ndarray, title: str, lims: tuple[float, float]):
    ax.scatter(pred, mos, s=10, alpha=0.55, color="tab:blue", label="test images")
    grid = np.linspace(pred.min(), pred.max(), 200)
    fitted = iqa_metrics.fit_logistic(pred, mos, 5)
    with np.errstate(over="ignore"):  # exp overflow on the flat tails is harmless
        curve = fitted(grid)
    ax.plot(grid, curve, color="tab:red", lw=2, label="5-parameter logistic fit")
    ax.plot(lims, lims, "--", color="grey", lw=1, label="y = x")
    ax.set_xlim(lims)
    ax.set_ylim(lims)
    ax.set_aspect("equal")
    ax.set_xlabel("predicted score (MOS units)")
    ax.set_ylabel("true MOS")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def plot_scatter(comp: Comparison, out: Path) -> list[Path]:
    """Predicted vs true MOS, baseline and each variant side by side, per test set, on
    the first round they share (the same images in both panels where they align)."""
    from iqabench.compare import align, pair_rounds

    pairs = ([(comp.baseline, v) for v in comp.runs if v is not comp.baseline]
             or [(comp.baseline, None)])
    paths = []
    for base, variant in pairs:
        shared = set(comp.summary.loc[comp.summary["run"] == base.label, "dataset"])
        if variant is not None:
            shared &= set(comp.summary.loc[comp.summary["run"] == variant.label, "dataset"])
        for dataset in [d for d in _datasets(comp) if d in shared]:
            panels = []
            if variant is not None:
                aligned = align(base, variant, dataset)
                if aligned.strata:
                    mos, pa, pb = aligned.strata[0]
                    r = aligned.rounds[0]
                    panels = [(base, pa, mos, r), (variant, pb, mos, r)]
            if not panels:
                for run in (base, variant):
                    if run is None:
                        continue
                    rnd = run.rounds[0]
                    if variant is not None and pair_rounds(base, variant):
                        rnd = pair_rounds(base, variant)[0][0 if run is base else 1]
                    f = rnd.predictions[rnd.predictions["dataset"] == dataset]
                    if len(f) >= 3:
                        panels.append((run, f["pred"].to_numpy(float), f["mos"].to_numpy(float),
                                       rnd.round))
            if not panels:
                continue
            values = np.concatenate([np.concatenate([p, m]) for _, p, m, _ in panels])
            pad = 0.05 * (values.max() - values.min() or 1.0)
            lims = (float(values.min() - pad), float(values.max() + pad))
            fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5.6),
                                     squeeze=False, layout="constrained")
            for ax, (run, pred, mos, rnd_no) in zip(axes[0], panels):
                title = (f"{run.label}\nSRCC {iqa_metrics.srcc(pred, mos):.3f}   "
                         f"PLCC {iqa_metrics.plcc(pred, mos):.3f}   (n={len(mos)}, round {rnd_no})")
                _scatter_panel(ax, pred, mos, title, lims)
            what = "baseline vs variant" if len(panels) == 2 else "one run"
            fig.suptitle(f"Predicted vs true MOS on {dataset} test images ({what})")
            name = f"scatter_{slug(dataset)}_{slug(variant.label if variant else base.label)}.png"
            paths.append(_save(fig, out / name, comp))
    return paths


def _pca_panel(ax, sample, coords, share, ratio, colour_of):
    from matplotlib.lines import Line2D

    if sample.groups:
        for key in sorted(set(sample.groups), key=lambda k: (k == "other", k)):
            mask = np.array([g == key for g in sample.groups])
            ax.scatter(coords[mask, 0], coords[mask, 1], s=14, alpha=0.75, color=colour_of[key],
                       label=key)
        handles = [Line2D([], [], marker="o", ls="", color=colour_of[k], label=k)
                   for k in sorted(colour_of, key=lambda k: (k == "other", k))]
        ax.legend(handles=handles, fontsize=7, loc="best", title=sample.group_kind,
                  title_fontsize=7)
    else:
        sc = ax.scatter(coords[:, 0], coords[:, 1], c=sample.mos, cmap="viridis", s=14)
        plt.colorbar(sc, ax=ax, label="MOS")
    sep = "n/a" if math.isnan(ratio) else f"{ratio:.2f}"
    ax.set_title(f"{sample.run} (round {sample.round})\nPC1 {share[0]:.0%}, PC2 {share[1]:.0%} of "
                 f"variance; between/within-group scatter {sep}", fontsize=9)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.grid(alpha=0.3)


def plot_weight_pca(comp: Comparison, out: Path, limit: int = 200, seed: int = 0) -> list[Path]:
    """PCA of the generated target-network weights per test image (the Hyper-IQA paper's
    Figure 5), baseline and each variant side by side."""
    from iqabench.compare import pca_2d, separation_ratio, target_weights

    if limit <= 0:
        comp.notes.append("--pca-limit 0: weight PCA skipped")
        return []
    samples = {}
    for run in comp.runs:
        try:
            samples[run.label] = target_weights(run, limit=limit, seed=seed)
        except IqabenchError as err:
            comp.notes.append(f"weight PCA skipped for {run.label}: {err}")
    base = samples.get(comp.baseline.label)
    others = [r for r in comp.runs if r is not comp.baseline and r.label in samples]
    figures = [([base] if base else []) + [samples[r.label]] for r in others]
    if base and not others:
        figures = [[base]]
    paths = []
    for panels in figures:
        keys = sorted({g for s in panels for g in s.groups}, key=lambda k: (k == "other", k))
        cmap = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")
        colour_of = {k: ("lightgrey" if k == "other" else cmap(i % cmap.N))
                     for i, k in enumerate(keys)}
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5.6), squeeze=False,
                                 layout="constrained")
        for ax, sample in zip(axes[0], panels):
            coords, share = pca_2d(sample.params)
            ratio = separation_ratio(coords, sample.groups)
            _pca_panel(ax, sample, coords, share, ratio, colour_of)
        kind = panels[0].group_kind if panels[0].groups else "MOS (no content groups)"
        fig.suptitle(f"PCA of generated target-network weights per test image "
                     f"({panels[0].dataset}, {len(panels[0].names)} images, one center crop), "
                     f"coloured by {kind}")
        paths.append(_save(fig, out / f"pca_weights_{slug(panels[-1].run)}.png", comp))
    return paths


# ----------------------------------------------------------------- hyper-input diagram


def trace_hyper_flow(model_config: dict, hyper_input: str) -> dict:
    """Real tensor shapes along the hyper network's input path, from a forward pass with
    hooks on a 1-image dummy input (built without pretrained weights)."""
    import torch
    import torch.nn.functional as F

    from iqabench.models.backbone import stages_nchw
    from iqabench.models.hyperiqa import HyperIQA, HyperIQAConfig

    try:
        config = HyperIQAConfig.from_dict(model_config)
    except (TypeError, ValueError):  # a config from another version: keep what matters
        config = HyperIQAConfig(backbone=model_config.get("backbone", "resnet50"),
                                input_size=int(model_config.get("input_size", 224)))
    config = replace(config, hyper_input=hyper_input)
    model = HyperIQA(config, pretrained=False).eval()
    seen: dict = {}
    hooks = [
        model.backbone.register_forward_hook(
            lambda m, i, o: seen.__setitem__("stages", stages_nchw(o, model.spec))),
        model.hyper_in[0].register_forward_pre_hook(
            lambda m, args: seen.__setitem__("hyper_input", tuple(args[0].shape))),
        model.weight_fc_last.register_forward_pre_hook(
            lambda m, args: seen.__setitem__("pooled", tuple(args[0].shape))),
    ]
    convs = [i for i, layer in enumerate(model.hyper_in) if isinstance(layer, torch.nn.Conv2d)]
    for i in convs:
        hooks.append(model.hyper_in[i].register_forward_hook(
            lambda m, a, o, i=i: seen.__setitem__(f"hyper_in.{i}", tuple(o.shape))))
    for i, conv in enumerate(model.weight_convs):
        hooks.append(conv.register_forward_hook(
            lambda m, a, o, i=i: seen.__setitem__(f"weight_convs.{i}", tuple(o.shape))))
    size = config.input_size
    with torch.no_grad():
        _, params = model(torch.rand(1, 3, size, size), return_params=True)
    for h in hooks:
        h.remove()
    grid = seen["hyper_input"][-1]
    used = seen["stages"] if hyper_input == "multiscale" else seen["stages"][-1:]
    pooled = [tuple(F.adaptive_avg_pool2d(s, grid).shape) for s in used]
    if sum(p[1] for p in pooled) != seen["hyper_input"][1]:
        raise RuntimeError("pooled stage channels do not add up to the hyper-network input")
    return {
        "backbone": config.backbone, "hyper_input": hyper_input, "input": (1, 3, size, size),
        "stages": [tuple(s.shape) for s in seen["stages"]], "pooled": pooled,
        "stage_used": [hyper_input == "multiscale" or i == len(seen["stages"]) - 1
                       for i in range(len(seen["stages"]))],
        "hyper_in_input": seen["hyper_input"],
        "hyper_in": [seen[f"hyper_in.{i}"] for i in convs],
        "hyper_in_params": sum(p.numel() for p in model.hyper_in.parameters()),
        "map": seen[f"hyper_in.{convs[-1]}"], "pooled_map": seen["pooled"],
        "weight_convs": [seen[f"weight_convs.{i}"] for i in range(len(model.weight_convs))],
        "params": {k: tuple(v.shape) for k, v in params.items()},
    }


def _shape(s: tuple) -> str:
    return "×".join(str(v) for v in s)


def _box(ax, x, y, w, h, text, colour="#dbe9f6", edge="#3b6ea5", fontsize=7.5):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle="round,pad=0.02,rounding_size=0.12",
                                fc=colour, ec=edge, lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, colour="#444444", style="-|>"):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=10, color=colour,
                                 lw=1.0, shrinkA=0, shrinkB=0))


def _draw_flow(ax, flow: dict, changed: bool) -> None:
    """One panel: input -> backbone stages -> pooling/concat -> hyper_in -> generators."""
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 11)
    ax.axis("off")
    new, new_edge = ("#fde2c4", "#d9822b") if changed else ("#dbe9f6", "#3b6ea5")
    idle = ("#eeeeee", "#aaaaaa")
    _box(ax, 5, 10.4, 3.4, 0.6, f"input crop {_shape(flow['input'])}")
    _box(ax, 5, 9.3, 8.8, 0.6, f"backbone {flow['backbone']} (timm, features_only)")
    _arrow(ax, (5, 10.1), (5, 9.6))
    n = len(flow["stages"])
    xs = np.linspace(1.25, 8.75, n)
    pooled = iter(flow["pooled"])
    pool_y, cat_y = 6.4, 5.0
    for i, (x, shape, used) in enumerate(zip(xs, flow["stages"], flow["stage_used"])):
        fc, ec = ("#dbe9f6", "#3b6ea5") if used else idle
        _box(ax, x, 7.9, 2.1, 0.75, f"stage {i + 1}\n{_shape(shape)}", fc, ec)
        _arrow(ax, (x, 9.0), (x, 8.28), colour="#888888")
        if used:
            p = next(pooled)
            is_new = changed and i < n - 1
            _box(ax, x, pool_y, 2.1, 0.75, f"adaptive avg pool\n{_shape(p)}",
                 new if is_new else "#dbe9f6", new_edge if is_new else "#3b6ea5")
            _arrow(ax, (x, 7.52), (x, pool_y + 0.38))
            _arrow(ax, (x, pool_y - 0.38), (5, cat_y + 0.33))
        else:
            ax.text(x, pool_y, "LDA branch only\n(target-net input)", ha="center", va="center",
                    fontsize=7, color="#888888", style="italic")
            _arrow(ax, (x, 7.52), (x, pool_y + 0.3), colour="#bbbbbb")
    if flow["hyper_input"] == "multiscale":
        cat_text = f"concat on channels → {_shape(flow['hyper_in_input'])}"
    else:
        cat_text = f"hyper-network input {_shape(flow['hyper_in_input'])}"
    _box(ax, 5, cat_y, 5.6, 0.65, cat_text, new if changed else "#dbe9f6",
         new_edge if changed else "#3b6ea5")
    chans = " → ".join(str(s[1]) for s in [flow["hyper_in_input"], *flow["hyper_in"]])
    _box(ax, 5, 3.75, 6.6, 0.8, f"hyper_in: three 1×1 conv + ReLU, channels {chans}\n"
         f"({flow['hyper_in_params']:,} parameters)", new if changed else "#dbe9f6",
         new_edge if changed else "#3b6ea5")
    _arrow(ax, (5, cat_y - 0.33), (5, 4.15))
    _box(ax, 3.2, 2.45, 3.2, 0.65, f"hyper map {_shape(flow['map'])}")
    _arrow(ax, (4.2, 3.35), (3.4, 2.78))
    _box(ax, 7.6, 2.45, 2.6, 0.65, f"global avg {_shape(flow['pooled_map'])}")
    _arrow(ax, (4.8, 2.45), (6.3, 2.45))
    p = flow["params"]
    n_w = len([k for k in p if k.startswith("w")])
    conv_ws = "\n".join(f"w{i + 1} {_shape(p[f'w{i + 1}'][1:])}  "
                        f"(from {_shape(flow['weight_convs'][i])})" for i in range(n_w - 1))
    _box(ax, 3.2, 0.85, 5.2, 1.45, f"3×3 conv generators → per-image weights\n{conv_ws}",
         "#e3f1df", "#4b8b3b", 7)
    _arrow(ax, (3.2, 2.12), (3.2, 1.58))
    fc_ws = (f"w{n_w} {_shape(p[f'w{n_w}'][1:])}\n"
             + ", ".join(f"b{i} {_shape(p[f'b{i}'][1:])}" for i in range(1, n_w + 1)))
    _box(ax, 8.0, 0.85, 3.4, 1.45, f"fc generators →\n{fc_ws}", "#e3f1df", "#4b8b3b", 7)
    _arrow(ax, (7.6, 2.12), (7.9, 1.58))


def plot_dataflow(comp: Comparison, out: Path) -> list[Path]:
    """Before/after diagram of the hyper network's input for each backbone among the
    runs, with shapes read from real forward passes of both variants."""
    paths, done = [], set()
    for run in comp.runs:
        key = (run.backbone, run.input_size)
        if key in done or run.backbone == "?":
            continue
        done.add(key)
        cfg = dict(run.model_config) or {"backbone": run.backbone}
        try:
            before = trace_hyper_flow(cfg, "last")
            after = trace_hyper_flow(cfg, "multiscale")
        except IqabenchError as err:
            comp.notes.append(f"data-flow diagram skipped for {run.backbone}: {err}")
            continue
        fig, axes = plt.subplots(1, 2, figsize=(16, 9.4), layout="constrained")
        _draw_flow(axes[0], before, changed=False)
        axes[0].set_title("Before: hyper network sees the last stage only (original Hyper-IQA)",
                          fontsize=11)
        _draw_flow(axes[1], after, changed=True)
        axes[1].set_title("After: hyper network sees every stage (multiscale, orange = changed)",
                          fontsize=11)
        fig.suptitle(f"Data flow into the hyper network, {run.backbone} at {run.input_size} px: "
                     "tensor shapes from a forward pass of each variant (batch 1)", fontsize=13)
        paths.append(_save(fig, out / f"dataflow_{slug(run.backbone)}.png", comp))
    return paths


def write_plots(comp: Comparison, out: Path, pca_limit: int = 200, seed: int = 0) -> list[Path]:
    return (plot_validation_curves(comp, out) + plot_scatter(comp, out)
            + plot_weight_pca(comp, out, limit=pca_limit, seed=seed) + plot_dataflow(comp, out))


# --------------------------------------------------------------------------- report


def write_report(comp: Comparison, out: Path) -> Path:
    """``report.md``: how it was made, the runs, every table, every plot, and the notes."""
    from datetime import datetime, timezone

    made = [f"- command: `{comp.command}`"] if comp.command else []
    made += [f"- iqabench commit: {git_commit()}",
             f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}"]
    lines = ["# iqabench compare report", "", *made, "", "## Runs", "",
             "| label | folder | rounds | trained on | epochs |", "|---|---|---|---|---|"]
    for run in comp.runs:
        mark = " (baseline)" if run is comp.baseline else ""
        lines.append(f"| {run.label}{mark} | `{run.path}` | {len(run.rounds)} | "
                     f"{run.train_dataset} | {run.config.get('epochs', '?')} |")
    lines.append("")
    for table in tables(comp):
        lines += [markdown(table), ""]
    pngs = [p for p in comp.files if p.suffix == ".png"]
    if pngs:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}]({p.name})\n" for p in pngs]
    if comp.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in comp.notes] + [""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    comp.files.append(path)
    return path
