"""Run by tests/test_theseus.py under `torchrun --nproc_per_node 2`: each rank writes a digest of its successor."""

import hashlib
import json
import os
import sys

import torch

import bert_emd
from bert_emd.theseus import run as theseus_run

teacher, data_dir, output = sys.argv[1:4]
seen = {}
original = theseus_run.TheseusModel


class Recording(original):  # keeps the model so that each rank can report its weights
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        seen["model"] = self


theseus_run.TheseusModel = Recording
results = bert_emd.theseus(teacher=teacher, task="sst2", data_dir=data_dir, output=output, successor_layers=2,
                           max_train_samples=48, max_eval_samples=16, epochs=1, batch_size=8, replacing_steps=2,
                           learning_rate=1e-3)
state = seen["model"].successor.state_dict()
digest = hashlib.sha256(b"".join(state[name].detach().to(torch.float64).numpy().tobytes()
                                 for name in sorted(state))).hexdigest()
rank = int(os.environ.get("RANK", "0"))
with open(os.path.join(output, f"rank{rank}_successor.json"), "w") as handle:
    json.dump({"digest": digest, "steps": seen["model"].step}, handle)
