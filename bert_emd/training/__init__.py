"""Training options shared by every command that trains, mapped onto transformers' ``Trainer``.

The Trainer provides mixed precision, gradient accumulation, DDP under ``torchrun``, checkpoints,
resume, best-model selection, early stopping, TensorBoard logs and progress bars; this package fills in
its arguments from our options (here), stops a diverging run at its first non-finite step (``guard``),
keeps only complete checkpoints to resume from (``checkpoints``) and never saves non-finite weights
(``trainer.GuardedTrainer``).
"""

from __future__ import annotations

import math
import os
import typing
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import EarlyStoppingCallback, TrainerCallback, TrainingArguments

from bert_emd.errors import BertEmdError
from bert_emd.finite import NonFiniteError, describe_non_finite
from bert_emd.options import option
from bert_emd.training.checkpoints import MarkCompleteCheckpoints, newest_complete_checkpoint, remove_all
from bert_emd.training.guard import NonFiniteGuard
from bert_emd.training.trainer import GuardedTrainer

__all__ = ["GuardedTrainer", "TrainingOptions", "callbacks", "check_training_options", "dev_history",
           "remove_checkpoints", "train_resuming", "training_arguments"]


@dataclass
class TrainingOptions:
    # a class attribute, not an option: the training split must hold two labels or more (load_split checks)
    trains_classifier: typing.ClassVar[bool] = True
    output: str | None = option(None, "output directory (required)")
    overwrite: bool = option(False, "replace a finished output of another command or task in --output (default: "
                                    "refused; the same command and task resumes there)")
    learning_rate: float = option(1e-4, "peak learning rate of AdamW", above=0)
    epochs: float = option(3.0, "training epochs", above=0)
    batch_size: int = option(16, "training batch size per process", at_least=1)
    eval_batch_size: int = option(64, "evaluation batch size", at_least=1)
    warmup: float = option(0.1, "linear warm-up: a share of all steps if < 1, else a number of steps", at_least=0)
    lr_schedule: str = option("linear", "learning rate after warm-up: linear decay to 0, or constant",
                              choices=("linear", "constant"))
    weight_decay: float = option(0.01, "AdamW weight decay", at_least=0)
    seed: int = option(42, "random seed (model init, data order, dropout)", at_least=0, at_most=2**32 - 1)
    precision: str = option("fp32", "numeric precision of training", choices=("fp32", "fp16", "bf16"))
    gradient_accumulation: int = option(1, "batches whose gradients are summed before each optimiser step", at_least=1)
    early_stopping_patience: int | None = option(None, "stop after this many evaluations without improvement",
                                                 at_least=1)
    resume: bool = option(True, "continue from the last checkpoint in the output directory if there is one")
    keep_checkpoints: bool = option(False, "keep the checkpoint-* folders after a run has finished")
    logging_steps: int = option(50, "log the training loss every N steps (TensorBoard and console)", at_least=1)
    save_steps: int = option(500, "also checkpoint every N optimiser steps (besides each epoch end), so an "
                             "interrupted run resumes losing at most N steps", at_least=1)
    report_to: str = option("tensorboard", "where the Trainer also logs, comma-separated: tensorboard, wandb, "
                            "mlflow, comet_ml, ... or none")
    trainer_arg: list[str] | None = option(None, "any other transformers TrainingArguments field, KEY=VALUE "
                                           "(repeat the flag), e.g. max_grad_norm=0.5 or optim=adafactor")
    eval_steps: int | None = option(None, "evaluate on the dev set every N optimiser steps instead of at each epoch "
                                   "end, and keep the best of those evaluations (the BERT-EMD authors: 50); each "
                                   "evaluation also saves a checkpoint", at_least=1)


def check_training_options(options: TrainingOptions, evaluates: bool = True) -> None:
    """What the option ranges (checked with every option, bert_emd.options) cannot say. ``evaluates``: whether
    the run evaluates on a dev set during training (options that need it are refused otherwise)."""
    if not evaluates:
        for name in ("eval_steps", "early_stopping_patience"):
            if getattr(options, name) is not None:
                raise BertEmdError(f"--{name.replace('_', '-')} needs evaluation during training, and this run has "
                                   "none (a command that does not evaluate, or no dev set: --validation-file)")
    if not options.output:
        raise BertEmdError("--output is required (the directory to write the model and results to)")
    if options.precision == "fp16" and not torch.cuda.is_available():
        raise BertEmdError("--precision fp16 needs a CUDA GPU; use fp32 or bf16 on a CPU")


def training_arguments(options: TrainingOptions, main_metric: str | None, **overrides) -> TrainingArguments:
    """TrainingArguments for a run; with ``main_metric`` it evaluates each epoch (or every ``eval_steps``) and
    keeps the best."""
    evaluate = main_metric is not None
    every = options.eval_steps if evaluate else None
    # Under torchrun without CUDA, accelerate runs DDP over gloo only when asked to use the CPU.
    distributed_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    arguments = dict(
        output_dir=options.output,
        learning_rate=options.learning_rate,
        num_train_epochs=options.epochs,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.eval_batch_size,
        warmup_steps=options.warmup,
        lr_scheduler_type="linear" if options.lr_schedule == "linear" else "constant_with_warmup",
        weight_decay=options.weight_decay,
        seed=options.seed,
        data_seed=options.seed,
        fp16=options.precision == "fp16",
        bf16=options.precision == "bf16",
        gradient_accumulation_steps=options.gradient_accumulation,
        eval_strategy=("steps" if every else "epoch") if evaluate else "no",
        save_strategy="steps" if every else "epoch",  # best-model selection needs a save at each evaluation
        save_total_limit=2,
        load_best_model_at_end=evaluate,
        metric_for_best_model=main_metric,
        greater_is_better=True if evaluate else None,
        logging_steps=options.logging_steps,
        logging_nan_inf_filter=False,  # else a NaN step loss is logged as finite (the guard checks both)
        disable_tqdm=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        ddp_find_unused_parameters=False,
        use_cpu=distributed_cpu,
    )
    if every:
        arguments.update(eval_steps=every, save_steps=every)
    arguments.update(overrides)
    arguments["report_to"] = [] if options.report_to.strip() == "none" else \
        [name.strip() for name in options.report_to.split(",") if name.strip()]
    arguments.update(extra_trainer_arguments(options.trainer_arg or [], set(arguments)))
    try:
        return TrainingArguments(**arguments)
    except (ValueError, TypeError, ImportError) as error:  # e.g. an unknown optimiser, a missing integration
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BertEmdError(f"the Trainer refused these settings: {first}") from None


