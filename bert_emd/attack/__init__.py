"""Robustness under a TextFooler-style word-substitution attack, per model and with transfer between two."""

from bert_emd.attack.config import AttackConfig
from bert_emd.attack.run import attack

__all__ = ["AttackConfig", "attack"]
