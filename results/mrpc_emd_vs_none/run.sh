#!/usr/bin/env bash
# Regenerates this folder: a MiniLM-L6 teacher fine-tuned on MRPC, then 2-layer students distilled with
# --mapping emd and --mapping none (everything else at its default), and their records copied here.
# Usage (from the repository root, after `make install`): bash results/mrpc_emd_vs_none/run.sh [WORK_DIR]
set -euo pipefail
work=${1:-runs/mrpc_emd_vs_none}
here=$(cd "$(dirname "$0")" && pwd)
bin=.venv/bin/bert-emd
export HF_HUB_OFFLINE=1
start=$(date +%s)
if [ ! -f "$work/teacher/eval_results.json" ]; then  # a finished teacher is reused
    mkdir -p "$work"
    /usr/bin/time -f "%e" -o "$work/teacher.seconds" \
        $bin finetune --model minilm-l6 --task mrpc --data-dir ../shared/glue --epochs 3 --batch-size 16 \
        --learning-rate 1e-4 --output "$work/teacher"
fi
for mapping in emd none; do
    /usr/bin/time -f "%e" -o "$work/$mapping.seconds" \
        $bin distill --teacher "$work/teacher" --task mrpc --data-dir ../shared/glue --student-layers 2 \
        --mapping "$mapping" --output "$work/$mapping"
done
# one more EMD run with a 200x larger layer-term weight (a lead for the results table, not a default)
/usr/bin/time -f "%e" -o "$work/emd_beta1.seconds" \
    $bin distill --teacher "$work/teacher" --task mrpc --data-dir ../shared/glue --student-layers 2 \
    --mapping emd --beta 1 --output "$work/emd_beta1"
mkdir -p "$here/teacher"
cp "$work/teacher/eval_results.json" "$work/teacher/run_config.json" "$here/teacher/"
[ -f "$work/teacher.seconds" ] && cp "$work/teacher.seconds" "$here/teacher/"  # absent when a teacher was reused
for mapping in emd none emd_beta1; do
    mkdir -p "$here/$mapping"
    cp "$work/$mapping/eval_results.json" "$work/$mapping/run_config.json" "$work/$mapping/distill_state.json" \
        "$work/$mapping.seconds" "$here/$mapping/"
done
echo "total wall-clock: $(( $(date +%s) - start )) s"
