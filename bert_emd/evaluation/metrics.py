"""Task metrics (scikit-learn / scipy) and the loyalty of a model to its teacher (Xu et al., 2021)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.special import softmax
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, mean_squared_error

from bert_emd.data.tasks import TaskSpec


def predictions_from_logits(task: TaskSpec, logits: np.ndarray) -> np.ndarray:
    """Class index per example, or the regression output."""
    logits = np.asarray(logits)
    if task.is_regression:
        return logits.reshape(-1)
    return logits.argmax(axis=-1)


def compute_metrics(task: TaskSpec, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Every metric of the task, keyed by name (``accuracy``, ``f1``, ``matthews_correlation`` ...)."""
    predictions = predictions_from_logits(task, logits)
    labels = np.asarray(labels)
    scorers = {
        "accuracy": lambda: accuracy_score(labels, predictions),
        "f1": lambda: f1_score(labels, predictions, average="binary"),
        "macro_f1": lambda: f1_score(labels, predictions, average="macro"),
        "matthews_correlation": lambda: matthews_corrcoef(labels, predictions),
        "pearson": lambda: correlation(pearsonr, predictions, labels),
        "spearman": lambda: correlation(spearmanr, predictions, labels),
        "mse": lambda: mean_squared_error(labels, predictions),
    }
    return {name: float(scorers[name]()) for name in task.metrics}


def constant_prediction(task: TaskSpec, logits: np.ndarray, labels: np.ndarray) -> dict | None:
    """What a model that gives the same answer for every example gives (``{"label": i}`` or ``{"value": x}``),
    where the gold labels are not all the same; None otherwise. Such a model scores as a constant guess does (that
    class's share as accuracy, correlations 0): its row in a table says nothing about its method."""
    predictions, labels = predictions_from_logits(task, logits), np.asarray(labels)
    if len(predictions) < 2 or len(np.unique(labels)) < 2:
        return None
    if task.is_regression:
        spread = float(np.std(predictions))
        return {"value": float(np.mean(predictions))} if spread <= 1e-6 * float(np.std(labels)) else None
    return {"label": int(predictions[0])} if len(np.unique(predictions)) == 1 else None


def constant_prediction_note(task: TaskSpec, constant: dict, unit: str = "example") -> str:
    """One line on a model that answers the same for every example (``constant_prediction`` of a results entry);
    ``unit``: what gets one answer (a tagger's: word)."""
    if "label" in constant:
        names = task.labels
        label = names[constant["label"]] if constant["label"] < len(names) else constant["label"]
        answer = f"class {label!r} for every {unit}: it scores as that constant guess does"
    else:
        answer = f"{constant['value']:.4g} for every {unit}: its correlations are 0"
    return (f"the model predicts {answer} (of a trained model: training did not move it from a constant; too low "
            "a learning rate, too few steps, or a frozen part that decides the output)")


def correlation(method, first: np.ndarray, second: np.ndarray) -> float:
    """Pearson or Spearman correlation; 0.0 where it is undefined (a constant side, e.g. a model that predicts
    one value for every example), as scikit-learn's Matthews correlation does, instead of NaN."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if len(first) < 2 or np.ptp(first) == 0 or np.ptp(second) == 0:
        return 0.0
    return float(method(first, second)[0])


def loyalty(task: TaskSpec, student_logits: np.ndarray, teacher_logits: np.ndarray) -> dict[str, float]:
    """How closely a model follows its teacher.

    Classification: ``label_loyalty`` = share of examples where both predict the same class;
    ``probability_loyalty`` = mean over examples of ``1 - sqrt(JS(p_teacher, p_student))``, with the
    Jensen-Shannon divergence in base 2 so that it lies in [0, 1].
    Regression (no distributions): Pearson correlation and mean squared difference of the outputs.
    """
    student_logits, teacher_logits = np.asarray(student_logits), np.asarray(teacher_logits)
    if task.is_regression:
        student, teacher = student_logits.reshape(-1), teacher_logits.reshape(-1)
        return {"output_pearson": correlation(pearsonr, student, teacher),
                "output_mse": float(np.mean((student - teacher) ** 2))}
    label = float(np.mean(student_logits.argmax(-1) == teacher_logits.argmax(-1)))
    return {"label_loyalty": label,
            "probability_loyalty": probability_loyalty(softmax(teacher_logits, -1), softmax(student_logits, -1))}


def probability_loyalty(teacher_probs: np.ndarray, student_probs: np.ndarray) -> float:
    """Mean of ``1 - sqrt(JS divergence)``; scipy's ``jensenshannon`` already returns the square root."""
    with np.errstate(invalid="ignore"):  # rounding can make the divergence a hair below 0 for equal inputs
        distances = jensenshannon(teacher_probs, student_probs, axis=-1, base=2)
    return float(np.mean(1.0 - np.nan_to_num(distances, nan=0.0)))
