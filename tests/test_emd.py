"""The EMD pieces against independent computations: an LP solver, hand arithmetic, finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from bert_emd.distill.distances import pairwise_mse, pairwise_score_mse
from bert_emd.distill.emd import (
    cost_attention_update,
    fixed_flow,
    fixed_teacher_layers,
    inverse_cost_weights,
    solve_transport,
)
from bert_emd.distill.layer_loss import LayerMappingLoss, share_weights


def lp_transport(cost, a, b):
    """The transport LP written out for scipy's HiGHS: rows sum to a, columns to b, F >= 0."""
    n, m = cost.shape
    rows = np.zeros((n, n * m))
    cols = np.zeros((m, n * m))
    for i in range(n):
        rows[i, i * m:(i + 1) * m] = 1
    for j in range(m):
        cols[j, j::m] = 1
    result = linprog(cost.ravel(), A_eq=np.vstack([rows, cols]), b_eq=np.concatenate([a, b]), bounds=(0, None),
                     method="highs")
    assert result.status == 0
    return result.x.reshape(n, m), result.fun


@pytest.mark.parametrize("n, m, uniform", [(4, 4, True), (2, 6, True), (4, 12, True), (3, 6, False), (5, 3, False)])
def test_transport_equals_linear_program(n, m, uniform):
    rng = np.random.default_rng(n * 100 + m)
    cost = rng.uniform(0.1, 5.0, size=(n, m))
    a = np.full(n, 1 / n) if uniform else rng.dirichlet(np.ones(n))
    b = np.full(m, 1 / m) if uniform else rng.dirichlet(np.ones(m))
    flow = solve_transport(cost, a, b)
    lp_flow, lp_cost = lp_transport(cost, a, b)
    assert (flow * cost).sum() == pytest.approx(lp_cost, rel=1e-9)
    np.testing.assert_allclose(flow, lp_flow, atol=1e-8)  # unique optimum for generic random costs
    np.testing.assert_allclose(flow.sum(1), a, atol=1e-12)
    np.testing.assert_allclose(flow.sum(0), b, atol=1e-12)


def test_cost_attention_by_hand():
    flow = np.array([[0.25, 0.25, 0.0], [0.0, 0.0833333333, 0.4166666667]])
    cost = np.array([[1.0, 2.0, 4.0], [3.0, 1.0, 0.5]])
    w_s, w_t = np.array([0.5, 0.5]), np.array([0.25, 1 / 3, 0.4166666667])
    # student: c = [(0.25*1 + 0.25*2)/0.5, (0.0833333333*1 + 0.4166666667*0.5)/0.5] = [1.5, 0.5833333333]
    c_s = np.array([1.5, 0.5833333333])
    new_s = c_s.sum() / c_s  # [1.3888889, 3.5714286]
    # teacher: columns carry [0.25, 0.5 + 0.0833333333, 0.2083333333], per unit of weight:
    c_t = np.array([0.25 / 0.25, 0.5833333333 / (1 / 3), 0.2083333333 / 0.4166666667])  # [1, 1.75, 0.5]
    new_t = c_t.sum() / c_t  # [3.25, 1.857142857, 6.5]
    raw_s, raw_t = inverse_cost_weights(flow, cost, w_s, w_t)  # the weights before normalisation
    np.testing.assert_allclose(raw_s, new_s, rtol=1e-8)
    np.testing.assert_allclose(raw_t, [3.25, 1.857142857, 6.5], rtol=1e-8)
    s_sum, t_sum = cost_attention_update(flow, cost, w_s, w_t, method="sum")
    np.testing.assert_allclose(s_sum, new_s / new_s.sum(), rtol=1e-8)
    np.testing.assert_allclose(t_sum, [3.25 / 11.607142857, 1.857142857 / 11.607142857, 6.5 / 11.607142857],
                               rtol=1e-8)
    temperature = 5.0
    s_soft, t_soft = cost_attention_update(flow, cost, w_s, w_t, method="softmax", temperature=temperature)
    expected_s = [math.exp(x / temperature) for x in new_s]
    expected_t = [math.exp(x / temperature) for x in new_t]
    np.testing.assert_allclose(s_soft, np.array(expected_s) / sum(expected_s), rtol=1e-8)
    np.testing.assert_allclose(t_soft, np.array(expected_t) / sum(expected_t), rtol=1e-8)
    assert s_soft[1] > s_soft[0]  # the cheaper student layer gains weight


