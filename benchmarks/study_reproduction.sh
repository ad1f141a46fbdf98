#!/usr/bin/env bash
# Does a clean clone reproduce the study? Clones the repository's HEAD into a new folder,
# installs it into a fresh Python 3.11 virtual environment (pip install -e ".[lite]"), runs
# `STAGES=pair bash benchmarks/agiqa3k_study.sh` there with the same settings (EPOCHS, CROPS,
# ROUNDS, ... from the environment, as for the study) and stops it once the baseline's round 0
# has finished (one Lite0 round, about 25 minutes on a 2-core CPU). Then compares that round,
# byte for byte, with the same round of the study's work folder and writes OUT:
#   clean_clone_lite0_baseline_round_00/  the clean clone's config, split, log, test metrics,
#                                         predictions and environment (commit, versions, machine)
#   comparison.txt                        one line per file: identical, or DIFFERS
# Exit status 0 when every compared file is identical (config.yaml: every setting but the
# locations; log.csv: every column but the wall-clock ones), 1 otherwise.
# A CLONE_DIR whose round 0 has already finished is compared again without training.
# Usage: bash benchmarks/study_reproduction.sh [DATA_ROOT] [STUDY_WORK] [OUT] [CLONE_DIR]
main() {
  set -euo pipefail
  local here root study out clone
  here=$(pwd)
  root=$(realpath "${1:-../shared/data/agiqa3k}")
  study=$(realpath "${2:-runs/study}")
  out=${3:-results/agiqa3k_study_reproduction}
  clone=${4:-$(mktemp -d)/iqabench}
  local mine="$study/lite0_baseline/round_00"
  [ -f "$mine/test_metrics.csv" ] || { echo "error: $mine: no finished round to compare with" >&2; exit 2; }
  [ -e "$out" ] && { echo "error: $out exists; remove it or give another OUT" >&2; exit 2; }
  local theirs="$clone/runs/study/lite0_baseline/round_00"
  if [ -f "$theirs/test_metrics.csv" ]; then
    echo "$clone: its round 0 has finished; comparing it (nothing trained)"
  elif [ -e "$clone" ]; then
    echo "error: $clone exists without a finished round; give a new folder" >&2; exit 2
  else
    git clone -q "$here" "$clone"
    echo "clean clone of $(git -C "$clone" rev-parse HEAD) in $clone"
    (cd "$clone" && python3.11 -m venv .venv && .venv/bin/pip install -q -e ".[lite]")
    (cd "$clone" && . .venv/bin/activate && exec setsid env STAGES=pair \
       bash benchmarks/agiqa3k_study.sh "$root" runs/study > "$clone/study.log" 2>&1) &
    local pid=$!
    while kill -0 "$pid" 2> /dev/null && [ ! -f "$theirs/test_metrics.csv" ]; do sleep 20; done
    sleep 5  # the round's last files, written just after test_metrics.csv
    kill -- "-$pid" 2> /dev/null || true  # the pair stage's fp32 round is not needed
    wait "$pid" 2> /dev/null || true
    [ -f "$theirs/test_metrics.csv" ] || { echo "error: the clean clone's study stopped early: $clone/study.log" >&2; exit 1; }
  fi

  mkdir -p "$out/clean_clone_lite0_baseline_round_00"
  cp "$theirs"/{config.yaml,split.csv,log.csv,test_metrics.csv,predictions.csv,environment.json} \
     "$out/clean_clone_lite0_baseline_round_00/"
  local same=0 f where keep
  # verdict NAME WHAT_SAME A B: "NAME: WHAT_SAME" when A and B have the same bytes, else DIFFERS
  verdict() { if cmp -s "$3" "$4"; then echo "$1: $2"; else echo "$1: DIFFERS"; same=1; fi; }
  where='^\(root\|weights\|cache_dir\|out\):'  # config.yaml's locations, not settings
  keep=$(head -1 "$mine/log.csv" | tr ',' '\n' | grep -nvx 'seconds\|patches_per_s' | cut -d: -f1 | paste -sd,)
  {
    echo "# $clone (clean clone) against $mine, compared $(date -u +%FT%TZ)"
    echo "# command: bash benchmarks/study_reproduction.sh $*"
    python3 - "$theirs/environment.json" "$mine/environment.json" <<'PY'
import json, sys
for who, path in zip(("clean clone", "study"), sys.argv[1:]):
    first = json.load(open(path))[0]
    print(f"# {who}: started {first['started']}, commit {first['commit']}, {first['cpu']} "
          f"({first['cpu_count']} cores), gpu {first['gpu']}, torch {first['torch']}, "
          f"timm {first['timm']}")
PY
    verdict config.yaml "identical settings (locations aside)" \
      <(grep -v "$where" "$theirs/config.yaml") <(grep -v "$where" "$mine/config.yaml")
    verdict lite0.pth "identical bytes (the converted ImageNet weights)" \
      "$clone/runs/study/lite0.pth" "$study/lite0.pth"
    for f in split.csv test_metrics.csv predictions.csv; do
      verdict "$f" "identical bytes" "$theirs/$f" "$mine/$f"
    done
    verdict log.csv "identical but for the wall-clock columns (seconds, patches_per_s)" \
      <(cut -d, -f"$keep" "$theirs/log.csv") <(cut -d, -f"$keep" "$mine/log.csv")
  } > "$out/comparison.txt"
  cat "$out/comparison.txt"
  return "$same"
}
main "$@"; exit $?
