#!/usr/bin/env bash
# On a lent GPU machine, from the repository root with .devcarry/ (make_kit.sh) carried: the SST-2 slice runs of
# experiments/recipe_sst2_cpu.yaml not yet recorded (seed 1's first, then seeds 2 and 3), on the CPU runs' own
# teacher, WORKERS runs side by side; no run starts that would not end before HARD_STOP_S by the longest run so
# far. Every finished run's records come back in $OUT/records.tgz, the runs' logs in $OUT/run_logs.txt.
#   bash experiments/device_trip/run_sst2_slice.sh   (env: PY, WORK, OUT, WORKERS, LAST_START_S, HARD_STOP_S)
set -u
C=.devcarry PY=${PY:-python3} WORK=${WORK:-/work/bert-emd-runs} OUT=${OUT:-/tmp/out}
WORKERS=${WORKERS:-8} LAST_START_S=${LAST_START_S:-470} HARD_STOP_S=${HARD_STOP_S:-555}
START=$(date +%s); export START PY WORK HARD_STOP_S LAST_START_S
log() { echo "[$(( $(date +%s) - START ))s] $*"; }
mkdir -p /tmp/site /tmp/runlogs "$OUT"
if [ "$PY" = python3 ]; then
  tar xzf $C/site.tgz -C /tmp/site || exit 1
  $PY -m pip install -q --no-deps --no-index --no-build-isolation --no-compile --target /tmp/site . >/tmp/runlogs/pip.log 2>&1 \
    || log "bert-emd not installed, imported from the tree"
  export PYTHONPATH=/tmp/site:$PWD
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
$PY -c "import torch, transformers, datasets, ot, bert_emd; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'pot', ot.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())" || exit 1
W=$WORK/recipe_sst2_cpu
mkdir -p $W/teachers/sst2 $W/augmented ../shared/glue
cp $C/teacher_meta/* $W/teachers/sst2/ \
  && $PY experiments/device_trip/teacher_pack.py rebuild $C/teacher $W/teachers/sst2 || exit 1
AUGMENTED=$W/augmented/$(cat $C/augmented.name)
gunzip -c $C/augmented.jsonl.gz > $AUGMENTED && cp $C/augmented.manifest.json $AUGMENTED.manifest.json
[ -f ../shared/glue/SST-2/dev.tsv ] || tar xzf $C/sst2.tgz -C ../shared/glue
log "set up"
(while sleep 20; do echo "$(( $(date +%s) - START ))s $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>&1)"; done) > /tmp/runlogs/gpu.txt 2>&1 &
SAMPLER=$!

one() {  # one run: seed, row
  local now=$(( $(date +%s) - START ))
  local need=$(sort -n /tmp/runlogs/durations 2>/dev/null | tail -n 1); need=${need:-60}  # the longest run so far
  if [ $now -ge $LAST_START_S ] || [ $(( now + need * 11 / 10 )) -ge $HARD_STOP_S ]; then
    echo "skipped seed $1 $2 (at ${now}s)"; return 0; fi
  timeout $(( HARD_STOP_S - now )) $PY -m bert_emd experiment --config experiments/recipe_sst2_cpu.yaml --no-report \
    --work-dir $WORK --seeds $1 --only $2 > /tmp/runlogs/seed$1-$2.log 2>&1
  local rc=$?
  [ $rc -eq 0 ] && echo $(( $(date +%s) - START - now )) >> /tmp/runlogs/durations
  echo "[$(( $(date +%s) - START ))s] seed $1 $2 rc=$rc (started at ${now}s)"
}
export -f one
# the runs left, in the runner's order (seed 1's first), as its dry run lists them: "to do  sst2  ROW  seed N  ..."
$PY -m bert_emd experiment --config experiments/recipe_sst2_cpu.yaml --dry-run --work-dir $WORK 2>/dev/null \
  | awk '$1 == "to" && $2 == "do" && $5 == "seed" {print $6, $4}' > /tmp/runlogs/queue
log "$(wc -l < /tmp/runlogs/queue) runs left"
cat /tmp/runlogs/queue | xargs -P $WORKERS -n 2 bash -c 'one "$@"' _
log "runs ended"
kill $SAMPLER 2>/dev/null
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv 2>/dev/null
cp /tmp/runlogs/gpu.txt "$OUT/gpu.txt"; tar czf "$OUT/records.tgz" results/recipe_sst2_cpu/runs
for f in /tmp/runlogs/*.log; do echo "== $f"; tr '\r' '\n' < $f | grep -v '^\s*$' | tail -n 25; done > "$OUT/run_logs.txt" 2>&1
grep -h "Traceback\|Error" /tmp/runlogs/*.log | sort | uniq -c | head -20
log "packed"
