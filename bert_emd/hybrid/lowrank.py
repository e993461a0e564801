"""Low-rank factorisation of encoder Linear layers by truncated SVD.

``W (out x in) ~= U_r S_r V_r^T`` becomes two standard Linear layers: ``down`` (in -> r, no bias,
weight ``sqrt(S_r) V_r^T``) then ``up`` (r -> out, the original bias, weight ``U_r sqrt(S_r)``).
A rank-r pair holds ``r * (in + out)`` weights instead of ``in * out``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bert_emd.errors import BertEmdError
from bert_emd.families import BERT_LINEARS, encoder_blocks, family_of

# The Linear layers of an encoder layer that hybrid compression may factorise (their module paths per family
# are in bert_emd.families: BERT's attention.self.query, MPNet's attention.attn.q, DistilBERT's attention.q_lin...).
TARGETS = tuple(BERT_LINEARS)
TARGET_GROUPS = {"attention": ("query", "key", "value", "attention_output"), "ffn": ("ffn_in", "ffn_out")}


class LowRankLinear(nn.Module):
    """``up(down(x))``: a Linear layer of rank ``rank`` as two standard Linear layers."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))

    @classmethod
    def from_weight(cls, weight: torch.Tensor, bias: torch.Tensor | None, rank: int) -> LowRankLinear:
        out_features, in_features = weight.shape
        if not 1 <= rank <= min(in_features, out_features):
            raise BertEmdError(f"rank {rank} is outside 1..{min(in_features, out_features)} for a "
                               f"{out_features} x {in_features} weight")
        u, s, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
        root = s[:rank].sqrt()
        layer = cls(in_features, out_features, rank, bias is not None).to(weight.dtype)
        with torch.no_grad():
            layer.down.weight.copy_((root[:, None] * vh[:rank]).to(weight.dtype))
            layer.up.weight.copy_((u[:, :rank] * root[None, :]).to(weight.dtype))
            if bias is not None:
                layer.up.bias.copy_(bias.detach())
        return layer


def effective_weight(linear: nn.Linear) -> torch.Tensor:
    """The weight a Linear applies, pruning mask included (``weight`` itself is refreshed only by a forward)."""
    if hasattr(linear, "weight_orig"):
        return linear.weight_orig * linear.weight_mask
    return linear.weight


def as_dense(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of a Linear or of a LowRankLinear (its product)."""
    if isinstance(module, LowRankLinear):
        return effective_weight(module.up) @ effective_weight(module.down), module.up.bias
    return effective_weight(module), module.bias


def rank_for_ratio(in_features: int, out_features: int, keep: float) -> int:
    """The smallest rank whose pair holds at least ``keep`` times the dense weight count (pruning then
    removes the rounding remainder)."""
    return int(math.ceil(keep * in_features * out_features / (in_features + out_features) - 1e-9))


def rank_for_energy(weight: torch.Tensor, energy: float) -> int:
    """The smallest rank keeping ``energy`` of the sum of squared singular values."""
    s = torch.linalg.svdvals(weight.detach().double())
    share = torch.cumsum(s ** 2, 0) / (s ** 2).sum()
    return int(torch.searchsorted(share, torch.tensor(energy, dtype=share.dtype)).item()) + 1


def target_modules(model: nn.Module, targets: list[str], name: str = "model") -> dict[str, nn.Module]:
    """Full module name -> module, for every chosen target in every encoder layer."""
    layers = encoder_blocks(model, name)
    paths = family_of(model, name).linears
    prefix = next(full for full, module in model.named_modules() if module is layers)
    found = {}
    for index, layer in enumerate(layers):
        for target in targets:
            path = paths[target]
            try:
                module = layer.get_submodule(path)
            except AttributeError:
                raise BertEmdError(f"{name}: encoder layer {index} has no {path} ({target}); hybrid compression "
                                   f"knows the {family_of(model).name} layout as {', '.join(paths.values())}") from None
            if not isinstance(module, (nn.Linear, LowRankLinear)):
                raise BertEmdError(f"{name}: {prefix}.{index}.{path} is a {type(module).__name__}, not a Linear layer")
            found[f"{prefix}.{index}.{path}"] = module
    return found


def replace_module(model: nn.Module, full_name: str, new: nn.Module) -> None:
    parent_name, _, child = full_name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, new)
