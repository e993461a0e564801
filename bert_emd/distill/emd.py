"""The Earth Mover's Distance layer mapping of BERT-EMD (Li et al., EMNLP 2020), usable on its own.

A layer mapping is a flow matrix ``F`` (N student layers x M teacher layers) and the layer loss is
``sum_ij F[i, j] * D[i, j]`` where ``D[i, j]`` is the MSE between student layer i and teacher layer
j. EMD computes ``F`` each step as the optimal transport between the layer weights; the fixed
baselines (skip, last) supply it. Cost attention then learns the layer weights from the cost each
layer carries.
"""

from __future__ import annotations

import numpy as np
import ot

from bert_emd.distill.mappings import MAPPINGS, FixedMapping, get_mapping  # noqa: F401 (MAPPINGS: the names)


def solve_transport(cost: np.ndarray, student_weights: np.ndarray, teacher_weights: np.ndarray) -> np.ndarray:
    """Exact optimal transport (POT's network simplex) on the N x M problem.

    Finds ``F >= 0`` with row sums ``student_weights`` and column sums ``teacher_weights`` that
    minimises ``sum F * cost``. Both weight vectors are renormalised to sum to 1 in float64.
    """
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    if not np.isfinite(cost).all():
        raise ValueError("the cost matrix holds NaN or inf: no transport to solve")
    a = np.asarray(student_weights, dtype=np.float64)
    b = np.asarray(teacher_weights, dtype=np.float64)
    return ot.emd(a / a.sum(), b / b.sum(), cost)


def normalise_weights(weights: np.ndarray, method: str, temperature: float = 1.0) -> np.ndarray:
    """``softmax(w / T)`` (the paper's code) or ``w / sum(w)`` (the authors' later code)."""
    weights = np.asarray(weights, dtype=np.float64)
    if method == "softmax":
        scaled = weights / temperature
        scaled = np.exp(scaled - scaled.max())
        return scaled / scaled.sum()
    if method == "sum":
        return weights / weights.sum()
    raise ValueError(f"unknown weight normalisation '{method}' (softmax or sum)")


def inverse_cost_weights(flow: np.ndarray, cost: np.ndarray, student_weights: np.ndarray,
                         teacher_weights: np.ndarray, eps: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """The cost attention's layer weights before normalisation.

    Student layer i carries ``c_i = sum_j F[i, j] * D[i, j] / w_S[i]`` per unit of weight and gets
    ``w_S[i] = sum_k c_k / c_i`` (a layer that is cheap to transport gets more weight); teacher
    layers likewise over columns. A layer with weight exactly 0 carries no flow; its unit cost is
    taken as its mean distance.
    """
    carried = flow * cost

    def unit_cost(carried_sum, weights, mean_distance):
        weights = np.asarray(weights, dtype=np.float64)
        safe = np.where(weights > 0, weights, 1.0)
        return np.maximum(np.where(weights > 0, carried_sum / safe, mean_distance), eps)

    student_cost = unit_cost(carried.sum(axis=1), student_weights, cost.mean(axis=1))
    teacher_cost = unit_cost(carried.sum(axis=0), teacher_weights, cost.mean(axis=0))
    return student_cost.sum() / student_cost, teacher_cost.sum() / teacher_cost


def cost_attention_update(flow: np.ndarray, cost: np.ndarray, student_weights: np.ndarray,
                          teacher_weights: np.ndarray, method: str = "softmax", temperature: float = 1.0,
                          eps: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """New layer weights from the transport cost each layer carries: ``inverse_cost_weights``, then both
    vectors normalised (``normalise_weights``)."""
    new_student, new_teacher = inverse_cost_weights(flow, cost, student_weights, teacher_weights, eps)
    return normalise_weights(new_student, method, temperature), normalise_weights(new_teacher, method, temperature)


def _fixed(mapping: str) -> FixedMapping:
    chosen = get_mapping(mapping)
    if not isinstance(chosen, FixedMapping):
        raise ValueError(f"no fixed layers for mapping '{mapping}'")
    return chosen


def fixed_teacher_layers(mapping: str, student_layers: int, teacher_layers: int) -> list[int]:
    """1-based teacher layer that each student layer learns from under a fixed mapping (``bert_emd.distill.mappings``).

    ``skip`` (TinyBERT uniform): student layer i <- teacher layer ceil(i * M / N), so the top student
    layer learns the top teacher layer; ``last`` (PKD-last): the top N teacher layers.
    """
    return _fixed(mapping).teacher_layers(student_layers, teacher_layers)


def fixed_flow(mapping: str, student_layers: int, teacher_layers: int) -> np.ndarray:
    """The flow matrix of a fixed mapping: mass 1/N from each student layer to its one teacher layer."""
    return _fixed(mapping).fixed_flow(student_layers, teacher_layers)

