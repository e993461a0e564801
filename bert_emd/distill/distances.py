"""The N x M layer distances that a layer mapping transports: mean squared errors between every
student layer and every teacher layer, of hidden states or of attention scores.

Each distance comes in two steps so that the teacher's side can be prepared once, right after its
forward pass, and its raw outputs dropped: ``masked_layers`` / ``score_factors`` turn a model's
per-layer outputs into what the distance needs, ``layer_distances`` / ``score_distances`` compare two
prepared sides. ``pairwise_mse`` and ``pairwise_score_mse`` do both steps at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch


class MaskedLayers(NamedTuple):
    """Stacked layers ``[N, X]``, flattened, padding entries zero; ``count`` entries per layer are real."""
    flat: torch.Tensor
    count: torch.Tensor | int
    shape: tuple[int, ...]


def masked_layers(layers: torch.Tensor | Sequence[torch.Tensor], element_mask: torch.Tensor | None) -> MaskedLayers:
    """``[N, *shape]`` (or N tensors of ``shape``) with the entries where ``element_mask`` is 0 set to 0.

    A sequence is stacked into a fresh tensor and masked in place (one copy); a stacked tensor
    passed in is not changed.
    """
    fresh = not isinstance(layers, torch.Tensor)
    stacked = torch.stack(tuple(layers)) if fresh else layers
    shape = tuple(stacked.shape[1:])
    if element_mask is None:
        return MaskedLayers(stacked.flatten(1), stacked[0].numel(), shape)
    mask = element_mask.to(stacked.dtype).expand(shape)
    masked = stacked.mul_(mask) if fresh else stacked * mask  # masked entries become 0 in both: they add nothing
    return MaskedLayers(masked.flatten(1), mask.sum().clamp_min(1.0), shape)


def layer_distances(student: MaskedLayers, teacher: MaskedLayers) -> torch.Tensor:
    """``D[i, j] = mean((student[i] - teacher[j])**2)`` over the real entries.

    All N x M distances come from one matrix product, ``|s|^2 + |t|^2 - 2 s.t``, so no N x M x shape
    difference tensor is made or kept for backward; the gradient is that of the direct formula.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"student layers {student.shape} and teacher layers {teacher.shape} must have the same shape")
    student_sq = student.flat.pow(2).sum(1)
    teacher_sq = teacher.flat.pow(2).sum(1)
    cross = student.flat @ teacher.flat.T
    return (student_sq[:, None] + teacher_sq[None, :] - 2.0 * cross).clamp_min(0.0) / student.count


def pairwise_mse(student: torch.Tensor, teacher: torch.Tensor,
                 element_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``D[i, j] = mean((student[i] - teacher[j])**2)`` over the positions where ``element_mask`` is 1.

    ``student`` is ``[N, *shape]``, ``teacher`` is ``[M, *shape]`` (stacked layers, or sequences of
    layers), ``element_mask`` broadcasts to ``shape`` (1 = counted, 0 = padding).
    """
    return layer_distances(masked_layers(student, element_mask), masked_layers(teacher, element_mask))


class ScoreFactors(NamedTuple):
    """One model's queries and keys side by side, ``[B, H, L, layers * d]``, padding rows zeroed."""
    queries: torch.Tensor
    keys: torch.Tensor
    scale: torch.Tensor  # the score scaling c of each layer
    count: torch.Tensor | int  # score entries counted per layer


def score_factors(layers: Sequence, token_mask: torch.Tensor | None = None,
                  count_padding: bool = False) -> ScoreFactors:
    """Per-layer ``(query, key, c)`` -> ``ScoreFactors``, padding treated as the map-based path does.

    ``token_mask [B, L]``: 1 = token, 0 = padding. By default a padded query row or key column counts
    nowhere (the rows of Q and K are zeroed and the mean runs over real pairs only); with
    ``count_padding`` only the key columns are zero, as in the masked score map, and the mean runs
    over all L x L entries (the reference code).
    """
    if not layers or any(len(layer) != 3 for layer in layers):
        raise ValueError("attention layers must be given as (query, key, scaling) per layer")
    head_sizes = {layer[0].shape[-1] for layer in layers}
    if len(head_sizes) != 1:
        raise ValueError(f"the layers of one model must share a head size, got {sorted(head_sizes)}")
    queries = torch.cat([layer[0] for layer in layers], dim=-1)  # fresh tensors: masking in place is safe
    keys = torch.cat([layer[1] for layer in layers], dim=-1)
    batch, heads, length = queries.shape[:3]
    count = batch * heads * length * length
    if token_mask is not None:
        mask = token_mask.to(queries.dtype)
        keys.mul_(mask[:, None, :, None])
        if not count_padding:
            queries.mul_(mask[:, None, :, None])
            count = (heads * mask.sum(1).pow(2).sum()).clamp_min(1.0)
    scale = torch.tensor([float(layer[2]) for layer in layers], dtype=queries.dtype, device=queries.device)
    return ScoreFactors(queries, keys, scale, count)


def score_distances(student: ScoreFactors, teacher: ScoreFactors) -> torch.Tensor:
    """``layer_distances`` of the score maps ``S = c Q K^T``, computed from Q and K alone.

    For one head, ``sum(S_s * S_t) = c_s c_t sum((Q_s^T Q_t) * (K_s^T K_t))`` and
    ``sum(S^2) = c^2 sum((Q^T Q) * (K^T K))``, so every distance is a sum of d x d Gram products:
    O(L d^2) per head and layer pair, and no L x L map is made or kept for backward.
    """
    batch, heads, length = student.queries.shape[:3]
    if teacher.queries.shape[:3] != (batch, heads, length):
        raise ValueError(f"student queries {tuple(student.queries.shape[:3])} and teacher queries "
                         f"{tuple(teacher.queries.shape[:3])} must share batch, heads and length")
    n, m = len(student.scale), len(teacher.scale)
    # One Gram product per side for all layer pairs: [B, H, N * d_s, M * d_t]
    query_gram = student.queries.transpose(-1, -2) @ teacher.queries
    key_gram = student.keys.transpose(-1, -2) @ teacher.keys
    cross = (query_gram * key_gram).view(batch, heads, n, query_gram.shape[-2] // n, m, query_gram.shape[-1] // m)
    cross = cross.sum((0, 1, 3, 5)) * (student.scale[:, None] * teacher.scale[None, :])
    student_sq = _squared_score_norms(student)
    teacher_sq = _squared_score_norms(teacher)
    return (student_sq[:, None] + teacher_sq[None, :] - 2.0 * cross).clamp_min(0.0) / student.count


def pairwise_score_mse(student: Sequence, teacher: Sequence, token_mask: torch.Tensor | None = None,
                       count_padding: bool = False) -> torch.Tensor:
    """``pairwise_mse`` of the attention-score maps from per-layer ``(query, key, c)`` (head sizes may
    differ between the two models); equal to the map-based distance in value and gradient."""
    return score_distances(score_factors(student, token_mask, count_padding),
                           score_factors(teacher, token_mask, count_padding))


def _squared_score_norms(factors: ScoreFactors) -> torch.Tensor:
    """``c^2 sum((Q^T Q) * (K^T K))`` per layer. Each layer's columns are a strided view that the
    batched matrix product reads in place (no copy)."""
    layers = len(factors.scale)
    size = factors.queries.shape[-1] // layers
    norms = []
    for start in range(0, layers * size, size):
        query, key = factors.queries[..., start:start + size], factors.keys[..., start:start + size]
        norms.append(((query.transpose(-1, -2) @ query) * (key.transpose(-1, -2) @ key)).sum())
    return torch.stack(norms) * factors.scale.pow(2)
