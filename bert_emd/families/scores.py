"""Pre-softmax attention scores for families whose attention bypasses the transformers interface.

MPNet and DeBERTa-v2 compute attention inside their own modules and return post-softmax probabilities
as ``attentions``. ``install_score_hooks(model)`` makes them return the pre-softmax scores instead, as
the BERT-EMD reference matches them (masked positions set to 0), built from the tensors the layer
itself computed in that forward pass (no second draw of any dropout):

- MPNet: ``S = Q K^T / sqrt(d) + position_bias`` (its relative position bias is part of the scores);
  the additive padding mask is added and entries <= -100 set to 0, as for BERT.
- DeBERTa-v2: ``S = Q K^T / sqrt(d * f) + c2p + p2c`` (content and position terms, ``f`` = 1 + the
  number of position terms); masked entries (padded keys, and padded query rows, which DeBERTa masks
  too) set to 0.

Q and K are the outputs of the layer's own projections (forward hooks on them), DeBERTa's position
terms the return value of its ``disentangled_attention_bias``. The hooks change only what
``attentions`` holds; the layer's output is untouched.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bert_emd.families import family_of

_STASH = "_bert_emd_stash"
_INSTALLED = "_bert_emd_score_hooks"


def install_score_hooks(model: nn.Module) -> bool:
    """Make ``model``'s ``attentions`` pre-softmax scores; True when hooks were installed (hook families only).
    Installing twice is a no-op."""
    if family_of(model).scores != "hooks":
        return False
    if getattr(model, _INSTALLED, False):
        return True
    kind = model.config.model_type
    for module in model.modules():
        if kind == "mpnet" and type(module).__name__ == "MPNetSelfAttention":
            _stash_outputs(module, {"q": module.q, "k": module.k})
            module.register_forward_hook(_mpnet_scores, with_kwargs=True)
        elif kind == "deberta-v2" and type(module).__name__ == "DisentangledSelfAttention":
            _stash_outputs(module, {"q": module.query_proj, "k": module.key_proj})
            _stash_position_terms(module)
            module.register_forward_hook(_deberta_scores, with_kwargs=True)
    setattr(model, _INSTALLED, True)
    return True


def _stash_outputs(attention: nn.Module, projections: dict[str, nn.Module]) -> None:
    attention.__dict__[_STASH] = {}
    for key, projection in projections.items():
        def keep(_module, _inputs, output, key=key):  # the first call of a forward pass: DeBERTa's position
            attention.__dict__[_STASH].setdefault(key, output)  # terms call the projections again
        projection.register_forward_hook(keep)


def _stash_position_terms(attention: nn.Module) -> None:
    original = attention.disentangled_attention_bias

    def bias(*args, **kwargs):
        terms = original(*args, **kwargs)
        attention.__dict__[_STASH]["position"] = terms
        return terms

    attention.disentangled_attention_bias = bias  # an instance attribute: this module only


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, L, H*d]`` -> ``[B, H, L, d]``."""
    return x.view(*x.shape[:2], heads, -1).transpose(1, 2)


def _argument(args, kwargs, name: str, position: int):
    return kwargs[name] if name in kwargs else (args[position] if len(args) > position else None)


def _mpnet_scores(module, args, kwargs, output):
    stash = module.__dict__[_STASH]
    q, k = stash.pop("q", None), stash.pop("k", None)
    if len(output) < 2 or q is None:
        return output  # attentions not asked for
    mask = _argument(args, kwargs, "attention_mask", 1)
    bias = _argument(args, kwargs, "position_bias", 2)
    heads = module.num_attention_heads
    scores = _heads(q, heads) @ _heads(k, heads).transpose(-1, -2) / math.sqrt(module.attention_head_size)
    if bias is not None:
        scores = scores + bias
    return (output[0], _masked(scores, mask)) + tuple(output[2:])


def _deberta_scores(module, args, kwargs, output):
    stash = module.__dict__[_STASH]
    q, k, position = stash.pop("q", None), stash.pop("k", None), stash.pop("position", None)
    if output[1] is None or q is None:
        return output
    mask = _argument(args, kwargs, "attention_mask", 1)
    heads = module.num_attention_heads
    factor = 1 + ("c2p" in module.pos_att_type) + ("p2c" in module.pos_att_type)
    q, k = _heads(q, heads), _heads(k, heads)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1) * factor)
    if isinstance(position, torch.Tensor):  # 0 when the config names no position terms
        scores = scores + position.view_as(scores)
    return (output[0], _masked(scores, mask)) + tuple(output[2:])


def _masked(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return scores
    if mask.dtype == torch.bool or not mask.is_floating_point():  # True / 1 = attend
        return scores.masked_fill(~mask.bool(), 0.0)
    scores = scores + mask  # additive mask: the reference adds it and zeroes what it pushed below -100
    return scores.masked_fill(scores <= -100, 0.0)
