"""finetune, evaluate and distill for extractive question answering (``--task squad``, ``squad_v2``, ``span``).

The layer terms of distillation are per token and stay as they are. The prediction loss treats the start and the
end of the answer as two distributions over the window's tokens: padding is masked out of both models' logits
first (the question-answering heads do not mask it), then the soft cross-entropy at temperature T (x T^2) of start
and of end, averaged; the gold part (1 - alpha) is (CE(start) + CE(end)) / 2 on the masked student logits. Scores:
SQuAD exact match and F1 over questions (answers read over all windows of a question); loyalty: the student's
exact match and F1 against the teacher's answers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import AutoModelForQuestionAnswering, DataCollatorWithPadding, set_seed

from bert_emd.distill.distiller import Distiller
from bert_emd.errors import BertEmdError
from bert_emd.finite import NonFiniteError
from bert_emd.models import check_finite_weights, load_config, load_pretrained
from bert_emd.runinfo import write_json
from bert_emd.spans.answers import gold_answers, read_answers, squad_scores
from bert_emd.spans.load import doc_stride, load_questions
from bert_emd.spans.windows import encode_windows, model_inputs

LABEL_NAMES = ["start_positions", "end_positions"]


def load_span_reader(name: str, task, role: str = "model", **kwargs):
    """A fine-tuned question-answering model as saved."""
    config = load_config(name)
    if not any(arch.endswith("ForQuestionAnswering") for arch in (config.architectures or [])):
        raise BertEmdError(f"{role} '{name}' has no question-answering head (architectures: "
                           f"{', '.join(config.architectures or ['none recorded'])}); fine-tune it first with "
                           f"`bert-emd finetune --task {task.name}`")
    model = load_pretrained(AutoModelForQuestionAnswering, name, "a model", **kwargs)
    check_finite_weights(model, name, role)
    return model


def span_windows(task, options, split: str, tokenizer, training: bool):
    questions = load_questions(task, options, split)
    return questions, encode_windows(questions, tokenizer, options.max_length, doc_stride(options), training)


def window_logits(model, tokenizer, windows, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits of every window, padded to one length."""
    loader = DataLoader(model_inputs(windows, with_positions=False), batch_size=batch_size,
                        collate_fn=DataCollatorWithPadding(tokenizer))
    starts, ends = [], []
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            output = model(**batch)
            starts.append(output.start_logits.float().numpy())
            ends.append(output.end_logits.float().numpy())
    width = max(part.shape[1] for part in starts)
    start, end = (np.concatenate([np.pad(part, ((0, 0), (0, width - part.shape[1]))) for part in parts])
                  for parts in (starts, ends))
    lengths = [len(ids) for ids in windows["input_ids"]]
    if not all(np.isfinite(start[i, :n]).all() and np.isfinite(end[i, :n]).all() for i, n in enumerate(lengths)):
        raise NonFiniteError("the model's outputs are NaN or inf: its answers would mean nothing")
    return start, end


def answers_of(task, questions, windows, start, end) -> dict[str, str]:
    return read_answers(questions, windows["example_index"], windows["offset_mapping"], start, end,
                        null_threshold=0.0 if task.unanswerable else None)


def score_spans(task, options, split: str, model, tokenizer, teacher=None, batch_size: int = 64) -> dict:
    questions, windows = span_windows(task, options, split, tokenizer, training=False)
    answers = answers_of(task, questions, windows, *window_logits(model, tokenizer, windows, batch_size))
    entry = {"num_examples": len(questions), "num_windows": len(windows),
             "metrics": squad_scores(answers, gold_answers(questions))}
    if teacher is not None:
        taught = answers_of(task, questions, windows, *window_logits(teacher, tokenizer, windows, batch_size))
        entry["teacher_metrics"] = squad_scores(taught, gold_answers(questions))
        loyalty = squad_scores(answers, {identifier: [answer] for identifier, answer in taught.items()})
        entry["loyalty"] = {"answer_exact_match": loyalty["exact_match"], "answer_f1": loyalty["f1"]}
    return entry


def format_span_results(task, split: str, entry: dict) -> str:
    metrics = entry["metrics"]
    lines = [f"{task.display_name} {split} ({entry['num_examples']} questions, {entry['num_windows']} windows): "
             + "  ".join(f"{name}={value:.4f}" for name, value in metrics.items())]
    if "teacher_metrics" in entry:
        lines.append(f"  teacher: f1={entry['teacher_metrics']['f1']:.4f}  "
                     f"exact_match={entry['teacher_metrics']['exact_match']:.4f}")
        lines.append("  loyalty: " + "  ".join(f"{k}={v:.4f}" for k, v in entry["loyalty"].items()))
    return "\n".join(lines)


def trainer_metrics(task, questions, windows):
    """The Trainer's dev score: answers read from the predicted logits of the dev windows (in order)."""
    def compute(prediction) -> dict:
        logits = prediction.predictions
        start, end = (logits[0], logits[1]) if isinstance(logits, tuple) else (logits[..., 0], logits[..., 1])
        return squad_scores(answers_of(task, questions, windows, start, end), gold_answers(questions))
    return compute


