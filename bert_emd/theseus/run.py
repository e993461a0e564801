"""`bert-emd theseus`: a fine-tuned teacher -> an n-layer successor by progressive module replacing."""

from __future__ import annotations

import math
import os

from transformers import DataCollatorWithPadding, set_seed

from bert_emd.data.loading import load_split, resolve_task, tokenize
from bert_emd.distill.student import build_student
from bert_emd.errors import BertEmdError
from bert_emd.evaluation.evaluate import evaluate_models, format_results
from bert_emd.evaluation.metrics import compute_metrics
from bert_emd.families import family_of
from bert_emd.finite import refuse_non_finite
from bert_emd.models import check_vocabulary, label_names_of, load_config, load_tokenizer, load_trained_classifier
from bert_emd.options import resolve_config
from bert_emd.outputs import writes_output
from bert_emd.runinfo import run_record, write_json
from bert_emd.theseus.config import TheseusConfig
from bert_emd.theseus.model import ReplacingRate, TheseusModel
from bert_emd.theseus.schedule import ReplacingSchedule
from bert_emd.training import (
    GuardedTrainer,
    callbacks,
    check_training_options,
    dev_history,
    remove_checkpoints,
    train_resuming,
    training_arguments,
)


class TheseusTrainer(GuardedTrainer):
    """Logs the replacing rate p beside the loss (TensorBoard and the log history)."""

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:
            logs["replacing_rate"] = self.model.rate
        super().log(logs, *args, **kwargs)


def check_shape(teacher_layers: int, successor_layers: int) -> None:
    if successor_layers >= teacher_layers:
        raise BertEmdError(f"the successor must have fewer layers than the teacher: --successor-layers "
                           f"{successor_layers} >= {teacher_layers} teacher layers")
    if teacher_layers % successor_layers:
        valid = [n for n in range(1, teacher_layers) if teacher_layers % n == 0]
        raise BertEmdError(f"--successor-layers {successor_layers} does not divide the teacher's {teacher_layers} "
                           f"layers into equal modules; choose one of {', '.join(map(str, valid))}")


def successor_init(init: str, layers: int) -> str:
    """``first`` / ``spaced`` in the terms of distill's --student-init."""
    return {"first": "teacher:" + ",".join(str(i) for i in range(1, layers + 1)), "spaced": "teacher"}.get(init, init)


def planned_steps(examples: int, config: TheseusConfig) -> int:
    per_step = config.batch_size * config.gradient_accumulation * int(os.environ.get("WORLD_SIZE", "1"))
    return max(1, math.ceil(math.ceil(examples / per_step) * config.epochs))


def schedule_of(config: TheseusConfig, total_steps: int) -> ReplacingSchedule:
    replacing = config.replacing_steps if config.replacing_steps is not None else max(1, total_steps // 2)
    return ReplacingSchedule.from_options(config.replacing_rate_schedule, config.replacing_rate, replacing,
                                          config.replacing_rate_start, config.replacing_rate_slope,
                                          config.replacing_steps_to_one, config.replacing_share_to_one, total_steps)


@writes_output("theseus", TheseusConfig)
def theseus(config: TheseusConfig | str | dict | None = None, **overrides) -> dict:
    """Compress ``config.teacher`` into a ``config.successor_layers``-layer successor; see ``TheseusConfig``."""
    config = resolve_config(TheseusConfig, config, overrides)
    check_training_options(config, evaluates=config.has_dev_set)
    if not config.teacher:
        raise BertEmdError("--teacher is required (a fine-tuned teacher directory)")
    if not config.successor_layers:
        raise BertEmdError("--successor-layers is required")
    teacher_config = load_config(config.teacher)
    family_of(teacher_config, "teacher")
    check_shape(teacher_config.num_hidden_layers, config.successor_layers)
    if config.replacing_rate_schedule == "linear":  # one of the three, before anything is loaded
        schedule_of(config, total_steps=1)
    task = resolve_task(config, model_labels=label_names_of(teacher_config))
    teacher = load_trained_classifier(config.teacher, task, role="teacher")
    tokenizer = load_tokenizer(config.teacher, config.max_length)
    set_seed(config.seed)
    init = successor_init(config.successor_init, config.successor_layers)
    successor = build_student(teacher, init, config.successor_layers,
                              attn_implementation=teacher.config._attn_implementation)
    check_vocabulary(tokenizer, successor.config, init, "successor")
    train = tokenize(load_split(task, config, "train"), tokenizer, config.max_length, "Tokenising train")
    eval_raw = load_split(task, config, task.eval_splits[0]) if config.has_dev_set else None
    total = planned_steps(len(train), config)
    schedule = schedule_of(config, total)
    model = TheseusModel(teacher, successor, schedule, config.seed, config.unfreeze)
    evaluate = eval_raw is not None
    trainer = TheseusTrainer(
        model=model,
        args=training_arguments(config, task.main_metric if evaluate else None, ddp_find_unused_parameters=True),
        train_dataset=train,
        eval_dataset=tokenize(eval_raw, tokenizer, config.max_length, "Tokenising dev") if evaluate else None,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=lambda prediction: compute_metrics(task, prediction.predictions, prediction.label_ids),
        callbacks=[ReplacingRate(model), *callbacks(config, evaluate)],
    )
    result, checkpoint = train_resuming(trainer, config)
    if not trainer.is_world_process_zero():
        return {}
    output = config.output
    refuse_non_finite(successor, f"the successor to {output}")
    successor.save_pretrained(output)
    tokenizer.save_pretrained(output)
    steps = result.global_step
    results = {
        "task": task.name, "teacher": config.teacher, "method": "theseus", "main_metric": task.main_metric,
        "successor_layers": config.successor_layers, "successor_init": init,
        "modules": [[layer + 1 for layer in group] for group in model.groups],
        "schedule": {"kind": schedule.kind, "rate": schedule.rate, "replacing_steps": schedule.replacing_steps,
                     "start": schedule.start, "slope": schedule.slope,
                     "successor_alone_from_step": schedule.successor_alone_from(), "planned_steps": total},
        "replacing_rate_per_step": [schedule.rate_at(step) for step in range(steps)],
        "parameters": {"student": sum(p.numel() for p in successor.parameters()),
                       "teacher": sum(p.numel() for p in teacher.parameters())},
        "train": {"runtime_s": result.metrics.get("train_runtime"), "steps": steps, "loss": result.training_loss,
                  "resumed_from": checkpoint},
        "splits": {}}
    if evaluate:
        results["train"]["dev_evaluations"] = dev_history(trainer, task.main_metric)
        results["train"]["best_step"] = trainer.state.best_global_step
        results["splits"] = evaluate_models(task, config, "dev", successor, tokenizer, teacher, tokenizer,
                                            config.eval_batch_size)
        print(format_results(task, results["splits"]))
    write_json(f"{output}/eval_results.json", results)
    write_json(f"{output}/run_config.json", run_record("theseus", config, task=task.name))
    remove_checkpoints(config)
    print(f"{config.successor_layers}-layer successor ({results['parameters']['student']:,} parameters; teacher "
          f"{results['parameters']['teacher']:,}), eval_results.json and run_config.json written to {output}")
    return results
