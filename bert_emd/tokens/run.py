"""finetune, evaluate and distill for token-classification tasks (``--task conll2003``, ``--task token``).

The layer terms of distillation are per token already and stay as they are; the prediction loss is the soft
cross-entropy per counted token (the first piece of each labelled word) at temperature T (x T^2), averaged over
counted tokens, plus (1 - alpha) x cross-entropy on the tags with -100 ignored. Scores: entity precision, recall
and F1 (seqeval) and token accuracy; loyalty per counted token.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification, set_seed

from bert_emd.distill.distiller import Distiller
from bert_emd.errors import BertEmdError
from bert_emd.evaluation.metrics import constant_prediction, constant_prediction_note
from bert_emd.finite import NonFiniteError
from bert_emd.models import check_finite_weights, label_names_of, load_config, load_pretrained
from bert_emd.runinfo import write_json
from bert_emd.tokens.data import IGNORED
from bert_emd.tokens.load import load_token_split, token_dataset
from bert_emd.tokens.metrics import entity_metrics, token_loyalty


def load_token_classifier(name: str, task, role: str = "model", **kwargs):
    """A fine-tuned tagger as saved; its head and tags must match the task's."""
    config = load_config(name)
    if not any(arch.endswith("ForTokenClassification") for arch in (config.architectures or [])):
        raise BertEmdError(f"{role} '{name}' has no token-classification head (architectures: "
                           f"{', '.join(config.architectures or ['none recorded'])}); fine-tune it first with "
                           f"`bert-emd finetune --task {task.name}`")
    if label_names_of(config) != task.labels:
        raise BertEmdError(f"{role} '{name}' tags ({', '.join(label_names_of(config))}) differ from the task's "
                           f"({', '.join(task.labels)})")
    model = load_pretrained(AutoModelForTokenClassification, name, "a model", **kwargs)
    check_finite_weights(model, name, role)
    return model


