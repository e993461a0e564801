#!/usr/bin/env bash
# Speed of the GLUE table's shapes as deployed: the MiniLM-L6 teacher and one 2-layer and one 3-layer student,
# PyTorch fp32 and ONNX Runtime int8 (exported and quantised by the benchmark), measured in turn in one run.
# Latency does not depend on the weights, so any finished student of each depth stands for its rows.
# Usage (repository root, after `make install`, with the experiment's models in WORK, default runs/glue_table):
#   bash results/glue_table/deploy_speed.sh [WORK]
# Writes results/glue_table/deploy_speed.json, which results/summary.py reads.
set -euo pipefail
work=${1:-runs/glue_table}
here=$(cd "$(dirname "$0")" && pwd)
export HF_HUB_OFFLINE=1
first() { for dir in "$@"; do [ -f "$dir/config.json" ] && { echo "$dir"; return; }; done; echo "no model among: $*" >&2; exit 2; }
teacher=$(first "$work"/teachers/*)
student2=$(first "$work"/*/*-L2*/seed*)
student3=$(first "$work"/*/*-L3*/seed*)
echo "teacher $teacher; 2 layers $student2; 3 layers $student3"
.venv/bin/bert-emd benchmark --model "$teacher" --model "$student2" --model "$student3" \
    --backends torch-fp32,ort-int8 --batch-sizes 1,32 --lengths 128 --threads 2 --repeats 10 --warmup 3 \
    --output "$here/deploy_speed.json"
