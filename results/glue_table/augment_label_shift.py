"""How the teacher labels augmented examples against the originals they came from (a diagnostic of the augmented rows).

Samples 600 original and 600 augmented examples of a task's augmented file (seed 0) and reports the share
the fine-tuned teacher predicts as the positive class (label 1), beside the share of the copied labels.

    .venv/bin/python results/glue_table/augment_label_shift.py --task mrpc \
        --augmented /work/bert-emd-runs/glue_table/augmented/mrpc-5b20613350.jsonl \
        --teacher /work/bert-emd-runs/glue_table/teachers/mrpc --output results/glue_table/augment_label_shift.json
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def positive_shares(rows: list[dict], tokenizer, model, batch: int = 50) -> dict:
    predicted = 0
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        texts = [[row["text_a"] for row in chunk]]
        if "text_b" in chunk[0]:
            texts.append([row["text_b"] for row in chunk])
        encoded = tokenizer(*texts, truncation=True, max_length=128, padding=True, return_tensors="pt")
        with torch.no_grad():
            predicted += int(model(**encoded).logits.argmax(-1).sum())
    return {"teacher_predicts_positive": predicted / len(rows),
            "copied_label_positive": sum(int(row["label"]) for row in rows) / len(rows), "examples": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--augmented", required=True)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--sample", type=int, default=600)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [json.loads(line) for line in Path(args.augmented).read_text(encoding="utf-8").splitlines()]
    random.seed(0)
    originals = random.sample([row for row in rows if row["original"]], args.sample)
    augmented = random.sample([row for row in rows if not row["original"]], args.sample)
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    model = AutoModelForSequenceClassification.from_pretrained(args.teacher).eval()
    result = {"task": args.task, "augmented_file": Path(args.augmented).name,
              "originals": positive_shares(originals, tokenizer, model),
              "augmented": positive_shares(augmented, tokenizer, model)}
    print(json.dumps(result, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
