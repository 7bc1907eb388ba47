#!/usr/bin/env bash
# Distillation-step benchmark: ours (TF/Keras) interleaved with its peers, so
# that every ratio comes from the same stretch of machine time.
#
#   pip install -e .[bench]                                # torch, transformers, textbrewer
#   REPEATS=2 OUT=/tmp/distill_bench bash benchmarks/run_distill_bench.sh
#   REPEATS=1 bash benchmarks/run_distill_bench.sh minilm_3L192     # one config
#   THREADS=1 bash benchmarks/run_distill_bench.sh     # every framework on one thread
#
# Per repeat and config, one after the other: PyTorch + transformers float32
# (torch_distill_step.py), ours float32, ours bfloat16 (Keras
# mixed_bfloat16), PyTorch under torch.autocast(bfloat16), TextBrewer's
# GeneralDistiller (textbrewer_step.py; TEXTBREWER=0 skips it). One JSON line
# per run is appended to $OUT/<who>_<config>_<dtype>.jsonl; the table comes
# from `distill_speed.py --compare`. Before starting, it waits (up to
# MAX_WAIT_S) for the 1-minute load average to fall below MAX_LOAD: the 2
# cores are shared. THREADS (default: the frameworks' own, 2 here) sets the
# threads of every run alike: with other jobs on the machine, one thread each
# keeps a descheduled OpenMP thread from stalling torch's parallel regions.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PY:-$ROOT/.venv/bin/python}"
OUT="${OUT:-/tmp/distill_bench}"
REPEATS="${REPEATS:-3}"
MAX_LOAD="${MAX_LOAD:-1.5}"
MAX_WAIT_S="${MAX_WAIT_S:-1500}"
TF_FLAGS="${TF_FLAGS---matmul-peak}"   # set to "" to skip the peak
STEP_ARGS="${STEP_ARGS:-}"   # e.g. "--steps 1 --warmup 1" for a smoke test
OUR_THREADS="" PEER_THREADS=""
if [ -n "${THREADS:-}" ]; then
  OUR_THREADS="--intra-op-threads $THREADS --inter-op-threads $THREADS"
  PEER_THREADS="--threads $THREADS"
fi
export TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$OUT"

declare -A PEER_ARGS=(
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

run() {  # run <jsonl name> <script> <args...>
  local name="$1" script="$2"; shift 2
  echo "[$(date +%T)] load $(cut -d' ' -f1 /proc/loadavg): $name" >&2
  # shellcheck disable=SC2086
  "$PY" "$HERE/$script" "$@" $STEP_ARGS 2>>"$OUT/$name.stderr" | grep '^{' >> "$OUT/$name.jsonl"
}

for r in $(seq 1 "$REPEATS"); do
  for c in "${CONFIGS[@]}"; do
    # shellcheck disable=SC2086
    run "torch_${c}_fp32" torch_distill_step.py ${PEER_ARGS[$c]} $PEER_THREADS
    # shellcheck disable=SC2086
    run "tf_${c}_fp32" distill_speed.py ${OUR_ARGS[$c]} $TF_FLAGS $OUR_THREADS
    # shellcheck disable=SC2086
    run "tf_${c}_bf16" distill_speed.py ${OUR_ARGS[$c]} --dtype bfloat16 $TF_FLAGS $OUR_THREADS
    # shellcheck disable=SC2086
    run "torch_${c}_bf16" torch_distill_step.py ${PEER_ARGS[$c]} --dtype bfloat16 $PEER_THREADS
    if [ "${TEXTBREWER:-1}" = 1 ]; then
      # shellcheck disable=SC2086
      run "textbrewer_${c}_fp32" textbrewer_step.py ${PEER_ARGS[$c]} $PEER_THREADS
    fi
  done
done

FILES=()
for c in "${CONFIGS[@]}"; do
  for f in "tf_${c}_fp32" "torch_${c}_fp32" "textbrewer_${c}_fp32" "tf_${c}_bf16" "torch_${c}_bf16"; do
    [ -s "$OUT/$f.jsonl" ] && FILES+=("$OUT/$f.jsonl")
  done
done
"$PY" "$HERE/distill_speed.py" --compare "${FILES[@]}"
