#!/usr/bin/env bash
# The CoNLL-2003 table (results/conll2003/): the bundled MiniLM-L6 (uncased: CoNLL's capitalisation is lost to its
# tokenizer) fine-tuned as the tagger teacher, then 3- and 2-layer students by emd, skip and none, seed 1; dev and
# test entity F1 and loyalty of each student, and the latency of teacher and students (benchmark.json).
#   experiments/conll_table.sh [RUN ...]   # RUN: teacher, L3-emd, L3-skip, L3-none, L2-emd, L2-skip, L2-none,
#                                          # benchmark; default: all in this order. A finished run is skipped and an
#                                          # interrupted one resumes from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/work/runs/conll2003}
DATA=${DATA:-../shared/ner/conll2003}
RECORDS=results/conll2003
export HF_HUB_OFFLINE=1
BERT_EMD=.venv/bin/bert-emd
DATA_ARGS=(--task conll2003 --data-dir "$DATA" --max-length 128)
COMMON=("${DATA_ARGS[@]}" --seed 1)
mkdir -p "$WORK" "$RECORDS"

keep_records() {  # name: the run's results and resolved config, and its test-split scores
    local name=$1
    cp "$WORK/$name/eval_results.json" "$RECORDS/$name.json"
    cp "$WORK/$name/run_config.json" "$RECORDS/$name.run_config.json"
    [ -f "$RECORDS/$name.test.json" ] || $BERT_EMD evaluate --model "$WORK/$name" --teacher "$WORK/teacher" \
        "${DATA_ARGS[@]}" --split test --output "$RECORDS/$name.test.json"
}

run() {
    local name=$1
    if [ "$name" = benchmark ]; then
        $BERT_EMD benchmark --model "$WORK/teacher" --model "$WORK/L3-emd" --model "$WORK/L2-emd" --backends torch-fp32,ort-int8 \
            --batch-sizes 32 --lengths 128 --threads 2 --repeats 30 --output "$RECORDS/benchmark.json"
        return
    fi
    if [ -f "$WORK/$name/eval_results.json" ]; then
        echo "$name: finished already"
    elif [ "$name" = teacher ]; then
        $BERT_EMD finetune --model minilm-l6 "${COMMON[@]}" --epochs 3 --learning-rate 1e-4 --output "$WORK/teacher"
    else
        local layers=${name%%-*}; layers=${layers#L}; local mapping=${name#*-}
        $BERT_EMD distill --teacher "$WORK/teacher" "${COMMON[@]}" --student-layers "$layers" --mapping "$mapping" \
            --output "$WORK/$name"
    fi
    if [ "$name" = teacher ]; then
        cp "$WORK/teacher/eval_results.json" "$RECORDS/teacher.json"
        cp "$WORK/teacher/run_config.json" "$RECORDS/teacher.run_config.json"
        [ -f "$RECORDS/teacher.test.json" ] || $BERT_EMD evaluate --model "$WORK/teacher" "${DATA_ARGS[@]}" \
            --split test --output "$RECORDS/teacher.test.json"
    else
        keep_records "$name"
    fi
}

for name in "${@:-teacher L3-emd L3-skip L3-none L2-emd L2-skip L2-none benchmark}"; do
    for one in $name; do
        started=$(date +%s)
        run "$one"
        echo "$one finished: $(date -u +%H:%M), $(( ($(date +%s) - started) / 60 )) min"
    done
done
