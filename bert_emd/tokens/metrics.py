"""Entity-level scores of a tagger (seqeval, in its default conlleval-compatible mode) and its loyalty to a teacher
per counted token."""

from __future__ import annotations

import numpy as np

from bert_emd.tokens.data import IGNORED


def tag_sequences(logits: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> tuple[list, list]:
    """(gold, predicted) tag sequences over the counted positions (labels != -100) of each example."""
    predicted = logits.argmax(-1)
    gold_sequences, predicted_sequences = [], []
    for gold_row, predicted_row in zip(labels, predicted):
        keep = gold_row != IGNORED
        gold_sequences.append([names[i] for i in gold_row[keep]])
        predicted_sequences.append([names[i] for i in predicted_row[keep]])
    return gold_sequences, predicted_sequences


def entity_metrics(logits: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> dict:
    """Entity precision, recall and F1 (micro over entities), token accuracy, and F1 per entity type."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    gold, predicted = tag_sequences(logits, labels, names)
    counted = [(g, p) for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps)]
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    per_type = {name: round(float(values["f1-score"]), 6) for name, values in report.items()
                if name not in ("micro avg", "macro avg", "weighted avg")}
    return {"f1": float(f1_score(gold, predicted, zero_division=0)),
            "precision": float(precision_score(gold, predicted, zero_division=0)),
            "recall": float(recall_score(gold, predicted, zero_division=0)),
            "token_accuracy": float(np.mean([g == p for g, p in counted])) if counted else 0.0,
            "per_type_f1": per_type}


def token_loyalty(student_logits: np.ndarray, teacher_logits: np.ndarray, labels: np.ndarray) -> dict:
    """Label loyalty (same tag) and probability loyalty (1 - sqrt JS divergence) over the counted tokens."""
    from scipy.spatial.distance import jensenshannon
    from scipy.special import softmax

    keep = labels != IGNORED
    student, teacher = student_logits[keep], teacher_logits[keep]
    label = float(np.mean(student.argmax(-1) == teacher.argmax(-1))) if len(student) else 0.0
    with np.errstate(invalid="ignore"):
        distances = jensenshannon(softmax(teacher, -1), softmax(student, -1), axis=-1, base=2)
    return {"label_loyalty": label, "probability_loyalty": float(np.mean(1.0 - np.nan_to_num(distances, nan=0.0)))}
