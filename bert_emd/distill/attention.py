"""An attention function that returns pre-softmax scores, registered with transformers.

HF models return post-softmax probabilities as ``attentions``. The BERT-EMD reference matches the
pre-softmax scores (masked positions, values <= -100, set to 0). Registering this function under
``SCORES_ATTENTION`` makes ``output_attentions=True`` return those scores while the forward pass
itself is exactly eager attention.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

SCORES_ATTENTION = "bert_emd_scores"


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


AttentionInterface.register(SCORES_ATTENTION, scores_attention_forward)
ALL_MASK_ATTENTION_FUNCTIONS.register(SCORES_ATTENTION, eager_mask)
