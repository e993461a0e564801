#!/usr/bin/env bash
# The compress reports under results/compress/: one command per task and target, on the bundled MiniLM-L6
# (fine-tuned by the first run of each task; the second target reuses that teacher), ONNX Runtime int8 against the
# fp32 teacher at batch 32 x 128, 2 threads; and the MPNet-12 MRPC teacher of experiments/recipe_mpnet.yaml
# (all-mpnet-base-v2 fine-tuned with the settings of results/recipe_mpnet/teachers/mrpc/run_config.json: `make
# mpnet`, then `.venv/bin/bert-emd finetune --model mpnet-base --task mrpc --data-dir ../shared/glue --output
# /work/runs/recipe_mpnet/teachers/mrpc --max-length 128 --learning-rate 2e-5 --epochs 2 --batch-size 16
# --eval-batch-size 64 --warmup 0.1 --lr-schedule linear --weight-decay 0.01 --seed 42 --save-steps 50`;
# MPNET_TEACHER names another folder). mpnet-mrpc-3x trains for 0.15 epochs over the augmented data instead of the recipe's 1: its 10-layer
# student costs about 10 s a step here at 2 threads (the dry run: 208 minutes for the full epoch), 0.15 is what fit
# the time this 2-core machine had for it. Run one at a time on an idle machine (the latency is measured).
#   experiments/compress_runs.sh [NAME ...]     # default: all, in this order; a finished one is reused
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/work/runs/compress}
GLUE=${GLUE:-../shared/glue}
run() {  # name, then compress options
    local name=$1; shift
    HF_HUB_OFFLINE=1 .venv/bin/bert-emd compress --data-dir "$GLUE" --output "$WORK/$name" \
        --records-dir "results/compress/$name" "$@"
}
declare -A RUNS=(
    [mrpc-2x]="--model minilm-l6 --task mrpc --target-speedup 2"
    [mrpc-3x]="--teacher $WORK/mrpc-2x/teacher --task mrpc --target-speedup 3"
    [rte-2x]="--model minilm-l6 --task rte --target-speedup 2"
    [rte-3x]="--teacher $WORK/rte-2x/teacher --task rte --target-speedup 3"
    [sst2-4k-2x]="--model minilm-l6 --task sst2 --max-train-samples 4000 --target-speedup 2"
    [sst2-4k-3x]="--teacher $WORK/sst2-4k-2x/teacher --task sst2 --max-train-samples 4000 --target-speedup 3"
    [stsb-2x]="--model minilm-l6 --task stsb --target-speedup 2"
    [stsb-3x]="--teacher $WORK/stsb-2x/teacher --task stsb --target-speedup 3"
    [mpnet-mrpc-3x]="--teacher ${MPNET_TEACHER:-/work/runs/recipe_mpnet/teachers/mrpc} --task mrpc --target-speedup 3 --epochs 0.15"
)
ORDER=(mrpc-2x mrpc-3x rte-2x rte-3x sst2-4k-2x sst2-4k-3x stsb-2x stsb-3x mpnet-mrpc-3x)
for name in "${@:-${ORDER[@]}}"; do
    # shellcheck disable=SC2086
    run "$name" ${RUNS[$name]} > "$WORK/$name.log" 2>&1
    echo "$name finished: $(date -u +%H:%M)"
done
