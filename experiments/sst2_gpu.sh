#!/usr/bin/env bash
# Builds the table of experiments/sst2_gpu.yaml on one GPU: seed 1's runner fine-tunes the teacher, then
# the runners of seeds 2 and 3 start beside it (each run is small next to the GPU), then the report.
# Finished runs are skipped, so it can be started again after an interruption.
#   bash experiments/sst2_gpu.sh [extra `bert-emd experiment` flags, e.g. --data-dir DIR]
set -euo pipefail
BERT_EMD=${BERT_EMD:-bert-emd}
CONFIG=experiments/sst2_gpu.yaml
TEACHER=runs/sst2_gpu/teachers/sst2/wall_clock.json

$BERT_EMD experiment --config "$CONFIG" --no-report --seeds 1 "$@" &
first=$!
while [ ! -f "$TEACHER" ]; do
    kill -0 "$first" 2>/dev/null || { wait "$first"; echo "seed 1 runner stopped before the teacher was saved" >&2; exit 1; }
    sleep 5
done
pids=("$first")
for seed in 2 3; do
    $BERT_EMD experiment --config "$CONFIG" --no-report --seeds "$seed" "$@" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
$BERT_EMD experiment --config "$CONFIG" --report-only "$@"
