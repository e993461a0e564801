"""How unsure an exit is, and at which layer each sample leaves.

``entropy`` (FastBERT): the normalised entropy ``H(p) / log C`` of the exit's class distribution, in [0, 1].
``topk`` (our reading of MS-BERT's top-K uncertainty; the paper's formula is not public): keep the K
largest probabilities, renormalise them to sum to one and take their normalised entropy
``H(q) / log K``, also in [0, 1]. It ignores how the rest of the mass is spread, so an exit that
hesitates between K classes but rules out the others counts as unsure, one that is sure of a single
class counts as sure. 2 <= K <= C. With K = C it equals ``entropy``; for the binary GLUE tasks K = C = 2,
so both measures give the same exits there.

A sample exits at the first layer whose uncertainty is below the threshold; the last layer always
answers. Threshold 0 therefore never exits early and gives the full model's predictions.
"""

from __future__ import annotations

import math

import torch

from bert_emd.errors import BertEmdError

UNCERTAINTIES = ("entropy", "topk")


def check_uncertainty(measure: str, threshold: float | None, top_k: int, num_classes: int) -> None:
    if measure not in UNCERTAINTIES:
        raise BertEmdError(f"unknown uncertainty {measure!r}; choose from {', '.join(UNCERTAINTIES)}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise BertEmdError(f"threshold {threshold:g} is outside [0, 1], the range of the normalised {measure} "
                           "uncertainty (0: never exit early, 1: almost always exit at the first layer)")
    if measure == "topk" and not 2 <= top_k <= num_classes:
        raise BertEmdError(f"--top-k {top_k} must lie between 2 and the number of classes ({num_classes})")


def _normalised_entropy(probs: torch.Tensor) -> torch.Tensor:
    classes = probs.shape[-1]
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)
    return entropy / math.log(classes)


def uncertainty(probs: torch.Tensor, measure: str = "entropy", top_k: int = 2) -> torch.Tensor:
    """Uncertainty in [0, 1] of each distribution over the last axis."""
    if measure == "entropy":
        return _normalised_entropy(probs)
    top = probs.topk(top_k, dim=-1).values
    return _normalised_entropy(top / top.sum(-1, keepdim=True).clamp_min(1e-12))


def exit_layers(probs: torch.Tensor, threshold: float, measure: str = "entropy", top_k: int = 2) -> torch.Tensor:
    """1-based exit layer per sample from every layer's distribution ``probs [layers, samples, classes]``."""
    layers = probs.shape[0]
    unsure = uncertainty(probs[:-1], measure, top_k) >= threshold  # [layers - 1, samples]
    sure = torch.cat([~unsure, torch.ones_like(unsure[:1])])  # the last layer always answers
    return sure.int().argmax(0) + 1 if layers > 0 else torch.zeros(0, dtype=torch.long)
