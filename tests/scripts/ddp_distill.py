"""Run by tests/test_distill.py under `torchrun --nproc_per_node 2`: each rank writes its layer weights."""

import json
import os
import sys

import bert_emd

teacher, data_dir, output = sys.argv[1:4]
results = bert_emd.distill(teacher=teacher, task="sst2", data_dir=data_dir, output=output, student_layers=2,
                           max_train_samples=48, max_eval_samples=16, epochs=1, batch_size=8, logging_steps=1,
                           history_every=1)
rank = int(os.environ.get("RANK", "0"))
with open(os.path.join(output, f"rank{rank}_weights.json"), "w") as handle:
    json.dump(results["layer_weights"], handle)
