#!/usr/bin/env bash
# Every GPU measurement and CUDA check of iqabench in one script, sized for one call on a
# lent GPU machine. On one H200: profile 156 s (at --budget-s 2), speed 142 s; the smoke's
# first CUDA epochs took 50-80 s each (its trainings now run at once).
#
#   bash benchmarks/gpu_suite.sh prepare [AGIQA3K_DIR]   # here, before sending the tree
#   bash benchmarks/gpu_suite.sh run OUT [PHASES]        # on the GPU machine
#
# prepare writes what the GPU machine cannot fetch into .gpu_data/ (git-ignored through
# .git/info/exclude): a 24 MiB AGIQA-3K subset of whole prompts, the converted
# ImageNet EfficientNet-Lite0 weights and the commit it was prepared at; and .whl/: wheels
# of the Python packages the GPU image may lack (pydantic, fvcore, thop, ...).
# run measures into OUT (PHASES, default "env profile speed smoke first"):
#   env      GPU, driver, CUDA, torch, commit, date -> OUT/environment.md
#   profile  `iqabench profile --device cuda`: ResNet-50, Swin-T (last and multiscale hyper
#            input) and EfficientNet-Lite0; fp32 and bf16; batch 1 and 64; 25 crops/image
#            -> OUT/profile/{fp32,bf16}_batch{1,64}/
#   speed    training and 25-crop evaluation throughput, iqabench vs the original code path,
#            ResNet-50, bf16 (evaluation compiled, crops cut from the uint8 cache inside
#            the timed pass) -> OUT/speed/
#   smoke    benchmarks/cuda_smoke.py: bf16 training on the subset, resume after SIGKILL,
#            eval reproducing training, eval --compile vs eager, torchrun DDP over nccl
#            -> OUT/smoke/
#   first    benchmarks/cuda_first_steps.py: what a fresh training process's first steps
#            cost (Lite0, bf16), cuDNN autotuning on and off -> OUT/first_steps/
# Backbone weights are random for profile and speed (cost does not depend on them); the
# smoke trains from the converted ImageNet Lite0 weights.
# DEVICE=cpu SMALL=1 runs every phase with tiny models and sizes: a check of this script on
# a machine without a GPU, not a measurement.
set -uo pipefail
MODE=${1:?usage: gpu_suite.sh prepare [AGIQA3K_DIR] | run OUT [PHASES]}
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE"

if [ "$MODE" = prepare ]; then
  set -e
  SRC=${2:-../shared/data/agiqa3k}
  mkdir -p .git/info
  for p in /.gpu_data/ /.whl/; do grep -qxF "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done
  rm -rf .gpu_data && mkdir -p .gpu_data
  python -m benchmarks.dataset_subset "$SRC" .gpu_data/agiqa3k --mib 24
  HF_HUB_OFFLINE=1 iqabench weights convert-lite 0 .gpu_data/lite0.pth
  git rev-parse HEAD > .gpu_data/COMMIT
  git status --porcelain -- iqabench benchmarks | grep -q . && echo "warning: uncommitted changes; the suite's files will name $(cat .gpu_data/COMMIT) only"
  rm -rf .whl && mkdir -p .whl
  plat="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
  ver() { python -c "import importlib.metadata as m; print(m.version('$1'))"; }
  pkgs=""
  for p in pydantic pydantic-core annotated-types typing-inspection typing-extensions yacs termcolor thop \
           openpyxl et-xmlfile xlrd timm typer click rich shellingham annotated-doc; do
    pkgs="$pkgs $p==$(ver $p)"
  done
  python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $plat -d .whl $pkgs
  python -m pip wheel -q --no-deps -w .whl "fvcore==$(ver fvcore)" "iopath==$(ver iopath)"  # sdists only
  du -sh .gpu_data .whl
  exit 0
fi

[ "$MODE" = run ] || { echo "gpu_suite.sh: unknown mode $MODE (prepare or run)" >&2; exit 2; }
OUT=${2:?usage: gpu_suite.sh run OUT [PHASES]}
PHASES=${3:-env profile speed smoke first}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
if [ "${SMALL:-0}" = 1 ]; then
  PROFILE_BACKBONES=(--backbone test_resnet --backbone test_efficientnet); SPEED_MODEL=test_resnet
  SPEED_SIZES=(--images 4 --eval-images 4 --train-epochs 1 --eval-passes 1 --batch-size 16 --eval-batch-size 25)
  SMOKE_SMALL=(--backbone test_resnet --limit 60 --input-size 64 --batch-size 12 --eval-batch-size 18)
  FIRST_SIZES=(--backbone test_efficientnet --input-size 64 --batch-size 4 --partial-batch 3 --score-batch 8 --steps 6)
  WEIGHTS=()