def test_cost_attention_with_a_zero_weight_layer_stays_finite():
    cost = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 5.0]])
    flow = solve_transport(cost, np.array([0.5, 0.5]), np.array([0.5, 0.5, 0.0]))
    s, t = cost_attention_update(flow, cost, np.array([0.5, 0.5]), np.array([0.5, 0.5, 0.0]), method="sum")
    assert np.isfinite(s).all() and np.isfinite(t).all()
    assert t[2] < t[0]  # the unused, expensive teacher layer (mean distance 4) stays the lightest


def test_pairwise_mse_equals_direct_loop_and_ignores_padding():
    torch.manual_seed(0)
    student, teacher = torch.randn(3, 2, 5, 4), torch.randn(4, 2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float32)[:, :, None]
    distances = pairwise_mse(student, teacher, mask)
    for i in range(3):
        for j in range(4):
            keep = mask.expand(2, 5, 4).bool()
            direct = ((student[i] - teacher[j])[keep] ** 2).mean()
            assert distances[i, j].item() == pytest.approx(direct.item(), rel=1e-5)
    changed = student.clone()
    changed[:, 0, 3:] = 100.0  # padding positions of the first sequence
    torch.testing.assert_close(pairwise_mse(changed, teacher, mask), distances)
    assert not torch.allclose(pairwise_mse(changed, teacher, None), pairwise_mse(student, teacher, None))


def test_loss_gradient_is_flow_weighted_distance_gradient():
    torch.manual_seed(1)
    student = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(6, 3, 4, 5, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.float64)[:, :, None]
    term = LayerMappingLoss("emd", 2, 6, weight_update=False)
    loss = term(student, teacher, mask)
    loss.backward()
    flow = torch.from_numpy(term.last_step_record()["flow"])

    def flow_weighted(states):  # sum_ij F_ij D_ij(S) with F held fixed
        return float((flow * pairwise_mse(states, teacher, mask)).sum())

    base = student.detach().clone()
    step = 1e-6
    for index in [(0, 0, 0, 0), (1, 2, 1, 3), (0, 1, 3, 2), (1, 0, 0, 4)]:
        plus, minus = base.clone(), base.clone()
        plus[index] += step
        minus[index] -= step
        numeric = (flow_weighted(plus) - flow_weighted(minus)) / (2 * step)
        assert student.grad[index].item() == pytest.approx(numeric, rel=1e-5, abs=1e-10)
    # ... and the analytic form: dL/dS_i = sum_j F_ij * 2 (S_i - T_j) * mask / count
    count = mask.expand(3, 4, 5).sum()
    analytic = torch.stack([sum(flow[i, j] * 2 * (base[i] - teacher[j]) * mask / count for j in range(6))
                            for i in range(2)])
    torch.testing.assert_close(student.grad, analytic)


def query_key_layers(count: int, batch: int, heads: int, length: int, head_size: int, **kwargs):
    """Per-layer (query, key, c) as QUERY_KEY_ATTENTION hands them back, with c = 1 / sqrt(head size)."""
    return [(torch.randn(batch, heads, length, head_size, **kwargs), torch.randn(batch, heads, length, head_size,
                                                                                   **kwargs), head_size ** -0.5)
            for _ in range(count)]


def score_maps(layers, token_mask: torch.Tensor) -> torch.Tensor:
    """The stacked L x L score maps c Q K^T, padded key columns 0 (as SCORES_ATTENTION returns them)."""
    return torch.stack([c * query @ key.transpose(-1, -2) * token_mask[:, None, None, :] for query, key, c in layers])


