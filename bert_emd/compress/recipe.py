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
AUGMENT_BELOW = 10_000  # TinyBERT augments the small GLUE tasks; `--augment auto` does so under this many examples


def teacher_settings(task: str) -> dict:
    return {**TEACHER_DEFAULT, **TEACHER.get(task, {})}


def distill_settings(task: str) -> dict:
    return {**DISTILL_DEFAULT, **DISTILL.get(task, {})}
