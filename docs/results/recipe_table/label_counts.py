"""How often a classifier's dev predictions say each label, next to the dev set's own counts, with accuracy and F1
recomputed from the predictions (for students near the majority class, where a higher F1 can mean saying the
majority label more often rather than learning the task).

    bert-emd predict --task mrpc --data-dir ../shared/glue --model WORK/recipe_table/mrpc/emd-L2-tinybert/seed1 \
        --split dev --max-length 64 --output /tmp/pred_emd
    python docs/results/recipe_table/label_counts.py --task mrpc --data-dir ../shared/glue \
        emd=/tmp/pred_emd/MRPC.tsv ...
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter

from sklearn.metrics import accuracy_score, f1_score

from bert_emd.data.loading import DataOptions, load_split, resolve_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("predictions", nargs="+", help="NAME=PATH of a `bert-emd predict --split dev` TSV file")
    args = parser.parse_args()
    options = DataOptions(task=args.task, data_dir=args.data_dir)
    task = resolve_task(options)
    dev = load_split(task, options, "dev")
    gold = [str(task.labels[label]) if task.labels else str(label) for label in dev["label"]]
    print(f"dev set: {dict(sorted(Counter(gold).items()))} ({len(gold)} examples)")
    for item in args.predictions:
        name, path = item.split("=", 1)
        with open(path, newline="") as handle:
            predicted = [row["prediction"] for row in csv.DictReader(handle, delimiter="\t")]
        if len(predicted) != len(gold):
            raise SystemExit(f"{path}: {len(predicted)} predictions for {len(gold)} dev examples")
        positive = sorted(set(gold))[-1]
        counts = dict(sorted(Counter(predicted).items()))
        print(f"{name}: {counts}  accuracy {100 * accuracy_score(gold, predicted):.1f}"
              f"  F1 ({positive}) {100 * f1_score(gold, predicted, pos_label=positive):.1f}")


if __name__ == "__main__":
    main()
