"""The settings `bert-emd compress` trains with: the project's recipe table (results/recipe_table, the
authors' joint BERT-EMD recipe on augmented data) for GLUE tasks, its defaults for a task of one's own.

Teachers: the recipe table's grid winners (learning rate and epochs per task; batch 16, max length 128).
Students: one joint stage, constant learning rate 2e-5 (STS-B 3e-5), no warm-up, KD temperature 1, the task's
beta and cost-attention temperature, dev evaluation every 50 steps with the best kept, students started from
evenly spaced teacher layers.
"""

from __future__ import annotations

TEACHER_DEFAULT = {"learning_rate": 5e-5, "epochs": 3.0, "batch_size": 16, "max_length": 128}
TEACHER = {
    "cola": {"learning_rate": 5e-5, "epochs": 6.0},
    "mrpc": {"learning_rate": 1e-4, "epochs": 3.0},
    "rte": {"learning_rate": 5e-5, "epochs": 6.0},
    "stsb": {"learning_rate": 1e-4, "epochs": 6.0},
    "sst2": {"learning_rate": 1e-4, "epochs": 1.0, "batch_size": 32},
}
DISTILL_DEFAULT = {"learning_rate": 2e-5, "lr_schedule": "constant", "warmup": 0, "alpha": 1.0, "theta": 1.0,
                   "kd_temperature": 1.0, "beta": 0.005, "emd_temperature": 1.0, "weight_norm": "softmax",
                   "attention": "scores", "schedule": "joint", "save_steps": 200}
DISTILL = {
    "cola": {"beta": 0.001, "emd_temperature": 5.0},
    "mrpc": {"beta": 0.001, "emd_temperature": 10.0},
    "sst2": {"beta": 0.001},
    "rte": {"beta": 0.005},
    "stsb": {"beta": 0.005, "learning_rate": 3e-5},
}
# BERT-of-Theseus: the paper's linear curriculum (p = b + k t, p = 1 after S steps, then the successor alone) at
# the learning rate and b the recipe table's grid chose on MRPC (results/recipe_table/runs/mrpc/theseus-L3-grid-*:
# the paper's 1e-5 and 2e-5 leave this teacher's successor at or near the majority class); the grid's S = 1000 of
# 1,261 steps is given as that share of the run's steps, so that it holds for data of any size
THESEUS = {"learning_rate": 1e-4, "replacing_rate_schedule": "linear", "replacing_rate_start": 0.3,
           "replacing_share_to_one": round(1000 / 1261, 4)}
AUGMENT_BELOW = 10_000  # TinyBERT augments the small GLUE tasks; `--augment auto` does so under this many examples


def teacher_settings(task: str) -> dict:
    return {**TEACHER_DEFAULT, **TEACHER.get(task, {})}


def distill_settings(task: str) -> dict:
    return {**DISTILL_DEFAULT, **DISTILL.get(task, {})}
