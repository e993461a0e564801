"""`bert-emd early-exit train`: exit students on a frozen fine-tuned model, by self-distillation.

Targets (``--targets``):
- ``final`` (FastBERT): every student learns the final classifier's distribution,
  ``mean_i KL(p_final || p_i)`` at temperature t (times t^2).
- ``emd`` (MS-BERT, as built here): a teacher layer j's target is the distribution the model's own
  final classifier (pooler + linear) gives on layer j's hidden states (the last one is the final
  output). The cost ``D[i, j] = KL(target_j || student_i)`` of every student x teacher-layer pair is
  matched many-to-many by the project's EMD layer loss (``LayerMappingLoss.transport_loss``: exact
  transport, cost attention on the layer weights, the same code as BERT-EMD distillation).
``--label-weight w`` adds ``w * mean_i CE(student_i, labels)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import DataCollatorWithPadding, set_seed

from bert_emd.data.loading import DataOptions, load_split, resolve_task, tokenize
from bert_emd.distill.layer_loss import LayerMappingLoss
from bert_emd.early_exit.heads import DESIGNS
from bert_emd.early_exit.model import EarlyExitModel
from bert_emd.early_exit.uncertainty import exit_layers
from bert_emd.errors import BertEmdError
from bert_emd.evaluation.evaluate import predict_logits
from bert_emd.evaluation.metrics import compute_metrics
from bert_emd.models import label_names_of, load_config, load_tokenizer, load_trained_classifier
from bert_emd.options import option, resolve_config
from bert_emd.outputs import writes_output
from bert_emd.runinfo import run_record, write_json
from bert_emd.training import (
    GuardedTrainer,
    TrainingOptions,
    callbacks,
    check_training_options,
    remove_checkpoints,
    train_resuming,
    training_arguments,
)

TARGETS = ("final", "emd")


@dataclass
class EarlyExitTrainConfig(TrainingOptions, DataOptions):
    teacher: str | None = option(None, "fine-tuned model directory (a `bert-emd finetune` output) (required)")
    student_design: str = option("fastbert", "exit student: fastbert (projection, self-attention, MLP) or ramp "
                                 "(DeeBERT pooler + linear)", choices=DESIGNS)
    student_width: int = option(128, "fastbert: width the hidden states are projected to", at_least=1)
    student_heads: int = option(2, "fastbert: attention heads of the student's self-attention", at_least=1)
    targets: str = option("final", "final: every student learns the final classifier (FastBERT); emd: students "
                          "matched to every teacher layer's target by EMD (MS-BERT)", choices=TARGETS)
    kd_temperature: float = option(1.0, "temperature of the distillation KL", above=0)
    label_weight: float = option(0.0, "weight of a cross-entropy term on the labels (0: self-distillation only)",
                                 at_least=0)
    weight_update: bool = option(False, "emd: learn the layer weights by cost attention (off by default: with "
                                 "softmax weights it puts all weight on the first student within a few steps and "
                                 "the others stop learning; uniform weights keep every student and layer in play)")
    weight_norm: str = option("softmax", "emd: normalise the layer weights by softmax(w / T) or w / sum(w)",
                              choices=("softmax", "sum"))
    emd_temperature: float = option(1.0, "emd: temperature T of the softmax weight normalisation", above=0)
    learning_rate: float = option(5e-4, "peak learning rate (only the small exit students train)", above=0)
    epochs: float = option(2.0, "training epochs", above=0)
    batch_size: int = option(32, "training batch size per process", at_least=1)


class SelfDistiller(nn.Module):
    """What the Trainer optimises: the exit students, against targets from the frozen model."""

    def __init__(self, model: EarlyExitModel, config: EarlyExitTrainConfig):
        super().__init__()
        self.model = model
        self.targets, self.t, self.label_weight = config.targets, config.kd_temperature, config.label_weight
        layers = model.num_layers
        self.transport = LayerMappingLoss("emd", layers - 1, layers, config.weight_update, config.weight_norm,
                                          config.emd_temperature) if config.targets == "emd" else None

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.model.all_logits(input_ids, attention_mask, token_type_ids, layer_targets=self.transport is not None)
        students = out["exits"][:-1]  # [layers - 1, batch, classes]
        log_students = F.log_softmax(students / self.t, -1)
        if self.transport is None:
            target = F.softmax(out["exits"][-1] / self.t, -1)
            loss = kl(target[None], log_students).mean() * self.t ** 2
        else:
            targets = F.softmax(out["layer_targets"] / self.t, -1)  # [layers, batch, classes]
            cost = kl(targets[None, :], log_students[:, None])  # [students, teacher layers]
            loss = self.transport.transport_loss(cost) * self.t ** 2
        if self.label_weight and labels is not None:
            loss = loss + self.label_weight * F.cross_entropy(students.flatten(0, 1), labels.repeat(len(students)))
        return {"loss": loss, "logits": out["exits"].transpose(0, 1)}

    def layer_weights(self) -> dict | None:
        if self.transport is None:
            return None
        return {"student_weights": self.transport.student_weights.tolist(),
                "teacher_weights": self.transport.teacher_weights.tolist()}


def kl(target: torch.Tensor, log_student: torch.Tensor) -> torch.Tensor:
    """``KL(target || student)`` over the class axis, averaged over the batch axis (second to last)."""
    return (target * (torch.log(target.clamp_min(1e-12)) - log_student)).sum(-1).mean(-1)


def exit_logits(model: EarlyExitModel, dataset, tokenizer, batch_size: int = 64) -> torch.Tensor:
    """Every exit's logits on a tokenised dataset: ``[layers, examples, classes]``."""
    per_example = predict_logits(model, tokenizer, dataset, batch_size, "Exits",
                                 forward=lambda batch: model.all_logits(**batch)["exits"].transpose(0, 1))
    return torch.from_numpy(per_example).transpose(0, 1)


