"""How often trained classifiers say each label on the dev set, next to the dev set's own counts, with the task's
metrics (for students near the majority class, where a higher F1 can mean saying the majority label more often
rather than learning the task).

    python results/recipe_table/label_counts.py --task mrpc --data-dir ../shared/glue --max-length 64 \
        emd=WORK/recipe_table/mrpc/emd-L2-tinybert/seed1 skip=WORK/recipe_table/mrpc/skip-L2-tinybert/seed1
"""

from __future__ import annotations

import argparse
from collections import Counter

from bert_emd.data.loading import DataOptions, load_split, resolve_task, tokenize
from bert_emd.evaluation.evaluate import predict_logits, score_split
from bert_emd.evaluation.metrics import predictions_from_logits
from bert_emd.models import load_tokenizer, load_trained_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("models", nargs="+", help="NAME=DIR of a trained classifier")
    args = parser.parse_args()
    options = DataOptions(task=args.task, data_dir=args.data_dir, max_length=args.max_length)
    task = resolve_task(options)
    if task.is_regression:
        raise SystemExit(f"{task.name} is a regression task: it has no labels to count")
    dev = load_split(task, options, "dev")
    gold = Counter(task.labels[label] for label in dev["label"])
    print(f"dev set: {dict(sorted(gold.items()))} ({len(dev)} examples)")
    for item in args.models:
        name, path = item.split("=", 1)
        tokenizer = load_tokenizer(path, args.max_length)
        logits = predict_logits(load_trained_classifier(path, task), tokenizer, tokenize(dev, tokenizer,
                                                                                         args.max_length))
        said = Counter(task.labels[int(index)] for index in predictions_from_logits(task, logits))
        metrics = "  ".join(f"{metric} {100 * value:.1f}" for metric, value in score_split(task, dev, logits,
                                                                                           "dev").items())
        print(f"{name}: {dict(sorted(said.items()))}  {metrics}")


if __name__ == "__main__":
    main()
