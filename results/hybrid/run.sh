#!/usr/bin/env bash
# Regenerates this folder: LadaBERT-style hybrid compression of the MiniLM-L6 teachers of the GLUE table
# (runs/glue_table/teachers/TASK) on SST-2, MRPC and RTE at encoder compression ratios 2, 5 and 10:
# 3 steps, half the compression (in log terms) by SVD factorisation and half by global magnitude pruning
# of all attention and feed-forward Linear layers, KD (soft cross-entropy + hidden-state MSE) after each
# step; then teacher, compressed models and the table's EMD students timed side by side (PyTorch fp32,
# 2 threads) and a summary.
# KD budget per step: 1 epoch on MRPC and RTE; a tenth of an epoch (6.7k sentences) on SST-2.
# Usage (from the repository root, after `make install`): bash results/hybrid/run.sh [TASK ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=.venv/bin/bert-emd
export HF_HUB_OFFLINE=1
tasks=${*:-"sst2 mrpc rte"}
for task in $tasks; do
    teacher=runs/glue_table/teachers/$task
    [ -f "$teacher/eval_results.json" ] || { echo "no teacher in $teacher: run the GLUE table first"; exit 1; }
    epochs=1; [ "$task" = sst2 ] && epochs=0.1
    models=("$teacher")
    for ratio in 2 5 10; do
        work=runs/hybrid/$task/ratio$ratio
        record=$here/$task/ratio$ratio
        if [ ! -f "$work/hybrid_results.json" ]; then
            $bin hybrid --teacher "$teacher" --task "$task" --data-dir ../shared/glue --target-ratio $ratio \
                --steps 3 --prune-share 0.5 --hidden-loss --epochs $epochs --batch-size 16 --learning-rate 5e-5 \
                --seed 1 --output "$work"
        fi
        mkdir -p "$record"
        cp "$work"/hybrid_results.json "$work"/run_config.json "$work"/hybrid.json "$record/"
        models+=("$work")
    done
    # the GLUE table's BERT-EMD students of this task (seed 1), timed in the same run
    for student in runs/glue_table/$task/emd-L2/seed1 runs/glue_table/$task/emd-L3/seed1; do
        [ -f "$student/config.json" ] && models+=("$student")
    done
    args=(); for model in "${models[@]}"; do args+=(--model "$model"); done
    $bin benchmark "${args[@]}" --backends torch-fp32 --batch-sizes 1,32 --lengths 128 --threads 2 \
        --repeats 10 --output "$here/$task/benchmark.json"
done
.venv/bin/python -m bert_emd.hybrid.summary "$here"
