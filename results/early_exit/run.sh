#!/usr/bin/env bash
# Regenerates this folder: MS-BERT early exit on SST-2, MRPC and RTE with the MiniLM-L6 teacher.
# For each task: both student designs (fastbert, ramp) x both targets (final, emd), each evaluated with
# entropy and top-K uncertainty over the default thresholds; then summary.md/json and per-task plots.
# The teachers are those of the GLUE table (runs/glue_table/teachers/TASK, `experiments/glue_table.yaml`);
# a missing one is fine-tuned here with the same settings. Exit-student training budget: 2 epochs on MRPC
# and RTE; on SST-2 (67k sentences, 2 CPU cores) one pass over its first 20,000 training sentences.
# Usage (from the repository root, after `make install`): bash results/early_exit/run.sh [TASK ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=.venv/bin/bert-emd
export HF_HUB_OFFLINE=1
tasks=${*:-"sst2 mrpc rte"}
for task in $tasks; do
    teacher=runs/glue_table/teachers/$task
    epochs=2; teacher_epochs=3; teacher_batch=16; subset=()
    if [ "$task" = sst2 ]; then epochs=1; teacher_epochs=1; teacher_batch=32; subset=(--max-train-samples 20000); fi
    if [ ! -f "$teacher/eval_results.json" ]; then
        $bin finetune --model minilm-l6 --task "$task" --data-dir ../shared/glue --epochs $teacher_epochs \
            --batch-size $teacher_batch --learning-rate 1e-4 --seed 42 --output "$teacher"
    fi
    for design in fastbert ramp; do
        for targets in final emd; do
            work=runs/early_exit/$task/$design-$targets
            record=$here/$task/$design-$targets
            if [ -f "$record/early_exit_curve.json" ]; then echo "done: $record"; continue; fi
            if [ ! -f "$work/early_exit_results.json" ]; then
                mkdir -p "$work"
                /usr/bin/time -f "%e" -o "$work.train_seconds" \
                    $bin early-exit train --teacher "$teacher" --task "$task" --data-dir ../shared/glue \
                    --student-design $design --targets $targets --epochs $epochs "${subset[@]}" --seed 1 \
                    --output "$work"
            fi
            $bin early-exit evaluate --model "$work" --task "$task" --data-dir ../shared/glue \
                --uncertainty entropy,topk --output "$work/early_exit_curve.json"
            mkdir -p "$record"
            cp "$work"/early_exit_results.json "$work"/run_config.json "$work"/early_exit.json \
                "$work"/early_exit_curve.json "$work"/early_exit_curve_run_config.json "$work"/early_exit_curve.png \
                "$record/"
            cp "$work.train_seconds" "$record/train_seconds.txt"
        done
    done
done
.venv/bin/python -m bert_emd.early_exit.summary "$here"
