"""LadaBERT-style hybrid compression: low-rank factorisation (SVD), magnitude pruning with fixed masks and
knowledge distillation, raised step by step; compact storage of the result."""

from bert_emd.hybrid.lowrank import LowRankLinear
from bert_emd.hybrid.run import HybridConfig, hybrid
from bert_emd.hybrid.storage import load_hybrid, save_hybrid

__all__ = ["HybridConfig", "LowRankLinear", "hybrid", "load_hybrid", "save_hybrid"]
