"""The transformers Trainer, taught to log each loss term and the layer weights of the Distiller."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from bert_emd.training.trainer import GuardedTrainer

HISTORY_FILE = "layer_weight_history.json"


class DistillTrainer(GuardedTrainer):
    """Adds the running mean of every loss term and the current layer weights to each log (TensorBoard)."""

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:  # a training log, not an evaluation one
            distiller = self.model
            logs.update(distiller.pop_running_means())
            for term, weights in distiller.layer_weights().items():
                for side, values in weights.items():
                    for index, value in enumerate(values):
                        logs[f"{term}_{side.replace('_weights', '')}_weight_{index + 1}"] = value
        super().log(logs, *args, **kwargs)


class LayerWeightHistory(TrainerCallback):
    """Samples the layer weights every ``every`` steps; the samples travel with each checkpoint."""

    def __init__(self, distiller, every: int, stage: str, history: list):
        self.distiller, self.every, self.stage, self.history = distiller, every, stage, history

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self.history.append({"stage": self.stage, "step": state.global_step, **self.distiller.layer_weights()})

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / HISTORY_FILE).write_text(json.dumps(self.history))


def load_history(checkpoint: str | None) -> list:
    if checkpoint and (Path(checkpoint) / HISTORY_FILE).is_file():
        return json.loads((Path(checkpoint) / HISTORY_FILE).read_text())
    return []


def restore_history(history: list):
    """For ``train_resuming``: on resume, ``history`` becomes the one saved with the checkpoint."""
    def restore(checkpoint: str) -> None:
        history[:] = load_history(checkpoint)
    return restore