else
  PROFILE_BACKBONES=(--backbone resnet50 --backbone swin_tiny_patch4_window7_224 --backbone tf_efficientnet_lite0)
  SPEED_MODEL=resnet50
  SPEED_SIZES=(--images 96 --eval-images 96 --train-epochs 2 --eval-passes 2 --batch-size 96 --eval-batch-size 400)
  SMOKE_SMALL=()
  FIRST_SIZES=()
  WEIGHTS=(--weights .gpu_data/lite0.pth)
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
[ -f .gpu_data/COMMIT ] && export IQABENCH_COMMIT=${IQABENCH_COMMIT:-$(cat .gpu_data/COMMIT)}
if ! $PY -c "import pydantic, fvcore, thop, timm, typer" 2>/dev/null; then
  [ -d .whl ] || { echo "gpu_suite.sh: packages missing and no .whl/ (run prepare here first)" >&2; exit 2; }
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$HERE${PYTHONPATH:+:$PYTHONPATH}
iqabench() { $PY -m iqabench.cli.app "$@"; }
STATUS="$OUT/phases.tsv"
[ -f "$STATUS" ] || printf 'phase\texit\tseconds\tcommand\n' > "$STATUS"

phase() {  # phase NAME COMMAND...: run it, log to OUT/NAME.log, record exit and seconds
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name: $*" | tee -a "$OUT/suite.log"
  "$@" > "$OUT/$name.log" 2>&1
  local code=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$code" "$((SECONDS - start))" "$*" >> "$STATUS"
  echo "=== $name: exit $code in $((SECONDS - start)) s" | tee -a "$OUT/suite.log"
  tail -n 4 "$OUT/$name.log"
}

environment() {
  echo "# Environment of the GPU suite"; echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: ${IQABENCH_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
  echo "- command: bash benchmarks/gpu_suite.sh run $OUT \"$PHASES\""
  echo "- cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) ($(nproc) cores)"
  echo; echo '```'
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv
  $PY -c "import torch, timm, sys; print('python', sys.version.split()[0]); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version()); print('timm', timm.__version__); print('gpu', torch.cuda.get_device_name() if torch.cuda.is_available() else None, torch.cuda.get_device_capability() if torch.cuda.is_available() else None)"
  echo '```'
}

profiles() {
  local B=("${PROFILE_BACKBONES[@]}")
  local code=0
  for amp in none bf16; do
    local dtype=${amp/none/fp32}
    iqabench profile "${B[@]}" --hyper-input last --hyper-input multiscale --eval-crops 25 --device "$DEVICE" \
        --amp $amp --eval-batch-size 1 --budget-s 1 --out "$OUT/profile/${dtype}_batch1" --force || code=1
    iqabench profile "${B[@]}" --hyper-input last --eval-crops 25 --device "$DEVICE" \
        --amp $amp --eval-batch-size 64 --budget-s 1 --out "$OUT/profile/${dtype}_batch64" --force || code=1
  done
  return $code
}

for p in $PHASES; do
  case $p in
    env) environment > "$OUT/environment.md" 2>&1; cat "$OUT/environment.md" ;;
    profile) phase profile profiles ;;
    speed) phase speed $PY -m benchmarks.train_eval_speed --device "$DEVICE" --amp bf16 --compile-eval \
             --models $SPEED_MODEL --dataset agiqa3k --root .gpu_data/agiqa3k "${SPEED_SIZES[@]}" \
             --out "$OUT/speed" --force ;;
    smoke) rm -rf "$OUT/smoke"; phase smoke $PY -m benchmarks.cuda_smoke --root .gpu_data/agiqa3k \
             "${WEIGHTS[@]}" "${SMOKE_SMALL[@]}" --device "$DEVICE" --amp bf16 --out "$OUT/smoke" ;;
    first) phase first $PY -m benchmarks.cuda_first_steps --device "$DEVICE" --amp bf16 "${FIRST_SIZES[@]}" \
             --out "$OUT/first_steps" ;;
    *) echo "gpu_suite.sh: unknown phase $p" >&2; exit 2 ;;
  esac
done
column -t -s $'\t' "$STATUS" 2>/dev/null || cat "$STATUS"
