"""Magnitude pruning with fixed masks, through ``torch.nn.utils.prune``.

Pruning a weight replaces it by ``weight_orig * weight_mask`` recomputed before every forward pass,
so the pruned entries stay exactly zero through training while the mask does not change.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

SCOPES = ("global", "layer")


def unprune(module: nn.Module) -> None:
    """Make any pruning of ``module.weight`` permanent (zeros stay zeros, no more hook)."""
    if prune.is_pruned(module) and hasattr(module, "weight_mask"):
        prune.remove(module, "weight")


def apply_pruning(modules: list[nn.Linear], sparsity: float, scope: str = "global") -> None:
    """Zero the ``sparsity`` share of smallest-magnitude weights, over all ``modules`` or in each one."""
    for module in modules:
        unprune(module)
    if sparsity <= 0:
        return
    if scope == "global":
        prune.global_unstructured([(module, "weight") for module in modules], pruning_method=prune.L1Unstructured,
                                  amount=float(sparsity))
    else:
        for module in modules:
            prune.l1_unstructured(module, "weight", amount=float(sparsity))


def nonzero_weights(module: nn.Linear) -> int:
    if hasattr(module, "weight_mask"):
        return int(module.weight_mask.sum().item())
    return int(torch.count_nonzero(module.weight).item())


def detach_pruned_weights(model: nn.Module) -> None:
    """Recompute every pruned ``weight`` outside autograd. After a training step it is the product the last
    forward made, a tensor in a graph, which ``copy.deepcopy`` refuses (a model saved with no evaluation
    between training and saving)."""
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "weight_mask") and hasattr(module, "weight_orig"):
                module.weight = module.weight_orig * module.weight_mask


def make_permanent(model: nn.Module) -> None:
    for module in model.modules():
        unprune(module)