@pytest.mark.parametrize("count_padding", [False, True])
@pytest.mark.parametrize("student_head_size, teacher_head_size", [(8, 8), (4, 16)])
def test_factorised_score_distance_equals_map_distance(count_padding, student_head_size, teacher_head_size):
    torch.manual_seed(4)
    batch, heads, length = 3, 2, 7
    student = query_key_layers(2, batch, heads, length, student_head_size, dtype=torch.float64, requires_grad=True)
    teacher = query_key_layers(5, batch, heads, length, teacher_head_size, dtype=torch.float64, requires_grad=True)
    token_mask = torch.ones(batch, length, dtype=torch.float64)
    token_mask[0, 4:] = 0
    token_mask[2, 6:] = 0
    factorised = pairwise_score_mse(student, teacher, token_mask, count_padding=count_padding)
    pair_mask = None if count_padding else token_mask[:, None, :, None] * token_mask[:, None, None, :]
    maps = pairwise_mse(score_maps(student, token_mask), score_maps(teacher, token_mask), pair_mask)
    torch.testing.assert_close(factorised, maps, rtol=1e-5, atol=0)
    inputs = [tensor for query, key, _ in student + teacher for tensor in (query, key)]
    weights = torch.rand(2, 5, dtype=torch.float64)  # any flow: the gradients of sum F * D agree too
    factorised_grads = torch.autograd.grad((weights * factorised).sum(), inputs)
    map_grads = torch.autograd.grad((weights * maps).sum(), inputs)
    for got, expected in zip(factorised_grads, map_grads):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-12)
    # One entry by hand: the mean squared score difference over the real (query, key) pairs only
    if not count_padding:
        s_map, t_map = score_maps(student, token_mask)[1], score_maps(teacher, token_mask)[3]
        real = pair_mask.expand(batch, heads, length, length).bool()
        direct = ((s_map - t_map)[real] ** 2).mean()
        assert factorised[1, 3].item() == pytest.approx(direct.item(), rel=1e-10)


def test_factorised_score_distance_ignores_padded_queries_unless_counted():
    torch.manual_seed(5)
    student, teacher = query_key_layers(2, 2, 2, 6, 4), query_key_layers(3, 2, 2, 6, 4)
    token_mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    changed = [(query.clone(), key.clone(), c) for query, key, c in student]
    for query, key, _ in changed:  # queries and keys of the first sequence's padding
        query[0, :, 4:] = 50.0
        key[0, :, 4:] = 50.0
    torch.testing.assert_close(pairwise_score_mse(changed, teacher, token_mask),
                               pairwise_score_mse(student, teacher, token_mask))
    assert not torch.allclose(pairwise_score_mse(changed, teacher, token_mask, count_padding=True),
                              pairwise_score_mse(student, teacher, token_mask, count_padding=True))
    with pytest.raises(ValueError, match="share batch, heads and length"):
        pairwise_score_mse(student, [(query[:1], key[:1], c) for query, key, c in teacher])
    with pytest.raises(ValueError, match="share a head size"):
        pairwise_score_mse(student, teacher[:1] + query_key_layers(1, 2, 2, 6, 8))


@pytest.mark.parametrize("n_teacher, n_student, skip, last", [
    (12, 4, [3, 6, 9, 12], [9, 10, 11, 12]),
    (6, 2, [3, 6], [5, 6]),
    (6, 3, [2, 4, 6], [4, 5, 6]),
])
def test_fixed_flows(n_teacher, n_student, skip, last):
    assert fixed_teacher_layers("skip", n_student, n_teacher) == skip
    assert fixed_teacher_layers("last", n_student, n_teacher) == last
    for mapping, layers in (("skip", skip), ("last", last)):
        flow = fixed_flow(mapping, n_student, n_teacher)
        expected = np.zeros((n_student, n_teacher))
        for i, layer in enumerate(layers):
            expected[i, layer - 1] = 1 / n_student
        np.testing.assert_array_equal(flow, expected)


def test_fixed_mapping_loss_is_flow_times_cost():
    torch.manual_seed(2)
    student, teacher = torch.randn(2, 3, 4, 8), torch.randn(6, 3, 4, 8)
    loss = LayerMappingLoss("skip", 2, 6)(student, teacher)
    expected = (pairwise_mse(student[0:1], teacher[2:3]) + pairwise_mse(student[1:2], teacher[5:6])).sum() / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_layer_weights_are_buffers_updated_by_training_steps_only():
    term = LayerMappingLoss("emd", 2, 6, weight_update=True, weight_norm="sum")
    state = term.state_dict()
    assert set(state) == {"student_weights", "teacher_weights"}
    student, teacher = torch.randn(2, 3, 4, 8), torch.randn(6, 3, 4, 8)
    term.eval()
    term(student, teacher)
    np.testing.assert_allclose(term.student_weights.numpy(), [0.5, 0.5])
    term.train()
    term(student, teacher)
    step = term.last_step_record()
    expected = cost_attention_update(step["flow"], step["cost"], step["student_weights_before"],
                                     step["teacher_weights_before"], "sum")
    np.testing.assert_allclose(term.student_weights.numpy(), expected[0])
    np.testing.assert_allclose(term.teacher_weights.numpy(), expected[1])
    other = LayerMappingLoss("emd", 2, 6)
    share_weights(term, other)
    np.testing.assert_allclose(other.student_weights.numpy(), (expected[0] + 0.5) / 2)