def extra_trainer_arguments(pairs: list[str], ours: set[str]) -> dict:
    """``--trainer-arg KEY=VALUE`` -> TrainingArguments fields; values read as YAML scalars (0.5, true, adamw_torch).
    A field the options already set must be given by its own flag."""
    import dataclasses

    import yaml

    fields = {field.name for field in dataclasses.fields(TrainingArguments)}
    flags = {"output_dir": "--output", "learning_rate": "--learning-rate", "num_train_epochs": "--epochs",
             "per_device_train_batch_size": "--batch-size", "per_device_eval_batch_size": "--eval-batch-size",
             "warmup_steps": "--warmup", "weight_decay": "--weight-decay", "seed": "--seed",
             "gradient_accumulation_steps": "--gradient-accumulation", "logging_steps": "--logging-steps",
             "report_to": "--report-to", "eval_steps": "--eval-steps"}
    extra = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise BertEmdError(f"--trainer-arg {pair!r}: give KEY=VALUE, e.g. max_grad_norm=0.5")
        if key not in fields:
            raise BertEmdError(f"--trainer-arg {key}: not a field of transformers' TrainingArguments")
        if key in flags:
            raise BertEmdError(f"--trainer-arg {key}: set it with {flags[key]}")
        if key in ours:
            raise BertEmdError(f"--trainer-arg {key}: this command sets it itself")
        try:
            extra[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            extra[key] = text
    return extra


def dev_history(trainer, main_metric: str) -> list[dict]:
    """The dev metrics of every evaluation during training, with its epoch and step (the kept model is the best
    of them)."""
    skip = ("_runtime", "_per_second")
    return [{"epoch": entry["epoch"], "step": entry.get("step"),
             **{key.removeprefix("eval_"): value for key, value in entry.items()
                if key.startswith("eval_") and not key.endswith(skip)}}
            for entry in trainer.state.log_history if f"eval_{main_metric}" in entry]


class SaveEverySteps(TrainerCallback):
    """A checkpoint every N steps on top of the epoch-end ones. The Trainer's own ``save_strategy="steps"``
    would force evaluation at the same steps to keep best-model selection; this keeps it per epoch."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.steps == 0:
            control.should_save = True
        return control



def callbacks(options: TrainingOptions, evaluate: bool = True) -> list:
    """Mid-epoch checkpoints, early stopping when the run evaluates, then the divergence stop (after the callbacks
    that ask for saves, so that it can cancel them) and the complete-checkpoint marker (last: it records the
    files the others wrote)."""
    chosen: list = [SaveEverySteps(options.save_steps)]
    if options.early_stopping_patience and evaluate:
        chosen.append(EarlyStoppingCallback(early_stopping_patience=options.early_stopping_patience))
    return [*chosen, NonFiniteGuard(), MarkCompleteCheckpoints()]


def checkpoint_to_resume(options: TrainingOptions) -> str | None:
    """The newest complete ``checkpoint-N`` of an interrupted run in the output directory, if resuming."""
    output = Path(options.output)
    if not options.resume or not output.is_dir():
        return None
    found = newest_complete_checkpoint(output)
    return str(found) if found else None


def remove_checkpoints(options: TrainingOptions) -> None:
    if not options.keep_checkpoints:
        remove_all(Path(options.output))


def train_resuming(trainer, options: TrainingOptions, restore=None):
    """``trainer.train`` from the newest complete checkpoint of an interrupted run (``restore(checkpoint)``
    first brings back state kept outside the Trainer). A run whose loss became non-finite, or whose trained
    weights are, stops with one line; its checkpoints are removed (resuming would start from diverged weights)
    and nothing is saved. Returns the train output and the checkpoint resumed from (or None)."""
    checkpoint = checkpoint_to_resume(options)
    if checkpoint:
        print(f"resuming from {checkpoint}")
        if restore is not None:
            restore(checkpoint)
    try:
        result = trainer.train(resume_from_checkpoint=checkpoint)
        failure = diverged(trainer, result)
    except NonFiniteError as error:  # a save refused by GuardedTrainer._save
        failure = str(error)
    if failure:
        remove_all(Path(options.output))
        raise NonFiniteError(failure if "nothing was saved" in failure else
                             f"{failure}; nothing was saved (try a lower --learning-rate)")
    return result, checkpoint


def diverged(trainer, result) -> str | None:
    """Why a finished ``trainer.train`` must not be saved: a non-finite step loss or gradient, a non-finite mean
    training loss, or non-finite trained weights (a NaN that appeared after the last check)."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, NonFiniteGuard) and callback.failure:
            return callback.failure
    weights = describe_non_finite(trainer.model)
    if weights:
        return f"the trained weights are non-finite after step {trainer.state.global_step} ({weights})"
    if result.training_loss is not None and not math.isfinite(result.training_loss):
        return f"the mean training loss is {result.training_loss} after step {trainer.state.global_step}"
    return None
