"""Attention functions registered with transformers that hand the distiller what its attention term needs.

HF models return post-softmax probabilities as ``attentions``. The BERT-EMD reference matches the
pre-softmax scores (masked positions, values <= -100, set to 0). Two ways to get at them:

- ``SCORES_ATTENTION`` (map-based path): eager attention that returns the L x L score maps as
  ``attentions``; the forward pass itself is exactly eager attention.
- ``QUERY_KEY_ATTENTION`` (factorised path): the model's SDPA kernel computes the attention output,
  and ``attentions`` holds ``(Q, K, c)`` per layer (``[B, H, L, d]`` each, c the score scaling),
  from which ``distances.score_distances`` gets the score distances without ever forming a score map
  (``S = c Q K^T``).

Both work only for families whose attention goes through the transformers attention-function
interface (``model._supports_attention_backend``); MPNet and DeBERTa-v2 get scores from
bert_emd.families.scores on the map path instead.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask, sdpa_mask

SCORES_ATTENTION = "bert_emd_scores"
QUERY_KEY_ATTENTION = "bert_emd_query_key"


def scores_attention_forward(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                             attention_mask: torch.Tensor | None, scaling: float | None = None,
                             dropout: float = 0.0, **kwargs):
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probabilities = nn.functional.dropout(nn.functional.softmax(scores, dim=-1), p=dropout, training=module.training)
    output = torch.matmul(probabilities, value).transpose(1, 2).contiguous()
    return output, scores.masked_fill(scores <= -100, 0.0)


def query_key_attention_forward(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                attention_mask: torch.Tensor | None, scaling: float | None = None,
                                dropout: float = 0.0, **kwargs):
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    kwargs.pop("output_attentions", None)  # SDPA warns about it; the caller gets Q and K instead
    output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                       **kwargs)
    return output, (query, key, scaling)  # views of the projections: nothing copied


def supports_attention_functions(model: nn.Module) -> bool:
    """True when the model's attention goes through the transformers attention-function interface."""
    return bool(getattr(model, "_supports_attention_backend", False))


AttentionInterface.register(SCORES_ATTENTION, scores_attention_forward)
ALL_MASK_ATTENTION_FUNCTIONS.register(SCORES_ATTENTION, eager_mask)
AttentionInterface.register(QUERY_KEY_ATTENTION, query_key_attention_forward)
ALL_MASK_ATTENTION_FUNCTIONS.register(QUERY_KEY_ATTENTION, sdpa_mask)


def resolve_attention(attention: str, distance: str, layer_terms_on: bool, teacher_config) -> tuple[str | None, str]:
    """``(attn_implementation to load teacher and student with, attention path)`` for a distillation.

    The path is ``factorised`` (Q and K under SDPA), ``maps`` (eager score or probability maps) or
    ``none`` (no attention term). ``distance`` is the user's ``--attention-distance``: ``maps`` keeps
    eager attention for every mapping, exactly as every run before the factorised path (so old
    results reproduce); otherwise a run without an attention term keeps the models' default, fast
    attention. Families whose attention bypasses the interface (MPNet, DeBERTa-v2) get their scores
    from bert_emd.families.scores on the maps path. What cannot be served is refused, never replaced.
    """
    from bert_emd.errors import BertEmdError
    from bert_emd.families import family_of
    from bert_emd.models import classifier_class

    family = family_of(teacher_config, "teacher")
    model_class = classifier_class(teacher_config) or _auto_classifier_class(teacher_config)
    interface = supports_attention_functions(model_class) and family.scores == "interface"
    uses_attention = attention != "off" and layer_terms_on
    if uses_attention and attention == "scores" and not interface and family.scores != "hooks":
        raise BertEmdError(f"--attention scores is not available for {family.name} models (bert-emd cannot read "
                           "their pre-softmax scores); use --attention probs or --attention off")
    if distance == "factorised" and uses_attention and (attention == "probs" or not interface):
        if attention == "probs":
            raise BertEmdError("--attention-distance factorised needs --attention scores (probabilities are "
                               "softmax maps); use --attention-distance maps or auto")
        raise BertEmdError(f"--attention-distance factorised is not available for {family.name} (its attention does "
                           "not go through the transformers attention interface); use --attention-distance maps")
    if distance == "maps":
        eager = SCORES_ATTENTION if attention == "scores" and interface else "eager"
        return eager, ("maps" if uses_attention else "none")
    if not uses_attention:
        return None, "none"
    if attention == "probs" or not interface:
        return "eager", "maps"
    return QUERY_KEY_ATTENTION, "factorised"


def _auto_classifier_class(config):
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    try:
        return MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(config)]
    except KeyError:
        return None


def saving_attention(model: nn.Module) -> str:
    """The attention implementation a saved config should name: SDPA where the family has it."""
    return "sdpa" if getattr(model, "_supports_sdpa", False) else "eager"
