#!/usr/bin/env bash
# The foundation issue's acceptance run: MiniLM-L6 fine-tuned on the first 2,000 SST-2 sentences for one
# epoch with every other option at its default; records copied here.
# Usage (from the repository root, after `make install`): bash results/sst2_teacher_subset/run.sh [WORK_DIR]
set -euo pipefail
work=${1:-runs/sst2_teacher_subset}
here=$(cd "$(dirname "$0")" && pwd)
export HF_HUB_OFFLINE=1
mkdir -p "$(dirname "$work")"
/usr/bin/time -f "%e" -o "$work.seconds" .venv/bin/bert-emd finetune --model minilm-l6 --task sst2 \
    --data-dir ../shared/glue --max-train-samples 2000 --epochs 1 --output "$work" || exit
cp "$work/eval_results.json" "$work/run_config.json" "$here/"
cp "$work.seconds" "$here/wall_clock.seconds"
