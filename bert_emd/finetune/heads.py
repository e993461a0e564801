"""Fine-tuning for the task kinds beyond one label per example (token and span tasks): the training, saving and
reporting they share, given what differs (the model with its new head, the datasets, the collator, the dev score)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bert_emd.runinfo import run_record, write_json


@dataclass
class HeadRun:
    model: object  # the pre-trained model with the task's new head
    train: object  # the training dataset (model columns)
    dev: object | None  # the dev dataset the Trainer scores, or None
    collator: object
    metrics: Callable | None  # the Trainer's compute_metrics
    counted: str  # what the training set counts, as results name it (sentences, windows)
    score: Callable  # model -> the dev entry of eval_results.json
    describe: Callable  # dev entry -> printed lines
    saved: str  # what is written, as the last line names it
    training_arguments: dict  # extra TrainingArguments (e.g. label_names)


def finetune_head(config, task, tokenizer, run: HeadRun) -> dict:
    """Train with the divergence stop and resume, keep the best dev checkpoint, score it, write the records."""
    from bert_emd.training import (
        GuardedTrainer,
        callbacks,
        dev_history,
        remove_checkpoints,
        train_resuming,
        training_arguments,
    )

    evaluates = run.dev is not None
    trainer = GuardedTrainer(model=run.model, args=training_arguments(config, "f1" if evaluates else None,
                                                                      **run.training_arguments),
                             train_dataset=run.train, eval_dataset=run.dev, data_collator=run.collator,
                             processing_class=tokenizer, compute_metrics=run.metrics if evaluates else None,
                             callbacks=callbacks(config))
    result, checkpoint = train_resuming(trainer, config)
    trainer.save_model(config.output)
    if not trainer.is_world_process_zero():
        return {}
    results = {"task": task.name, "kind": task.kind, "model": config.model, "main_metric": "f1",
               "train": {"runtime_s": result.metrics.get("train_runtime"), "steps": result.global_step,
                         "loss": result.training_loss, run.counted: len(run.train), "resumed_from": checkpoint,
                         "dev_per_epoch": dev_history(trainer, "f1") if evaluates else []},
               "splits": {}}
    if evaluates:
        results["splits"]["dev"] = run.score(trainer.model)
        print(run.describe(results["splits"]["dev"]))
    write_json(f"{config.output}/eval_results.json", results)
    write_json(f"{config.output}/run_config.json", run_record("finetune", config, task=task.name))
    remove_checkpoints(config)
    print(f"{run.saved}, tokenizer, eval_results.json and run_config.json written to {config.output}")
    return results