class SpanDistiller(Distiller):
    """The Distiller for question-answering heads: start and end logits as the two columns of one [B, L, 2]
    tensor, the prediction loss over the unpadded tokens of each window."""

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, start_positions=None, end_positions=None):
        labels = torch.stack([start_positions, end_positions], -1) if start_positions is not None else None
        return super().forward(input_ids, attention_mask, token_type_ids, labels)

    def _logits(self, output):
        return torch.stack([output.start_logits, output.end_logits], -1)

    def prediction_loss(self, batch):
        logits = batch.student_logits
        counted = (batch.attention_mask.bool() if batch.attention_mask is not None
                   else torch.ones(logits.shape[:2], dtype=torch.bool, device=logits.device))
        return span_prediction_loss(batch.student_logits, batch.teacher_logits, batch.labels, counted, self.alpha,
                                    self.kd_temperature)

    def _hard_loss(self, logits, labels):
        if labels is None:
            return None
        return (F.cross_entropy(logits[..., 0], labels[:, 0]) + F.cross_entropy(logits[..., 1], labels[:, 1])) / 2


def span_prediction_loss(student, teacher, labels, counted, alpha: float, temperature: float):
    """Soft CE of start and end (padding out of both distributions) x T^2, averaged; plus (1 - alpha) gold CE."""
    mask = counted[..., None]  # [B, L, 1] over both columns
    t = temperature
    teacher_p = F.softmax((teacher / t).masked_fill(~mask, float("-inf")), dim=1)
    student_log_p = F.log_softmax((student / t).masked_fill(~mask, float("-inf")), dim=1)
    soft = -torch.where(mask, teacher_p * student_log_p, 0.0).sum(1).mean() * t * t  # mean over windows and ends
    if alpha >= 1.0 or labels is None:
        return soft
    masked = student.masked_fill(~mask, float("-inf"))
    gold = (F.cross_entropy(masked[..., 0], labels[:, 0]) + F.cross_entropy(masked[..., 1], labels[:, 1])) / 2
    return alpha * soft + (1.0 - alpha) * gold


def distill_parts(config, task, teacher, student, tokenizer):
    """The span pieces of `bert-emd distill`: train windows, dev windows (model columns), the distiller and the
    Trainer's metric."""
    _, train = span_windows(task, config, "train", tokenizer, training=True)
    distiller = SpanDistiller(teacher, student, config)
    if not config.has_dev_set:
        return model_inputs(train), None, distiller, None
    questions, dev = span_windows(task, config, "dev", tokenizer, training=False)
    return model_inputs(train), model_inputs(dev), distiller, trainer_metrics(task, questions, dev)


def finetune_spans(config, task) -> dict:
    """`bert-emd finetune` for a question-answering task."""
    from bert_emd.finetune.heads import HeadRun, finetune_head
    from bert_emd.models import load_tokenizer
    from bert_emd.quiet import expected_new_head
    from bert_emd.training import check_training_options

    check_training_options(config, evaluates=config.has_dev_set)
    tokenizer = load_tokenizer(config.model, config.max_length)
    _, train = span_windows(task, config, "train", tokenizer, training=True)
    questions, dev = (span_windows(task, config, "dev", tokenizer, training=False) if config.has_dev_set
                      else (None, None))
    set_seed(config.seed)
    with expected_new_head():
        model = load_pretrained(AutoModelForQuestionAnswering, config.model, "a model")
    return finetune_head(config, task, tokenizer, HeadRun(
        model, model_inputs(train), model_inputs(dev) if dev is not None else None, DataCollatorWithPadding(tokenizer),
        trainer_metrics(task, questions, dev) if dev is not None else None, "windows",
        score=lambda trained: score_spans(task, config, "dev", trained, tokenizer, batch_size=config.eval_batch_size),
        describe=lambda entry: format_span_results(task, "dev", entry), saved="question-answering model",
        training_arguments={"label_names": LABEL_NAMES}))


def predict_spans(config, task, model, tokenizer, output) -> list:
    """`bert-emd predict` for a question-answering task: ``OUTPUT/<split>_predictions.json``, {question id:
    answer text} as SQuAD's evaluation script reads it (an empty answer: no answer, SQuAD v2.0)."""
    import json

    from bert_emd.outputs import make_directory

    if config.split not in ("train", "dev", "test"):
        raise BertEmdError(f"unknown split '{config.split}' for {task.display_name}; use one of train, dev, test")
    questions = load_questions(task, config, config.split)
    windows = encode_windows(questions, tokenizer, config.max_length, doc_stride(config), training=False)
    answers = answers_of(task, questions, windows, *window_logits(model, tokenizer, windows, config.batch_size))
    make_directory(output)  # once the split has read: a bad split or file leaves nothing behind
    path = output / f"{config.split}_predictions.json"
    path.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{task.display_name} {config.split}: answers to {len(questions)} questions written to {path}")
    return [path]


def evaluate_spans(config, task) -> dict:
    """`bert-emd evaluate` for a question-answering task: SQuAD scores on a split, loyalty to ``--teacher``."""
    from bert_emd.models import load_tokenizer
    from bert_emd.outputs import check_output_file

    if config.output:
        check_output_file(config.output)
    model = load_span_reader(config.model, task)
    tokenizer = load_tokenizer(config.model, config.max_length)
    teacher = load_span_reader(config.teacher, task, role="teacher") if config.teacher else None
    if config.split not in ("dev", "train"):
        raise BertEmdError(f"--split {config.split}: a question-answering task is scored on dev or train "
                           "(the split needs answers)")
    entry = score_spans(task, config, config.split, model, tokenizer, teacher, config.batch_size)
    summary = {"task": task.name, "kind": "span", "model": config.model, "teacher": config.teacher,
               "main_metric": "f1", "splits": {config.split: entry}}
    print(format_span_results(task, config.split, entry))
    if config.output:
        write_json(config.output, summary)
        print(f"results written to {config.output}")
    return summary
