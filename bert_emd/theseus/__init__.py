"""BERT-of-Theseus (Xu et al., EMNLP 2020): compression by progressive module replacing, with no distillation loss."""

from bert_emd.theseus.config import TheseusConfig
from bert_emd.theseus.run import theseus

__all__ = ["TheseusConfig", "theseus"]