def padded_logits(model, tokenizer, dataset, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of every example, padded to one length (labels -100 there)."""
    collator = DataCollatorForTokenClassification(tokenizer)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collator)
    logits, labels = [], []
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            gold = batch.pop("labels")
            logits.append(model(**batch).logits.float().numpy())
            labels.append(gold.numpy())
    width = max(part.shape[1] for part in logits)
    logits = np.concatenate([np.pad(part, ((0, 0), (0, width - part.shape[1]), (0, 0))) for part in logits])
    labels = np.concatenate([np.pad(part, ((0, 0), (0, width - part.shape[1])), constant_values=IGNORED)
                             for part in labels])
    if not np.isfinite(logits[labels != IGNORED]).all():
        raise NonFiniteError("the model's outputs are NaN or inf on the counted tokens: its scores would mean nothing")
    return logits, labels


def score_tokens(task, options, split: str, model, tokenizer, teacher=None, batch_size: int = 64) -> dict:
    sentences = load_token_split(task, options, split)
    dataset = token_dataset(sentences, tokenizer, task, options.max_length)
    logits, labels = padded_logits(model, tokenizer, dataset, batch_size)
    entry = {"num_examples": len(sentences), "metrics": entity_metrics(logits, labels, task.labels)}
    counted = labels != IGNORED
    constant = constant_prediction(task, logits[counted], labels[counted])  # one tag for every word
    if constant is not None:
        entry["constant_prediction"] = constant
    if teacher is not None:
        teacher_logits, _ = padded_logits(teacher, tokenizer, dataset, batch_size)
        entry["teacher_metrics"] = entity_metrics(teacher_logits, labels, task.labels)
        entry["loyalty"] = token_loyalty(logits, teacher_logits, labels)
    return entry


def format_token_results(task, split: str, entry: dict) -> str:
    metrics = entry["metrics"]
    lines = [f"{task.display_name} {split} ({entry['num_examples']} sentences): f1={metrics['f1']:.4f}  "
             f"precision={metrics['precision']:.4f}  recall={metrics['recall']:.4f}  "
             f"token_accuracy={metrics['token_accuracy']:.4f}",
             "  per type F1: " + "  ".join(f"{name}={value:.4f}" for name, value in metrics["per_type_f1"].items())]
    if "constant_prediction" in entry:
        lines.append(f"  warning: {constant_prediction_note(task, entry['constant_prediction'], 'word')}")
    if "teacher_metrics" in entry:
        lines.append(f"  teacher: f1={entry['teacher_metrics']['f1']:.4f}")
        lines.append("  loyalty: " + "  ".join(f"{k}={v:.4f}" for k, v in entry["loyalty"].items()))
    return "\n".join(lines)


def trainer_metrics(task):
    def compute(prediction) -> dict:
        scores = entity_metrics(prediction.predictions, prediction.label_ids, task.labels)
        return {key: value for key, value in scores.items() if key != "per_type_f1"}
    return compute


def finetune_tokens(config, task) -> dict:
    """`bert-emd finetune` for a token task."""
    from bert_emd.finetune.heads import HeadRun, finetune_head
    from bert_emd.models import load_tokenizer
    from bert_emd.quiet import expected_new_head
    from bert_emd.training import check_training_options

    check_training_options(config, evaluates=config.has_dev_set)
    tokenizer = load_tokenizer(config.model, config.max_length)
    train = token_dataset(load_token_split(task, config, "train"), tokenizer, task, config.max_length,
                          config.label_all_tokens)
    dev = token_dataset(load_token_split(task, config, "dev"), tokenizer, task, config.max_length) \
        if config.has_dev_set else None
    set_seed(config.seed)
    with expected_new_head():
        model = load_pretrained(AutoModelForTokenClassification, config.model, "a model", num_labels=len(task.labels),
                                id2label=dict(enumerate(task.labels)),
                                label2id={label: i for i, label in enumerate(task.labels)},
                                ignore_mismatched_sizes=True)
    return finetune_head(config, task, tokenizer, HeadRun(
        model, train, dev, DataCollatorForTokenClassification(tokenizer), trainer_metrics(task), "sentences",
        score=lambda trained: score_tokens(task, config, "dev", trained, tokenizer, batch_size=config.eval_batch_size),
        describe=lambda entry: format_token_results(task, "dev", entry), saved="tagger", training_arguments={}))


def evaluate_tokens(config, task) -> dict:
    """`bert-emd evaluate` for a token task: entity scores on a split, loyalty to ``--teacher``."""
    from bert_emd.models import load_tokenizer
    from bert_emd.outputs import check_output_file

    if config.output:
        check_output_file(config.output)
    model = load_token_classifier(config.model, task)
    tokenizer = load_tokenizer(config.model, config.max_length)
    teacher = load_token_classifier(config.teacher, task, role="teacher") if config.teacher else None
    split = "dev" if config.split == "dev" else config.split
    entry = score_tokens(task, config, split, model, tokenizer, teacher, config.batch_size)
    summary = {"task": task.name, "kind": "token", "model": config.model, "teacher": config.teacher,
               "main_metric": "f1", "splits": {split: entry}}
    print(format_token_results(task, split, entry))
    if config.output:
        write_json(config.output, summary)
        print(f"results written to {config.output}")
    return summary


class TokenDistiller(Distiller):
    """The Distiller with the prediction loss per counted token: the labelled pieces (labels != -100), or with
    ``--count-tokens attention`` every attended token (other pieces, special tokens), padding never."""

    def __init__(self, teacher, student, config):
        super().__init__(teacher, student, config)
        self.count_tokens = config.count_tokens

    def prediction_loss(self, batch):
        counted = batch.attention_mask.bool() if self.count_tokens == "attention" and \
            batch.attention_mask is not None else None
        return self._prediction_loss(batch.student_logits, batch.teacher_logits, batch.labels, counted)

    def _prediction_loss(self, student_logits, teacher_logits, labels, counted=None):
        if counted is None:
            counted = labels != IGNORED
        t = self.kd_temperature
        per_token = -(F.softmax(teacher_logits / t, -1) * F.log_softmax(student_logits / t, -1)).sum(-1)
        soft = per_token[counted].mean() * t * t
        if self.alpha >= 1.0:
            return soft
        return self.alpha * soft + (1.0 - self.alpha) * self._hard_loss(student_logits, labels)

    def _hard_loss(self, logits, labels):
        if labels is None:
            return None
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORED)
