"""Answers read back from start/end logits, and the SQuAD scores.

Reading (as the SQuAD reference systems do): per question, over all its windows, the ``n_best`` highest start and
end logits of each window give candidate spans; a span must lie in the context (offsets outside it are ignored),
end at or after its start and be at most ``max_answer_length`` tokens long; its score is start + end logit and the
best one wins. For SQuAD v2.0 the no-answer score is the lowest ``[CLS]`` start + end over the windows; the
answer is empty when that score beats the best span's by more than ``null_threshold``.

Scores (SQuAD's evaluation script, in the project's 0-1 scale): answers normalised (lower case, punctuation and
the articles a/an/the removed, white space collapsed); exact match and token F1, each the best over the gold
answers of a question (an unanswerable question's gold answer is the empty string), averaged over questions;
with unanswerable questions among them also the HasAns and NoAns shares.
"""

from __future__ import annotations

import collections
import re
import string

import numpy as np

from bert_emd.spans.data import Question
from bert_emd.spans.windows import OUTSIDE

SPAN_METRICS = ("f1", "exact_match")
PUNCTUATION = frozenset(string.punctuation)


def read_answers(questions: list[Question], example_index, offsets, start_logits: np.ndarray, end_logits: np.ndarray,
                 n_best: int = 20, max_answer_length: int = 30, null_threshold: float | None = None) -> dict[str, str]:
    """{question id: answer text}; ``null_threshold`` None: every question gets a span (SQuAD v1.1)."""
    windows_of = collections.defaultdict(list)
    for window, owner in enumerate(example_index):
        windows_of[owner].append(window)
    answers = {}
    for owner, question in enumerate(questions):
        best_score, best_text, null_score = -np.inf, "", np.inf
        for window in windows_of[owner]:
            spans = offsets[window]
            length = len(spans)
            starts, ends = start_logits[window][:length], end_logits[window][:length]
            null_score = min(null_score, float(starts[0] + ends[0]))
            for i in np.argsort(starts)[::-1][:n_best]:
                if spans[i][0] == OUTSIDE:
                    continue
                for j in np.argsort(ends)[::-1][:n_best]:
                    if spans[j][0] == OUTSIDE or j < i or j - i + 1 > max_answer_length:
                        continue
                    score = float(starts[i] + ends[j])
                    if score > best_score:
                        best_score, best_text = score, question.context[spans[i][0]:spans[j][1]]
        if null_threshold is not None and null_score - best_score > null_threshold:
            best_text = ""
        answers[question.id] = best_text
    return answers


def normalise(text: str) -> str:
    text = "".join(character for character in text.lower() if character not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalise(prediction) == normalise(gold))


def token_f1(prediction: str, gold: str) -> float:
    predicted, wanted = normalise(prediction).split(), normalise(gold).split()
    if not predicted or not wanted:  # an empty answer scores 1 against an empty gold answer only
        return float(predicted == wanted)
    common = sum((collections.Counter(predicted) & collections.Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: dict[str, str], golds: dict[str, list[str]]) -> dict[str, float]:
    """Exact match and F1 over the questions of ``golds`` ({id: gold answers}; [] or [""]: unanswerable)."""
    exact, f1, answerable = [], [], []
    for identifier, answers in golds.items():
        answers = [answer for answer in answers if normalise(answer)] or [""]
        prediction = predictions.get(identifier, "")
        exact.append(max(exact_match(prediction, gold) for gold in answers))
        f1.append(max(token_f1(prediction, gold) for gold in answers))
        answerable.append(answers != [""])
    scores = {"exact_match": float(np.mean(exact)), "f1": float(np.mean(f1))}
    answerable = np.array(answerable)
    if not answerable.all():
        for name, mask in (("has_answer", answerable), ("no_answer", ~answerable)):
            if mask.any():
                scores[f"{name}_exact_match"] = float(np.mean(np.array(exact)[mask]))
                scores[f"{name}_f1"] = float(np.mean(np.array(f1)[mask]))
    return scores


def gold_answers(questions: list[Question]) -> dict[str, list[str]]:
    return {question.id: [answer.text for answer in question.answers] for question in questions}
