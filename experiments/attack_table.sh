#!/usr/bin/env bash
# The robustness table (results/attack/): for one GLUE task, the bundled MiniLM-L6 fine-tuned as the teacher, its
# students (emd and skip at 3 and 2 layers, a 3-layer Theseus successor, a 2x hybrid model, the int8 copy of the
# teacher), all seed 1, then the TextFooler-style attack (GloVe 6B 50-d, the bundled all-MiniLM-L6-v2 as sentence
# encoder, defaults of `bert-emd attack`: 500 seeded dev examples or the whole dev split where it is smaller) on
# the teacher and on each model with the teacher beside it (transfer both ways).
#   experiments/attack_table.sh TASK [RUN ...]   # TASK: sst2 (its first 4,000 training sentences), mrpc, rte
#   # RUN: teacher L3-emd L3-skip L2-emd L2-skip theseus-L3 hybrid-2x int8, attack-NAME for each of those
#   # (attack-teacher first); default: all. A finished run is skipped, an interrupted one resumes.
# Teachers: the recipe table's chosen grid point of each task (SST-2: recipe_sst2_cpu's teacher settings).
# Students: each command's defaults on the original training data (no augmentation), seed 1; the Theseus successor
# at lr 1e-4 (at its default 2e-5 this teacher's successor stays at one class: results/theseus_lr_check/).
set -euo pipefail
cd "$(dirname "$0")/.."
TASK=${1:?"usage: experiments/attack_table.sh TASK [RUN ...]"}; shift
WORK=${WORK:-/work/runs/attack/$TASK}
RECORDS=results/attack/$TASK
export HF_HUB_OFFLINE=1
BERT_EMD=.venv/bin/bert-emd
DATA_ARGS=(--task "$TASK" --data-dir ../shared/glue)
case $TASK in
    sst2) DATA_ARGS+=(--max-train-samples 4000); TEACHER_ARGS=(--learning-rate 5e-5 --epochs 3) ;;
    mrpc) TEACHER_ARGS=(--learning-rate 1e-4 --epochs 3) ;;
    rte) TEACHER_ARGS=(--learning-rate 5e-5 --epochs 6) ;;
    *) echo "unknown task '$TASK': sst2, mrpc or rte"; exit 2 ;;
esac
MODELS="teacher L3-emd L3-skip L2-emd L2-skip theseus-L3 hybrid-2x int8"
mkdir -p "$WORK" "$RECORDS"

train() {
    local name=$1
    case $name in
        teacher) $BERT_EMD finetune --model minilm-l6 "${DATA_ARGS[@]}" "${TEACHER_ARGS[@]}" --batch-size 16 \
                     --seed 42 --output "$WORK/teacher" ;;
        L*-*) local layers=${name%%-*}; layers=${layers#L}
              $BERT_EMD distill --teacher "$WORK/teacher" "${DATA_ARGS[@]}" --student-layers "$layers" \
                  --mapping "${name#*-}" --seed 1 --output "$WORK/$name" ;;
        theseus-L3) $BERT_EMD theseus --teacher "$WORK/teacher" "${DATA_ARGS[@]}" --successor-layers 3 --seed 1 \
                        --learning-rate 1e-4 --output "$WORK/$name" ;;
        hybrid-2x) $BERT_EMD hybrid --teacher "$WORK/teacher" "${DATA_ARGS[@]}" --target-ratio 2 --steps 3 \
                       --prune-share 0.5 --hidden-loss --epochs 1 --batch-size 16 --learning-rate 5e-5 --seed 1 \
                       --output "$WORK/$name" ;;
        int8) $BERT_EMD quantize --model "$WORK/teacher" "${DATA_ARGS[@]}" --output "$WORK/int8" ;;
        *) echo "unknown run '$name'"; exit 2 ;;
    esac
}

finished() {  # a model directory with its results written
    local dir=$1
    compgen -G "$dir/*_results.json" > /dev/null
}

run() {
    local name=$1
    if [ "${name#attack-}" != "$name" ]; then
        local model=${name#attack-} out=$WORK/attack/${name#attack-}
        [ -f "$out/attack_results.json" ] && { echo "$name: finished already"; return; }
        mkdir -p "$out"
        if [ "$model" = teacher ]; then
            $BERT_EMD attack --model "$WORK/teacher" "${DATA_ARGS[@]}" --output "$out"
        else
            # the teacher's attack is the same on every row: its examples are reused, not attacked again
            cp "$WORK/attack/teacher/adversarial_model.jsonl" "$out/adversarial_teacher.jsonl"
            $BERT_EMD attack --model "$WORK/$model" --teacher "$WORK/teacher" "${DATA_ARGS[@]}" --output "$out"
        fi
        mkdir -p "$RECORDS/$model"
        cp "$out/attack_results.json" "$RECORDS/$model/attack_results.json"
        cp "$out/run_config.json" "$RECORDS/$model/attack_run_config.json"
        return
    fi
    if finished "$WORK/$name"; then
        echo "$name: finished already"
    else
        train "$name"
    fi
    mkdir -p "$RECORDS/$name"
    for file in "$WORK/$name"/*_results.json "$WORK/$name/run_config.json"; do
        [ -f "$file" ] && cp "$file" "$RECORDS/$name/"
    done
}

default_runs() {
    local attacks=""
    for model in $MODELS; do attacks="$attacks attack-$model"; done
    echo "$MODELS$attacks"
}

for name in ${@:-$(default_runs)}; do
    started=$(date +%s)
    run "$name"
    line="$name finished: $(date -u +%H:%M), $(( ($(date +%s) - started) / 60 )) min"
    echo "$line"
    echo "$line" >> "$RECORDS/wall_clock.log"  # the compute of each run (one that was finished before: 0 min)
done
