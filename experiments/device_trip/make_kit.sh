#!/usr/bin/env bash
# Builds .devcarry/, what a lent GPU machine needs to train the SST-2 slice rows (experiments/recipe_sst2_cpu.yaml)
# on the CPU runs' own teacher: the teacher packed exactly (teacher_pack.py), the augmented file, SST-2's first
# 4,000 training rows and dev set, and the packages that machine lacks (POT without its 175 MB BSP-OT extension,
# which bert-emd does not use; datasets, dill, multiprocess). Then, with the tree slimmed to fit 64 MiB:
#   bash experiments/device_trip/make_kit.sh [WORK_DIR]       (default /work/bert-emd-runs; needs its slice teacher)
#   bash experiments/device_trip/slim_tree.sh on              (a branch without the other results: 1.6 MB travels)
#   device run: `bash experiments/device_trip/run_sst2_slice.sh`, carry [".devcarry"], timeout_s 600
#   bash experiments/device_trip/slim_tree.sh off             (back to the branch you were on)
#   then unpack the records: tar xzf FILES_AT/records.tgz (into the repository root), and commit them.
set -euo pipefail
WORK=${1:-/work/bert-emd-runs}
PY=${PY:-.venv/bin/python}
TEACHER=$WORK/recipe_sst2_cpu/teachers/sst2
AUGMENTED=$(ls "$WORK"/recipe_sst2_cpu/augmented/sst2-*.jsonl | head -n 1)
GLUE=$($PY -c "import yaml; print(yaml.safe_load(open('experiments/recipe_sst2_cpu.yaml'))['data_dir'])")
KIT=.devcarry
RECORD=results/device_trip/kit.txt   # what this command printed, kept with the results it makes possible
mkdir -p "$(dirname "$RECORD")"
echo "# bash experiments/device_trip/make_kit.sh $WORK  ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD))" > "$RECORD"
grep -qx "/$KIT/" .git/info/exclude 2>/dev/null || echo "/$KIT/" >> .git/info/exclude
rm -rf "$KIT" && mkdir -p "$KIT/teacher_meta" "$KIT/whl" "$KIT/site"

version() { $PY -c "from importlib.metadata import version; print(version('$1'))"; }
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$KIT/whl" \
  "pot==$(version pot)" "datasets==$(version datasets)" "dill==$(version dill)" "multiprocess==$(version multiprocess)"
for wheel in "$KIT"/whl/*.whl; do unzip -q -o "$wheel" -d "$KIT/site"; done
rm -f "$KIT"/site/ot/bsp/bsp_wrap*.so
$PY - "$KIT/site/ot/bsp/bsp_ot.py" <<'PATCH'
import sys
path = sys.argv[1]
text = open(path).read()
line = "from .bsp_wrap import bsp_solve_c, merge_bijections_c"
assert line in text, "POT's bsp_ot.py changed: look again at what to leave out"
open(path, "w").write(text.replace(line, f"try:  # left out for the trip\n    {line}\nexcept ImportError:\n"
                                         "    bsp_solve_c = merge_bijections_c = None"))
PATCH
tar czf "$KIT/site.tgz" -C "$KIT/site" . && rm -rf "$KIT/site" "$KIT/whl"

$PY experiments/device_trip/teacher_pack.py pack "$TEACHER" "$KIT/teacher" --task sst2 --data-dir "$GLUE" \
  --augmented "$AUGMENTED" | tee -a "$RECORD"
mkdir -p /tmp/kit-check && cp "$TEACHER"/{config.json,tokenizer.json,tokenizer_config.json} /tmp/kit-check/
$PY experiments/device_trip/teacher_pack.py rebuild "$KIT/teacher" /tmp/kit-check >/dev/null
$PY experiments/device_trip/teacher_pack.py check "$TEACHER" /tmp/kit-check --task sst2 --data-dir "$GLUE" 2>/dev/null \
  | tee -a "$RECORD"
rm -rf /tmp/kit-check
for name in config.json tokenizer.json tokenizer_config.json eval_results.json run_config.json wall_clock.json; do
  cp "$TEACHER/$name" "$KIT/teacher_meta/"
done
mkdir -p /tmp/kit-glue/SST-2 && head -n 4001 "$GLUE/SST-2/train.tsv" > /tmp/kit-glue/SST-2/train.tsv
cp "$GLUE/SST-2/dev.tsv" /tmp/kit-glue/SST-2/ && tar czf "$KIT/sst2.tgz" -C /tmp/kit-glue SST-2 && rm -rf /tmp/kit-glue
gzip -9 -c "$AUGMENTED" > "$KIT/augmented.jsonl.gz"
cp "$AUGMENTED.manifest.json" "$KIT/augmented.manifest.json"
basename "$AUGMENTED" > "$KIT/augmented.name"
tree() { git ls-files -z "$@" | xargs -0 du -cb | tail -n 1 | cut -f1; }
{ echo "kit (.devcarry): $(du -sb "$KIT" | cut -f1) bytes; tracked tree: $(tree) bytes; slim tree (slim_tree.sh on):" \
       "$(( $(tree ':!results') + $(tree results/recipe_sst2_cpu) )) bytes; a call carries at most 67108864"
} | tee -a "$RECORD"
