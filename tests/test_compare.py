"""compare: loading run folders, aggregation, paired tests, the gate, weight PCA maths."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iqabench import metrics
from iqabench.compare import (
    _metric_rows,
    align,
    check_gate,
    compare,
    gate_message,
    load_run,
    load_runs,
    paired_comparisons,
    pca_2d,
    round_metrics,
    separation_ratio,
    paired_bootstrap_rounds,
    validation_results,
)
from iqabench.errors import IqabenchError
from iqabench.runfolder import aggregate_rounds

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fake_runs as fr  # noqa: E402

N_BOOT = 300  # enough for stable 95% intervals at these sizes, fast on 2 cores


@pytest.fixture
def images():
    return fr.make_images()


def test_single_and_multi_round_folders_load(tmp_path, images):
    single = fr.write_round(tmp_path / "single", images, fr.predictor(images))
    multi = fr.write_multi_round(tmp_path / "multi", [(images, fr.predictor(images, seed=k))
                                                      for k in range(3)], loss="l1+rank", alpha=2)
    run = load_run(single)
    assert [r.round for r in run.rounds] == [0]
    assert run.config_label() == "test_resnet/last/l1"
    m = load_run(multi)
    assert [r.round for r in m.rounds] == [0, 1, 2]
    assert m.config_label() == "test_resnet/last/l1+rank(2)"
    assert m.alpha == 2.0 and run.alpha == 0.0


def test_not_a_run_folder_is_a_one_line_error(tmp_path, images):
    (tmp_path / "empty").mkdir()
    with pytest.raises(IqabenchError, match="not a run folder"):
        load_run(tmp_path / "empty")
    with pytest.raises(IqabenchError, match="does not exist"):
        load_run(tmp_path / "nope")
    folder = fr.write_round(tmp_path / "r", images, fr.predictor(images))
    (folder / "predictions.csv").unlink()
    with pytest.raises(IqabenchError, match="predictions.csv not found"):
        load_run(folder)


def test_duplicate_prediction_rows_are_refused(tmp_path, images):
    folder = fr.write_round(tmp_path / "r", images, fr.predictor(images))
    preds = pd.read_csv(folder / "predictions.csv")
    pd.concat([preds, preds.iloc[:1]]).to_csv(folder / "predictions.csv", index=False)
    with pytest.raises(IqabenchError, match="more than one row for synthetic/img_0000.png"):
        load_run(folder)


def test_equal_configs_get_their_folder_name(tmp_path, images):
    p = fr.predictor(images)
    a = fr.write_round(tmp_path / "seed0", images, p, seed=0)
    b = fr.write_round(tmp_path / "seed1", images, fr.rerun(p), seed=1)
    runs, base = load_runs([a, b])
    assert [r.label for r in runs] == ["test_resnet/last/l1@seed0", "test_resnet/last/l1@seed1"]
    assert base is runs[0]
    with pytest.raises(IqabenchError, match="given twice"):
        load_runs([a, a])


def test_baseline_run_goes_first_and_may_be_extra(tmp_path, images):
    p = fr.predictor(images)
    a = fr.write_round(tmp_path / "a", images, p)
    b = fr.write_round(tmp_path / "b", images, p, loss="l1+rank")
    c = fr.write_round(tmp_path / "c", images, p, hyper_input="multiscale")
    runs, base = load_runs([a, b], baseline=b)
    assert base.path == b and [r.path for r in runs] == [b, a]
    runs, base = load_runs([a, b], baseline=c)
    assert base.path == c and len(runs) == 3


def test_metrics_are_recomputed_from_predictions_and_aggregated(tmp_path, images):
    preds = [fr.predictor(images, seed=k) for k in range(3)]
    run = load_run(fr.write_multi_round(tmp_path / "m", [(images, p) for p in preds]))
    run.label = "m"
    per_round = round_metrics([run])
    expected = [metrics.srcc(p, images["mos"]) for p in preds]
    assert np.allclose(per_round["srcc"], expected)
    summary = aggregate_rounds(per_round, ("run", "dataset"))
    row = summary.iloc[0]
    assert row["rounds"] == 3 and row["n"] == len(images)
    assert row["srcc"] == pytest.approx(np.median(expected))
    assert row["srcc_mean"] == pytest.approx(np.mean(expected))
    assert row["srcc_std"] == pytest.approx(np.std(expected, ddof=1))


def test_train_and_val_rows_never_count_as_test(tmp_path, images):
    folder = fr.write_round(tmp_path / "r", images, fr.predictor(images))
    preds = pd.read_csv(folder / "predictions.csv")
    leak = preds.iloc[:10].assign(subset="val", name=lambda f: "v_" + f["name"])
    pd.concat([preds, leak]).to_csv(folder / "predictions.csv", index=False)
    assert len(load_run(folder).rounds[0].predictions) == len(images)


def test_validation_takes_the_best_srcc_epoch(tmp_path, images):
    run = load_run(fr.write_round(tmp_path / "r", images, fr.predictor(images),
                                  val_srcc=[0.5, 0.9, 0.7]))
    run.label = "r"
    val = validation_results([run]).iloc[0]
    assert val["best_epoch"] == 2 and val["val_srcc"] == 0.9
    assert val["val_plcc"] == pytest.approx(0.88)  # PLCC at the same epoch, not its own max


def test_vectorised_metrics_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    pred = np.round(rng.normal(size=(5, 40)), 1)  # many ties
    mos = np.round(rng.normal(size=(5, 40)), 1)
    for name in ("srcc", "plcc", "rmse", "krcc"):
        fn = getattr(metrics, name)
        assert np.allclose(_metric_rows(pred, mos, name), [fn(p, y) for p, y in zip(pred, mos)])


def test_one_round_is_exactly_metrics_paired_bootstrap(images):
    mos = images["mos"].to_numpy()
    a, b = fr.predictor(images), fr.predictor(images, model_error=8, seed=1)
    got = paired_bootstrap_rounds([(mos, a, b)], "srcc", n_boot=N_BOOT, seed=3)
    assert got == metrics.paired_bootstrap(a, b, mos, "srcc", n_boot=N_BOOT, seed=3)


def test_multi_round_difference_is_the_mean_of_round_differences(images):
    mos = images["mos"].to_numpy()
    strata = [(mos, fr.predictor(images, seed=k), fr.predictor(images, 6, seed=10 + k))
              for k in range(3)]
    got = paired_bootstrap_rounds(strata, "plcc", n_boot=N_BOOT)
    diffs = [metrics.plcc(b, y) - metrics.plcc(a, y) for y, a, b in strata]
    assert got["diff"] == pytest.approx(np.mean(diffs))
    assert got["ci_low"] < got["diff"] < got["ci_high"] and got["significant"]


def test_rounds_that_disagree_cannot_support_a_difference(images):
    """Better by 0.07 in one round, worse by 0.01 in the other: resampling rounds as well
    as images keeps the interval across 0 (training randomness is part of the answer)."""
    mos = images["mos"].to_numpy()
    better = (mos, fr.predictor(images, 14, seed=1), fr.predictor(images, 4, seed=2))
    worse = (mos, fr.predictor(images, 6, seed=3), fr.predictor(images, 7, seed=4))
    assert paired_bootstrap_rounds([better], n_boot=N_BOOT)["significant"]
    both = paired_bootstrap_rounds([better, worse], n_boot=N_BOOT)
    assert both["diff"] > 0 and not both["significant"]


def _runs(tmp_path, images, variant_pred, rounds=1, **variant_kwargs):
    base_preds = [fr.predictor(images, seed=k) for k in range(rounds)]
    a = fr.write_multi_round(tmp_path / "base", [(images, p) for p in base_preds])
    variants = [(images, variant_pred(p, k)) for k, p in enumerate(base_preds)]
    b = fr.write_multi_round(tmp_path / "var", variants, **variant_kwargs)
    return load_runs([a, b])


def test_same_model_rerun_with_another_seed_is_not_significant(tmp_path, images):
    """The same predictor plus independent small noise: no difference these data support."""
    runs, base = _runs(tmp_path, images, lambda p, k: fr.rerun(p, seed=k), rounds=1, seed=1)
    paired = paired_comparisons(runs, base, ("srcc", "plcc"), n_boot=N_BOOT)
    assert list(paired["significance"]) == ["not significant"] * 2
    assert (paired["ci_low"] < 0).all() and (paired["ci_high"] > 0).all()
    assert (paired["n_images"] == len(images)).all()


def test_seed_reruns_are_rarely_significant_over_many_draws(images):
    """Calibration: over 10 independent re-runs (3 rounds each), at most 2 read significant
    (a 95% interval should exclude 0 about 5% of the time)."""
    mos = images["mos"].to_numpy()
    hits = 0
    for draw in range(10):
        strata = []
        for k in range(3):
            p = fr.predictor(images, seed=100 * draw + k)
            strata.append((mos, fr.rerun(p, seed=2 * (100 * draw + k)),
                           fr.rerun(p, seed=2 * (100 * draw + k) + 1)))
        hits += paired_bootstrap_rounds(strata, "srcc", n_boot=N_BOOT, seed=draw)["significant"]
    assert hits <= 2


def test_clearly_better_variant_is_significant(tmp_path, images):
    mos = images["mos"].to_numpy()

    def better(p, k):  # the same errors, shrunk to 30%
        return mos + 0.3 * (p - mos)

    runs, base = _runs(tmp_path, images, better, rounds=2, hyper_input="multiscale")
    paired = paired_comparisons(runs, base, ("srcc",), n_boot=N_BOOT)
    row = paired.iloc[0]
    assert row["significance"] == "significant" and row["diff"] > 0 and row["rounds"] == 2


def test_disjoint_test_images_are_not_comparable(tmp_path, images):
    other = fr.make_images(prefix="other")
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    b = fr.write_round(tmp_path / "b", other, fr.predictor(other), loss="l1+rank")
    runs, base = load_runs([a, b])
    paired = paired_comparisons(runs, base, ("srcc",), n_boot=N_BOOT)
    assert paired.iloc[0]["significance"] == "not comparable"
    assert np.isnan(paired.iloc[0]["diff"])


def test_partial_overlap_uses_shared_images_and_says_so(tmp_path, images):
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    part = images.iloc[:80]
    b = fr.write_round(tmp_path / "b", part, fr.predictor(part, seed=4), loss="l1+rank")
    runs, base = load_runs([a, b])
    aligned = align(base, runs[1], "synthetic")
    assert aligned.n_images == 80 and "partly overlap" in aligned.note


def test_rounds_pair_by_number(tmp_path, images):
    preds = [fr.predictor(images, seed=k) for k in range(3)]
    a = fr.write_multi_round(tmp_path / "a", [(images, p) for p in preds])
    b = fr.write_multi_round(tmp_path / "b", [(images, p) for p in preds[:2]], loss="l1+rank")
    runs, base = load_runs([a, b])
    aligned = align(base, runs[1], "synthetic")
    assert aligned.rounds == [0, 1]
    for (mos, pa, pb), k in zip(aligned.strata, aligned.rounds):
        assert np.allclose(pa, pb)  # round k of one with round k of the other


def _summary(label="test_resnet/last/l1", srcc=0.9, plcc=0.88):
    return pd.DataFrame({"run": [label], "dataset": ["synthetic"], "srcc": [srcc], "plcc": [plcc]})


def test_gate_passes_on_equal_baseline_and_names_the_metric_when_worse(tmp_path):
    summary = _summary()
    summary.to_csv(tmp_path / "equal.csv", index=False)
    ok = check_gate(summary, tmp_path / "equal.csv", ("srcc", "plcc"), 0.01)
    assert (ok["status"] == "ok").all() and len(ok) == 2
    _summary(srcc=0.95).to_csv(tmp_path / "higher.csv", index=False)
    gate = check_gate(summary, tmp_path / "higher.csv", ("srcc", "plcc"), 0.01)
    failed = gate[gate["status"] != "ok"]
    assert list(failed["metric"]) == ["srcc"]
    msg = gate_message(failed)
    assert "srcc of test_resnet/last/l1 on synthetic" in msg and "0.0500 below" in msg
    # within tolerance: 0.005 below passes
    _summary(srcc=0.905).to_csv(tmp_path / "close.csv", index=False)
    assert (check_gate(summary, tmp_path / "close.csv", ("srcc",), 0.01)["status"] == "ok").all()


def test_gate_fails_on_missing_run_and_rejects_bad_files(tmp_path):
    _summary(label="other").to_csv(tmp_path / "b.csv", index=False)
    gate = check_gate(_summary(), tmp_path / "b.csv", ("srcc",), 0.01)
    assert list(gate["status"]) == ["missing"]
    pd.DataFrame({"run": ["x"], "dataset": ["y"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(IqabenchError, match="lacks column"):
        check_gate(_summary(), tmp_path / "bad.csv", ("srcc",), 0.01)


def test_compare_refuses_a_non_empty_out_folder(tmp_path, images):
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(IqabenchError, match="not empty"):
        compare([a], out=tmp_path / "out")


def test_pca_recovers_the_main_directions():
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(0, 10, 200), rng.normal(0, 3, 200), rng.normal(0, 0.1, (200, 5))]
    coords, share = pca_2d(x)
    assert coords.shape == (200, 2)
    assert abs(np.corrcoef(coords[:, 0], x[:, 0])[0, 1]) > 0.99
    assert share[0] > share[1] > 0 and share.sum() <= 1


def test_separation_ratio_grows_with_cluster_distance():
    rng = np.random.default_rng(0)
    groups = ["a"] * 50 + ["b"] * 50
    near = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(0.5, 1, (50, 2))]
    far = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))]
    assert separation_ratio(far, groups) > 10 * separation_ratio(near, groups)
    assert np.isnan(separation_ratio(far, ["a"] * 100))


def test_overwrite_removes_only_the_previous_compares_own_files(tmp_path, images):
    a = fr.write_round(tmp_path / "a", images, fr.predictor(images))
    b = fr.write_round(tmp_path / "b", images, fr.predictor(images, seed=1), loss="l1+rank")
    out = tmp_path / "out"
    compare([a, b], out=out, n_boot=100)
    first = {f.name for f in out.iterdir()}
    b_files = {name for name in first if "rank" in name and name.endswith(".png")}
    assert b_files, first  # the second run has plots of its own
    (out / "notes.md").write_text("the user's own file")
    compare([a], out=out, n_boot=100, overwrite=True)
    second = {f.name for f in out.iterdir()}
    assert not b_files & second  # plots of the run no longer compared are gone
    assert "notes.md" in second and "report.md" in second
    assert (out / ".iqabench-compare-files").read_text().split() == sorted(second - {
        "notes.md", ".iqabench-compare-files"})