def labels_of(dataset) -> np.ndarray:
    return np.asarray(list(dataset["labels"]))


def per_exit_metrics(task, logits: torch.Tensor, labels) -> list[dict]:
    return [compute_metrics(task, layer.numpy(), labels) for layer in logits]


def check_train_options(config: EarlyExitTrainConfig) -> None:
    check_training_options(config, evaluates=False)
    if not config.teacher:
        raise BertEmdError("--teacher is required (a fine-tuned model directory)")
    if config.student_design == "fastbert" and config.student_width % config.student_heads:
        raise BertEmdError(f"--student-width {config.student_width} must be a multiple of --student-heads "
                           f"{config.student_heads}")


@writes_output("early-exit train", EarlyExitTrainConfig)
def train_early_exit(config: EarlyExitTrainConfig | str | dict | None = None, **overrides) -> dict:
    """Train exit students on ``config.teacher`` and save the early-exit model to ``config.output``."""
    config = resolve_config(EarlyExitTrainConfig, config, overrides)
    check_train_options(config)
    task = resolve_task(config, model_labels=label_names_of(load_config(config.teacher)))
    if task.is_regression:
        raise BertEmdError(f"task {task.display_name} is a regression task: early exit by uncertainty needs "
                           "classification")
    backbone = load_trained_classifier(config.teacher, task, role="teacher")
    tokenizer = load_tokenizer(config.teacher, config.max_length)
    set_seed(config.seed)
    model = EarlyExitModel(backbone, config.student_design, config.student_width, config.student_heads,
                           name=config.teacher)
    distiller = SelfDistiller(model, config)
    train = tokenize(load_split(task, config, "train"), tokenizer, config.max_length, "Tokenising train")
    collator = DataCollatorWithPadding(tokenizer)
    trainer = GuardedTrainer(model=distiller, args=training_arguments(config, None), train_dataset=train,
                             data_collator=collator, processing_class=tokenizer,
                             callbacks=callbacks(config, evaluate=False))
    result, checkpoint = train_resuming(trainer, config)
    if not trainer.is_world_process_zero():
        return {}
    results = {"task": task.name, "teacher": config.teacher, "design": config.student_design,
               "targets": config.targets, "train": {"runtime_s": result.metrics.get("train_runtime"),
                                                    "steps": result.global_step, "loss": result.training_loss},
               "layer_weights": distiller.layer_weights(), "splits": {}}
    if config.has_dev_set:
        for split in task.eval_splits:
            dev = tokenize(load_split(task, config, split), tokenizer, config.max_length, f"Tokenising {split}")
            logits = exit_logits(model, dev, tokenizer, config.eval_batch_size)
            labels = labels_of(dev)
            layers = per_exit_metrics(task, logits, labels)
            results["splits"][split] = {"num_examples": len(dev), "per_exit": layers,
                                        "entropy_threshold_0.5": _summary(task, logits, labels)}
            print(f"{split}: {task.main_metric} per exit: " + "  ".join(
                f"L{index + 1} {layer[task.main_metric]:.4f}" for index, layer in enumerate(layers)))
    model.save_pretrained(config.output, tokenizer, extra={"task": task.name, "targets": config.targets})
    write_json(f"{config.output}/early_exit_results.json", results)
    write_json(f"{config.output}/run_config.json", run_record("early-exit train", config, task=task.name))
    remove_checkpoints(config)
    print(f"early-exit model (backbone, {model.num_layers - 1} exit students) written to {config.output}; see "
          f"`bert-emd early-exit evaluate --model {config.output}` for its speed-accuracy curve")
    return results


def _summary(task, logits: torch.Tensor, labels) -> dict:
    """A first look: the metric and mean exit layer at entropy threshold 0.5."""
    layers = exit_layers(logits.softmax(-1), 0.5)
    chosen = logits[layers - 1, torch.arange(logits.shape[1])]
    return {"metrics": compute_metrics(task, chosen.numpy(), labels), "mean_exit_layer": layers.float().mean().item()}
