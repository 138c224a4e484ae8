#!/usr/bin/env bash
# Run a sentiment-benchmark grid as N one-thread processes sharing one claim folder (each run is trained by one
# of them), e.g. on one GPU, where a single MiniLM process leaves most of the device idle.
#
#   WORKERS=12 bash benchmarks/parallel_grid.sh --max_length 128 --max_steps 600 --eval_steps 50 \
#       --early_stopping_patience 3 --min_steps 300 --train_sampling_strategy group_by_length --multi_source_pairs \
#       --methods none self_training fixmatch --results benchmarks/results/sentiment_converged_h200.jsonl \
#       --table benchmarks/results/sentiment_converged_h200.md
#
# WORKERS (default 4) processes; CLAIM_DIR (default: a fresh temporary folder); LOG_DIR (default: CLAIM_DIR/logs).
# A run that raises leaves its claim behind, so each worker retries with the next unclaimed run, up to 3 times.
set -u
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-4}
CLAIM_DIR=${CLAIM_DIR:-$(mktemp -d -t hfadapt-grid-XXXX)}
LOG_DIR=${LOG_DIR:-$CLAIM_DIR/logs}
PY=${PY:-python}
mkdir -p "$LOG_DIR"
export HFADAPT_NUM_THREADS=1 OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

worker() {
  for _ in 1 2 3; do
    "$PY" benchmarks/sentiment_benchmark.py "$@" --claim_dir "$CLAIM_DIR/claims" && return 0
  done
  return 1
}

pids=()
for i in $(seq 1 "$WORKERS"); do
  worker "$@" > "$LOG_DIR/worker$i.log" 2>&1 &
  pids+=($!)
  sleep 2  # staggered starts: the first ones tokenise while the later ones load
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
grep -h "seed .*: target" "$LOG_DIR"/worker*.log
echo "logs: $LOG_DIR"
exit $status
