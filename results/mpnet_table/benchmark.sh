#!/bin/bash
# The MPNet table's benchmark line: the MPNet-12 MRPC teacher against its 4-layer EMD student (experiments/mpnet_table.yaml)
# and a 6-layer student of it (weights from a 16-example smoke distillation: latency does not depend on them),
# PyTorch fp32 and ONNX Runtime fp32 / int8, the models measured in turn in one run, 2 threads, nothing else running.
#   WORK=/path/to/work_dir bash results/mpnet_table/benchmark.sh
set -euo pipefail
WORK=${WORK:-runs}
T=$WORK/mpnet_table/teachers/mrpc
S6=$WORK/mpnet_table/mrpc/latency-L6
[ -f "$S6/config.json" ] || .venv/bin/bert-emd distill --teacher "$T" --task mrpc --data-dir ../shared/glue \
    --student-layers 6 --max-train-samples 16 --max-eval-samples 16 --epochs 1 --batch-size 8 --output "$S6"
.venv/bin/bert-emd benchmark --model "$T" --model "$WORK/mpnet_table/mrpc/emd-L4/seed1" --model "$S6" \
    --backends torch-fp32,ort-fp32,ort-int8 --batch-sizes 1,8 --lengths 128 --threads 2 --repeats 5 \
    --output results/mpnet_table/benchmark.json
