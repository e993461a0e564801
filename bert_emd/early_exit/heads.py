"""The two designs of an exit student (a light classifier on one layer's hidden states).

``fastbert`` (FastBERT's student classifier): project the hidden states to a small width, one
multi-head self-attention layer over the sequence (padding masked), take the first token, then a
tanh layer and the output layer. ``ramp`` (DeeBERT's off-ramp): a BERT-style pooler (first token,
dense, tanh), dropout and a linear output layer.
"""

from __future__ import annotations

import torch
from torch import nn

DESIGNS = ("fastbert", "ramp")


class FastBertHead(nn.Module):
    def __init__(self, hidden: int, classes: int, width: int = 128, heads: int = 2, dropout: float = 0.1):
        super().__init__()
        self.project = nn.Linear(hidden, width)
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.dense = nn.Linear(width, width)
        self.output = nn.Linear(width, classes)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.project(hidden)
        attended, _ = self.attention(states, states, states, key_padding_mask=attention_mask == 0,
                                     need_weights=False)
        return self.output(torch.tanh(self.dense(attended[:, 0])))

    @staticmethod
    def flops(hidden: int, classes: int, width: int, length: int) -> int:
        """Multiply-adds x 2 of one sample of ``length`` tokens."""
        return 2 * (length * hidden * width + 4 * length * width * width + 2 * length * length * width
                    + width * width + width * classes)


class RampHead(nn.Module):
    def __init__(self, hidden: int, classes: int, dropout: float = 0.1, **_):
        super().__init__()
        self.pooler = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, classes)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(torch.tanh(self.pooler(hidden[:, 0]))))

    @staticmethod
    def flops(hidden: int, classes: int, width: int, length: int) -> int:
        return 2 * (hidden * hidden + hidden * classes)


HEADS = {"fastbert": FastBertHead, "ramp": RampHead}


def build_head(design: str, hidden: int, classes: int, width: int, heads: int) -> nn.Module:
    return HEADS[design](hidden, classes, width=width, heads=heads)
