"""`bert-emd finetune`: a classifier or regressor on a task, best checkpoint kept by the main metric."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import DataCollatorWithPadding, set_seed

from bert_emd.data.loading import DataOptions, load_split, resolve_task, tokenize
from bert_emd.evaluation.evaluate import evaluate_models, format_results
from bert_emd.evaluation.metrics import compute_metrics
from bert_emd.models import load_classifier_for_task, load_tokenizer
from bert_emd.options import option, resolve_config
from bert_emd.outputs import writes_output
from bert_emd.runinfo import run_record, write_json
from bert_emd.training import (
    GuardedTrainer,
    TrainingOptions,
    callbacks,
    check_training_options,
    dev_history,
    remove_checkpoints,
    train_resuming,
    training_arguments,
)


@dataclass
class FinetuneConfig(TrainingOptions, DataOptions):
    model: str = option("minilm-l6", "model to fine-tune: minilm-l6 (bundled), a local directory or a hub id")


@writes_output("finetune", FinetuneConfig)
def finetune(config: FinetuneConfig | str | dict | None = None, **overrides) -> dict:
    """Fine-tune ``config.model`` on ``config.task`` and write the model, tokenizer and results."""
    config = resolve_config(FinetuneConfig, config, overrides)
    check_training_options(config, evaluates=config.has_dev_set)
    task = resolve_task(config)
    if task.kind == "token":
        from bert_emd.tokens.run import finetune_tokens

        return finetune_tokens(config, task)
    if task.kind == "span":
        from bert_emd.spans.run import finetune_spans

        return finetune_spans(config, task)
    tokenizer = load_tokenizer(config.model, config.max_length)
    train_raw = load_split(task, config, "train")
    eval_split = task.eval_splits[0]
    eval_raw = load_split(task, config, eval_split) if config.has_dev_set else None
    set_seed(config.seed)
    model = load_classifier_for_task(config.model, task)

    trainer = GuardedTrainer(
        model=model,
        args=training_arguments(config, task.main_metric if eval_raw is not None else None),
        train_dataset=tokenize(train_raw, tokenizer, config.max_length, "Tokenising train"),
        eval_dataset=tokenize(eval_raw, tokenizer, config.max_length, "Tokenising dev") if eval_raw else None,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=lambda prediction: compute_metrics(task, prediction.predictions, prediction.label_ids),
        callbacks=callbacks(config),
    )
    train_output, checkpoint = train_resuming(trainer, config)
    trainer.save_model(config.output)
    if not trainer.is_world_process_zero():
        return {}

    results = {"task": task.name, "model": config.model, "main_metric": task.main_metric,
               "train": {"runtime_s": train_output.metrics.get("train_runtime"), "steps": train_output.global_step,
                         "loss": train_output.training_loss, "examples": len(train_raw),
                         "resumed_from": checkpoint, "dev_per_epoch": dev_history(trainer, task.main_metric)},
               "splits": {}}
    if eval_raw is not None:
        results["splits"] = evaluate_models(task, config, "dev", trainer.model, tokenizer,
                                            batch_size=config.eval_batch_size)
        print(format_results(task, results["splits"]))
    write_json(f"{config.output}/eval_results.json", results)
    write_json(f"{config.output}/run_config.json", run_record("finetune", config, task=task.name))
    remove_checkpoints(config)
    print(f"model, tokenizer, eval_results.json and run_config.json written to {config.output}")
    return results

