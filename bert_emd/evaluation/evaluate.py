"""`bert-emd evaluate`: every metric of a task, and loyalty to a teacher when one is given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding

from bert_emd.data.loading import (
    UNLABELLED,
    DataOptions,
    dev_data_options,
    expand_split,
    load_split,
    resolve_task,
    tokenize,
)
from bert_emd.data.tasks import TaskSpec
from bert_emd.errors import BertEmdError
from bert_emd.evaluation.metrics import compute_metrics, constant_prediction, constant_prediction_note, loyalty
from bert_emd.finite import NonFiniteError
from bert_emd.models import label_names_of, load_config, load_tokenizer, load_trained_classifier
from bert_emd.options import option, resolve_config
from bert_emd.outputs import check_output_file
from bert_emd.runinfo import write_json


@dataclass
class EvaluateConfig(DataOptions):
    model: str | None = option(None, "model directory (or hub id) to evaluate (required)")
    split: str = option("dev", "split to score: dev (MNLI: both dev sets), train, dev_matched, dev_mismatched")
    teacher: str | None = option(None, "teacher model: also report its metrics and the model's loyalty to it")
    output: str | None = option(None, "write the results to this JSON file")
    batch_size: int = option(64, "evaluation batch size", at_least=1)
    attack: str | None = option(None, "also attack the model (and --teacher) on this split with `bert-emd attack`'s "
                                "defaults; its outputs go to this directory, its summary into the results")
    attack_options: dict | None = option(None, "config file only: `bert-emd attack` options for --attack (e.g. "
                                         "{max_examples: 200, vectors: FILE})", cli=False)


def predict_logits(model, tokenizer, dataset, batch_size: int = 64, description: str = "Predicting",
                   forward=None) -> np.ndarray:
    """Logits for every example of a tokenised dataset, in order (batches padded dynamically); ``forward``
    (batch -> tensor with the examples first) replaces ``model(**batch).logits``."""
    collator = DataCollatorWithPadding(tokenizer)
    features = dataset.remove_columns([c for c in dataset.column_names if c in ("labels", "idx")])
    loader = DataLoader(features, batch_size=batch_size, collate_fn=collator)
    device = next(model.parameters()).device
    model.eval()
    outputs = []
    with torch.inference_mode():
        for batch in tqdm(loader, desc=description, leave=False):
            batch = {key: value.to(device) for key, value in batch.items()}
            logits = forward(batch) if forward is not None else model(**batch).logits
            outputs.append(logits.float().cpu().numpy())
    logits = np.concatenate(outputs)
    bad = ~np.isfinite(logits.reshape(len(logits), -1)).all(axis=1)
    if bad.any():
        raise NonFiniteError(f"the model's outputs are NaN or inf on {int(bad.sum())} of {len(logits)} examples "
                             f"({description.lower()}, first at example {int(np.flatnonzero(bad)[0])}): its scores "
                             "would mean nothing")
    return logits


def score_split(task: TaskSpec, dataset, logits: np.ndarray, split: str) -> dict[str, float]:
    return compute_metrics(task, logits, split_labels(task, dataset, split))


def split_labels(task: TaskSpec, dataset, split: str) -> np.ndarray:
    labels = np.asarray(list(dataset["label"]))
    if not task.is_regression and (labels == UNLABELLED).any():
        raise BertEmdError(f"the {split} split has no labels to score against; use `bert-emd predict` for it")
    return labels


def evaluate_models(task: TaskSpec, data: DataOptions, split: str, model, tokenizer, teacher=None,
                    teacher_tokenizer=None, batch_size: int = 64) -> dict:
    """Metrics (and loyalty to ``teacher``) on every split that ``split`` names."""
    results = {}
    for name in expand_split(task, split):
        raw = load_split(task, data, name)
        logits = predict_logits(model, tokenizer, tokenize(raw, tokenizer, data.max_length), batch_size,
                                f"Scoring {name}")
        labels = split_labels(task, raw, name)
        entry = {"num_examples": len(raw), "metrics": compute_metrics(task, logits, labels)}
        constant = constant_prediction(task, logits, labels)
        if constant is not None:
            entry["constant_prediction"] = constant
        if teacher is not None:
            teacher_logits = predict_logits(
                teacher, teacher_tokenizer, tokenize(raw, teacher_tokenizer, data.max_length), batch_size,
                f"Teacher on {name}")
            entry["teacher_metrics"] = score_split(task, raw, teacher_logits, name)
            entry["loyalty"] = loyalty(task, logits, teacher_logits)
        results[name] = entry
    return results


def format_results(task: TaskSpec, results: dict, reference: str = "teacher") -> str:
    """Readable lines of ``evaluate_models`` results; ``reference`` names the model compared against."""
    lines = []
    for split, entry in results.items():
        parts = [f"{name}={value:.4f}" for name, value in entry["metrics"].items()]
        lines.append(f"{task.display_name} {split} ({entry['num_examples']} examples): {'  '.join(parts)}")
        if "constant_prediction" in entry:
            lines.append(f"  warning: {constant_prediction_note(task, entry['constant_prediction'])}")
        if "teacher_metrics" in entry:
            teacher = "  ".join(f"{name}={value:.4f}" for name, value in entry["teacher_metrics"].items())
            lines.append(f"  {reference}: {teacher}")
            lines.append("  loyalty: " + "  ".join(f"{k}={v:.4f}" for k, v in entry["loyalty"].items()))
    return "\n".join(lines)


def evaluate(config: EvaluateConfig | str | dict | None = None, **overrides) -> dict:
    """Score a model on a task split; see ``EvaluateConfig`` for the options."""
    config = resolve_config(EvaluateConfig, config, overrides)
    if not config.model:
        raise BertEmdError("--model is required (the model directory to evaluate)")
    if config.output:
        check_output_file(config.output)
    model_config = load_config(config.model)
    task = resolve_task(config, model_labels=label_names_of(model_config))
    from bert_emd.attack.config import check_attack_overrides

    check_attack_overrides(config.attack_options, "attack_options", "evaluate")
    if config.attack_options is not None and not config.attack:
        raise BertEmdError("attack_options apply to --attack DIR, which is not given")
    if config.attack and (task.kind != "sequence" or task.is_regression):
        raise BertEmdError(f"--attack flips labels of a classifier; {task.display_name} is "
                           + ("a regression task" if task.is_regression else f"a {task.kind} task"))
    if task.kind == "token":
        from bert_emd.tokens.run import evaluate_tokens

        return evaluate_tokens(config, task)
    if task.kind == "span":
        from bert_emd.spans.run import evaluate_spans

        return evaluate_spans(config, task)
    model = load_trained_classifier(config.model, task)
    tokenizer = load_tokenizer(config.model, config.max_length)
    teacher = teacher_tokenizer = None
    if config.teacher:
        teacher = load_trained_classifier(config.teacher, task, role="teacher")
        teacher_tokenizer = load_tokenizer(config.teacher, config.max_length)
    results = evaluate_models(task, config, config.split, model, tokenizer, teacher, teacher_tokenizer,
                              config.batch_size)
    summary = {"task": task.name, "model": config.model, "teacher": config.teacher, "main_metric": task.main_metric,
               "splits": results}
    print(format_results(task, results))
    if config.attack:
        from bert_emd.attack import attack

        data = dev_data_options(config, "max_length")
        split = task.eval_splits[0] if config.split == "dev" else config.split  # MNLI's "dev": dev_matched
        attacked = attack(**{"split": split, **data, **(config.attack_options or {})}, model=config.model,
                          teacher=config.teacher, output=config.attack)
        summary["attack"] = {"output": config.attack, "attack": attacked["attack"], "models": attacked["models"],
                             **({"transfer": attacked["transfer"]} if "transfer" in attacked else {})}
    if config.output:
        write_json(config.output, summary)
        print(f"results written to {config.output}")
    return summary
