#!/usr/bin/env bash
# Size and speed of the MRPC MiniLM-L6 teacher and its 2-layer BERT-EMD student (both made by
# results/mrpc_emd_vs_none/run.sh) on every backend, measured in turn in one run.
# Usage (repository root, after `make install`): bash results/deploy_benchmark/run.sh [WORK_DIR]
set -euo pipefail
work=${1:-runs/mrpc_emd_vs_none}
here=$(cd "$(dirname "$0")" && pwd)
export HF_HUB_OFFLINE=1
.venv/bin/bert-emd benchmark --model "$work/teacher" --model "$work/emd" --batch-sizes 1,32 --lengths 128 \
    --threads 2 --repeats 10 --warmup 3 --output "$here/benchmark.json"
# int8 (torchao) copy of the student and its MRPC dev metrics next to fp32
.venv/bin/bert-emd quantize --model "$work/emd" --output "$work/emd-int8" --task mrpc --data-dir ../shared/glue
cp "$work/emd-int8/eval_results.json" "$here/quantize_eval_results.json"
# ONNX fp32 + int8 of the student, checked against PyTorch on 64 MRPC dev pairs
.venv/bin/bert-emd export --model "$work/emd" --output "$work/emd-onnx" --int8 --task mrpc --data-dir ../shared/glue
cp "$work/emd-onnx/export_report.json" "$here/export_report.json"
