"""How much to factorise and prune at a given encoder compression ratio, and doing it.

The encoder compression ratio is ``dense encoder parameters / non-zero encoder parameters`` (every
parameter of the encoder layers; embeddings and the task head are not counted). Only the chosen
Linear weights are compressed, so they must keep ``k = (P_enc / R - P_rest) / P_chosen`` of their
weights. With ``--prune-share p`` the factorisation keeps ``k^(1-p)`` (rank from that ratio, or from
``--energy``; rounded up) and magnitude pruning of the factors goes the rest of the way, keeping
``k / kept_by_rank`` of them (so ``--prune-share 0`` still prunes the rank-rounding remainder).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from bert_emd.errors import BertEmdError
from bert_emd.families import encoder_blocks
from bert_emd.hybrid.lowrank import (
    LowRankLinear,
    as_dense,
    rank_for_energy,
    rank_for_ratio,
    replace_module,
    target_modules,
)
from bert_emd.hybrid.pruning import apply_pruning, nonzero_weights


@dataclass
class StepPlan:
    ratio: float  # target encoder compression ratio of this step
    keep: float  # share of the chosen weights kept
    ranks: dict[str, int]  # module name -> rank (absent: kept dense)
    sparsity: float  # share of the remaining (factor or dense) chosen weights pruned


def encoder_parameter_counts(layers: nn.ModuleList) -> dict:
    """Parameter count of the encoder layers (pruned weights counted whole) and how many are kept (non-zero)."""
    dense = nonzero = 0
    for module in layers.modules():
        for name, parameter in module.named_parameters(recurse=False):
            dense += parameter.numel()
            if name == "weight_orig":  # a pruned weight: its mask says what is kept
                nonzero += int(module.weight_mask.sum().item())
            elif parameter.dim() == 2:  # a weight matrix (pruned earlier and made permanent, or not)
                nonzero += int(parameter.count_nonzero().item())
            else:  # biases and LayerNorm are never pruned, and count whole even where they are 0
                nonzero += parameter.numel()
    return {"dense": dense, "nonzero": nonzero}


def plan_step(chosen: dict[str, nn.Module], encoder_dense: int, ratio: float, prune_share: float,
              rank_by: str, energy: float, original_shapes: dict[str, tuple[int, int]]) -> StepPlan:
    """Ranks and sparsity that bring the encoder to ``ratio`` (of its original dense size)."""
    chosen_dense = sum(out * inp for out, inp in original_shapes.values())
    rest = encoder_dense - chosen_dense
    keep = (encoder_dense / ratio - rest) / chosen_dense
    if keep <= 0:
        raise BertEmdError(f"target ratio {ratio:g} is unreachable: the encoder parameters that are not compressed "
                           f"(biases, LayerNorm, layers not chosen: {rest:,}) already exceed 1/{ratio:g} of the "
                           f"encoder ({encoder_dense:,}); choose more --targets or a lower ratio")
    ranks: dict[str, int] = {}
    kept_after_rank = 0
    for name, module in chosen.items():
        out, inp = original_shapes[name]
        if rank_by == "energy":
            rank = rank_for_energy(as_dense(module)[0], energy)
        else:
            rank = rank_for_ratio(inp, out, keep ** (1.0 - prune_share)) if prune_share < 1 else min(out, inp)
        if prune_share < 1 or rank_by == "energy":
            if rank < 1:
                raise BertEmdError(f"target ratio {ratio:g} is unreachable by factorisation: {name} "
                                   f"({out} x {inp}) would need a rank below 1; raise --prune-share")
            if rank * (inp + out) < out * inp:
                ranks[name] = rank
        kept_after_rank += rank * (inp + out) if name in ranks else out * inp
    sparsity = 1.0 - keep * chosen_dense / kept_after_rank
    if sparsity >= 1.0:
        raise BertEmdError(f"target ratio {ratio:g} is unreachable: pruning would have to remove every weight")
    return StepPlan(ratio, keep, ranks, max(0.0, sparsity))


def plan_compression(model: nn.Module, targets: list[str], ratios: list[float], prune_share: float, rank_by: str,
                     energy: float, name: str = "model") -> tuple[dict[str, nn.Module], int, list[StepPlan]]:
    """The Linear layers of ``model`` to compress, its dense encoder parameters, and the plan of each ratio, in
    order (made before any change, so a ratio the layout cannot reach fails first)."""
    chosen = target_modules(model, targets, name)
    shapes = {module_name: tuple(as_dense(module)[0].shape) for module_name, module in chosen.items()}
    dense = encoder_parameter_counts(encoder_blocks(model, name))["dense"]
    return chosen, dense, [plan_step(chosen, dense, ratio, prune_share, rank_by, energy, shapes) for ratio in ratios]


def apply_step(model: nn.Module, chosen: dict[str, nn.Module], plan: StepPlan, scope: str) -> dict[str, nn.Module]:
    """Refactorise (SVD of the current effective weight) at the plan's ranks, then prune; returns the new
    chosen modules (name -> LowRankLinear or Linear)."""
    updated = {}
    for name, module in chosen.items():
        if name in plan.ranks:
            weight, bias = as_dense(module)
            replacement = LowRankLinear.from_weight(weight.detach(), None if bias is None else bias.detach(),
                                                    plan.ranks[name]).to(weight.device)
            replace_module(model, name, replacement)
            updated[name] = replacement
        else:
            updated[name] = module
    apply_pruning(prunable(updated), plan.sparsity, scope)
    return updated


def prunable(chosen: dict[str, nn.Module]) -> list[nn.Linear]:
    modules = []
    for module in chosen.values():
        modules += [module.down, module.up] if isinstance(module, LowRankLinear) else [module]
    return modules


def chosen_nonzero(chosen: dict[str, nn.Module]) -> int:
    return sum(nonzero_weights(module) for module in prunable(chosen))
