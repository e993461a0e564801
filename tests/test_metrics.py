"""Metrics and loyalty against computations written out here from their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bert_emd.data import get_task
from bert_emd.evaluation.metrics import (
    compute_metrics,
    constant_prediction,
    constant_prediction_note,
    loyalty,
    probability_loyalty,
)


def _confusion(labels, predictions):
    tp = sum(1 for y, p in zip(labels, predictions) if y == 1 and p == 1)
    tn = sum(1 for y, p in zip(labels, predictions) if y == 0 and p == 0)
    fp = sum(1 for y, p in zip(labels, predictions) if y == 0 and p == 1)
    fn = sum(1 for y, p in zip(labels, predictions) if y == 1 and p == 0)
    return tp, tn, fp, fn


def _logits_for(predictions, classes=2):
    return np.eye(classes)[predictions] * 3.0


def test_classification_metrics_by_hand():
    labels = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
    predictions = [1, 0, 0, 1, 1, 0, 1, 0, 1, 0]
    tp, tn, fp, fn = _confusion(labels, predictions)
    mrpc = compute_metrics(get_task("mrpc"), _logits_for(predictions), np.array(labels))
    assert mrpc["accuracy"] == pytest.approx((tp + tn) / len(labels))
    assert mrpc["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    cola = compute_metrics(get_task("cola"), _logits_for(predictions), np.array(labels))
    mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert cola["matthews_correlation"] == pytest.approx(mcc)


def test_regression_metrics_by_hand():
    labels = np.array([0.0, 1.0, 2.5, 4.0, 5.0, 3.0])
    outputs = np.array([0.5, 1.2, 2.0, 3.1, 4.8, 3.9])
    scores = compute_metrics(get_task("stsb"), outputs.reshape(-1, 1), labels)
    x, y = outputs - outputs.mean(), labels - labels.mean()
    assert scores["pearson"] == pytest.approx((x @ y) / math.sqrt((x @ x) * (y @ y)))
    ranks_out, ranks_lab = outputs.argsort().argsort(), labels.argsort().argsort()  # no ties here
    n = len(labels)
    d2 = float(((ranks_out - ranks_lab) ** 2).sum())
    assert scores["spearman"] == pytest.approx(1 - 6 * d2 / (n * (n * n - 1)))


def _js_base2(p, q):
    m = (p + q) / 2

    def kl(a, b):
        return sum(x * math.log2(x / y) for x, y in zip(a, b) if x > 0)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def test_probability_loyalty_by_hand():
    teacher = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    student = np.array([[0.6, 0.4], [0.2, 0.8], [0.1, 0.9]])
    expected = np.mean([1 - math.sqrt(_js_base2(t, s)) for t, s in zip(teacher, student)])
    assert probability_loyalty(teacher, student) == pytest.approx(expected)
    assert probability_loyalty(teacher, teacher) == pytest.approx(1.0)
    assert probability_loyalty(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(0.0)


def test_label_loyalty_and_identity():
    teacher_logits = np.log(np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]]))
    student_logits = np.log(np.array([[0.8, 0.2], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]]))
    result = loyalty(get_task("sst2"), student_logits, teacher_logits)
    assert result["label_loyalty"] == pytest.approx(3 / 4)
    same = loyalty(get_task("sst2"), teacher_logits, teacher_logits)
    assert same == pytest.approx({"label_loyalty": 1.0, "probability_loyalty": 1.0})


def test_a_constant_answer_is_named_and_a_varied_one_is_not():
    sst2, stsb = get_task("sst2"), get_task("stsb")
    labels = np.array([0, 1, 1, 0, 1])
    assert constant_prediction(sst2, _logits_for([1, 1, 1, 1, 1]), labels) == {"label": 1}
    assert constant_prediction(sst2, _logits_for([1, 1, 0, 1, 1]), labels) is None
    # gold labels that are all one class: a constant answer may be right, nothing to flag
    assert constant_prediction(sst2, _logits_for([1, 1, 1]), np.array([1, 1, 1])) is None
    scores = np.array([0.5, 4.0, 2.5, 1.0])
    assert constant_prediction(stsb, np.full((4, 1), 2.25), scores) == {"value": pytest.approx(2.25)}
    assert constant_prediction(stsb, np.array([[2.25], [2.26], [2.25], [2.25]]), scores) is None
    assert "predicts class '1' for every example" in constant_prediction_note(sst2, {"label": 1})
    assert "predicts 2.25 for every example: its correlations are 0" in constant_prediction_note(stsb, {"value": 2.25})
