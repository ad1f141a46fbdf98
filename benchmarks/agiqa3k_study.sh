#!/usr/bin/env bash
# The enhancement study on AGIQA-3K (real human MOS), splits by prompt, ImageNet-pretrained
# tf_efficientnet_lite0 converted from the PyPI wheel. Sized for a 2-core CPU:
# EPOCHS/ROUNDS/EVAL_CROPS can be raised on a GPU (e.g. EPOCHS=16 ROUNDS=10 EVAL_CROPS=25).
#   1. alpha sweep (0.1, 0.5, 1, 2) for L1 + alpha*rank on round 0, chosen on validation SRCC;
#   2. baseline, +rank(alpha*), +multiscale, +both, ROUNDS seeded rounds each;
#   3. iqabench compare -> results/agiqa3k_study/;
#   4. the baseline's round-0 checkpoint scored in fp32, bf16 and bf16 compiled on its test
#      images with PRECISION_CROPS grid crops (python -m benchmarks.eval_precision) -> precision/.
# Usage: bash benchmarks/agiqa3k_study.sh [DATA_ROOT] [WORK_DIR]
set -euo pipefail
ROOT=${1:-../shared/data/agiqa3k}
WORK=${2:-runs/study}
OUT=${OUT:-results/agiqa3k_study}
EPOCHS=${EPOCHS:-1}
ROUNDS=${ROUNDS:-3}
EVAL_CROPS=${EVAL_CROPS:-1}   # 1 = the center crop; 25 = the 5x5 grid
VAL_CROPS=${VAL_CROPS:-1}
PRECISION_CROPS=${PRECISION_CROPS:-25}
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export HF_HUB_OFFLINE=1
mkdir -p "$WORK"
[ -f "$WORK/lite0.pth" ] || iqabench weights convert-lite 0 "$WORK/lite0.pth"
common=(--dataset agiqa3k --root "$ROOT" --backbone tf_efficientnet_lite0 --weights "$WORK/lite0.pth"
        --epochs "$EPOCHS" --eval-crops "$EVAL_CROPS" --val-crops "$VAL_CROPS" --cache-dir "$WORK/cache" --seed 0 --quiet)
for a in 0.1 0.5 1 2; do
  [ -f "$WORK/alpha_$a/test_metrics.csv" ] || \
    iqabench train "${common[@]}" --loss l1+rank --alpha "$a" --out "$WORK/alpha_$a" --force
done
ALPHA=$(python - "$WORK" <<'PY'
import sys, pandas as pd
best = {a: pd.read_csv(f"{sys.argv[1]}/alpha_{a}/log.csv")["val_srcc"].max() for a in ("0.1", "0.5", "1", "2")}
print(max(best, key=best.get))
PY
)
echo "alpha chosen on validation: $ALPHA"
run() { [ -f "$WORK/$1/summary.csv" ] || iqabench train "${common[@]}" --rounds "$ROUNDS" --out "$WORK/$1" --force "${@:2}"; }
run baseline --loss l1 --hyper-input last
run rank --loss l1+rank --alpha "$ALPHA" --hyper-input last
run multiscale --loss l1 --hyper-input multiscale
run both --loss l1+rank --alpha "$ALPHA" --hyper-input multiscale
iqabench compare "$WORK/baseline" "$WORK/rank" "$WORK/multiscale" "$WORK/both" \
  "$WORK/alpha_0.1" "$WORK/alpha_0.5" "$WORK/alpha_1" "$WORK/alpha_2" \
  --baseline-run "$WORK/baseline" --out "$OUT" --force
python -m benchmarks.eval_precision --checkpoint "$WORK/baseline/round_00/best.pt" --dataset agiqa3k \
  --root "$ROOT" --eval-crops "$PRECISION_CROPS" --out "$OUT/precision" --force
{
  echo "# Provenance"
  echo
  echo "- command: \`EPOCHS=$EPOCHS ROUNDS=$ROUNDS EVAL_CROPS=$EVAL_CROPS VAL_CROPS=$VAL_CROPS PRECISION_CROPS=$PRECISION_CROPS bash benchmarks/agiqa3k_study.sh $ROOT $WORK\`"
  echo "- what ran: \`iqabench train ${common[*]}\` with, per variant: alpha_A \`--loss l1+rank --alpha A\` (1 round);"
  echo "  baseline \`--loss l1\`; rank \`--loss l1+rank --alpha $ALPHA\`; multiscale \`--loss l1 --hyper-input multiscale\`;"
  echo "  both \`--loss l1+rank --alpha $ALPHA --hyper-input multiscale\` ($ROUNDS rounds each); then \`iqabench compare\` and"
  echo "  \`python -m benchmarks.eval_precision\` (see the script)"
  echo "- alpha chosen on validation SRCC (round 0): $ALPHA"
  echo "- commit: $COMMIT (at the start of the study)"
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; no GPU"
  echo "- started: $STARTED; finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$OUT/PROVENANCE.md"
