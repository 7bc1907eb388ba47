#!/usr/bin/env bash
# Distillation-step benchmark: ours (TF/Keras) interleaved with the PyTorch + HF
# reference, so that every ratio comes from the same stretch of machine time.
#
#   bash /work/shared/reference-bench/setup.sh            # reference venv at /tmp/ref/venv
#   REPEATS=3 OUT=/tmp/distill_bench bash benchmarks/run_distill_bench.sh
#   REPEATS=1 bash benchmarks/run_distill_bench.sh minilm_3L312   # one config
#
# Per repeat and config: reference fp32, ours fp32, ours bf16 (and, with
# TORCH_BF16=1, the reference under torch.autocast(bfloat16)). One JSON line
# per run is appended to $OUT/<name>.jsonl; the table comes from
# `distill_speed.py --compare`. Before starting, it waits (up to MAX_WAIT_S)
# for the 1-minute load average to fall below MAX_LOAD: the 2 cores are shared.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
REF="${REFERENCE_BENCH:-/work/shared/reference-bench}"
REF_PY="${BENCH_VENV:-/tmp/ref/venv}/bin/python"
PY="${PY:-$ROOT/.venv/bin/python}"
OUT="${OUT:-/tmp/distill_bench}"
REPEATS="${REPEATS:-3}"
MAX_LOAD="${MAX_LOAD:-1.5}"
MAX_WAIT_S="${MAX_WAIT_S:-1500}"
TF_FLAGS="${TF_FLAGS:---matmul-peak}"
STEP_ARGS="${STEP_ARGS:-}"   # e.g. "--steps 1 --warmup 1" for a smoke test
export TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$OUT"

declare -A REF_ARGS=(
  [minilm_3L312]=""
  [minilm_3L192]="--student-hidden 192"
  [bertbase_4L312]="--teacher bert-base --student-layers 4"
)
declare -A OUR_ARGS=(
  [minilm_3L312]="--student 3l-312"
  [minilm_3L192]="--student tinybert-3l-192d"
  [bertbase_4L312]="--teacher bert-base --student tinybert-4l-312d"
)
CONFIGS=(minilm_3L312 minilm_3L192 bertbase_4L312)
[ "$#" -gt 0 ] && CONFIGS=("$@")

waited=0
while awk -v max="$MAX_LOAD" '{exit !($1 >= max)}' /proc/loadavg; do
  if [ "$waited" -ge "$MAX_WAIT_S" ]; then
    echo "load still $(cut -d' ' -f1 /proc/loadavg) after ${waited}s: running anyway" >&2
    break
  fi
  sleep 30; waited=$((waited + 30))
done
echo "start: load $(cut -d' ' -f1-3 /proc/loadavg) after waiting ${waited}s" >&2

# The reference step under torch.autocast(bfloat16) (not part of the reference).
torch_bf16() {
  "$REF_PY" - "$@" <<EOF
import sys, torch
sys.path.insert(0, "$REF")
import torch_distill_step as ref
plain_step = ref.make_step
def autocast_step(*args, **kwargs):
    step = plain_step(*args, **kwargs)
    def run(*batch):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return step(*batch)
    return run
ref.make_step = autocast_step
ref.main(sys.argv[1:])
EOF
}

run() {  # run <jsonl name> <command...>
  local name="$1"; shift
  echo "[$(date +%T)] load $(cut -d' ' -f1 /proc/loadavg): $name" >&2
  "$@" 2>>"$OUT/$name.stderr" | grep '^{' >> "$OUT/$name.jsonl"
}

for r in $(seq 1 "$REPEATS"); do
  for c in "${CONFIGS[@]}"; do
    # shellcheck disable=SC2086
    run "distill_$c" "$REF_PY" "$REF/torch_distill_step.py" ${REF_ARGS[$c]} $STEP_ARGS
    # shellcheck disable=SC2086
    run "tf_distill_${c}_fp32" "$PY" "$HERE/distill_speed.py" ${OUR_ARGS[$c]} $TF_FLAGS $STEP_ARGS
    # shellcheck disable=SC2086
    run "tf_distill_${c}_bf16" "$PY" "$HERE/distill_speed.py" ${OUR_ARGS[$c]} --dtype bfloat16 $TF_FLAGS $STEP_ARGS
    if [ "${TORCH_BF16:-0}" = 1 ]; then
      # shellcheck disable=SC2086
      run "torchbf16_distill_$c" torch_bf16 ${REF_ARGS[$c]} $STEP_ARGS
    fi
  done
done

FILES=()
for c in "${CONFIGS[@]}"; do
  for f in "distill_$c" "torchbf16_distill_$c" "tf_distill_${c}_fp32" "tf_distill_${c}_bf16"; do
    [ -s "$OUT/$f.jsonl" ] && FILES+=("$OUT/$f.jsonl")
  done
done
"$PY" "$HERE/distill_speed.py" --compare "${FILES[@]}"
