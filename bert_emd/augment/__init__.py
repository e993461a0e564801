"""TinyBERT-style task data augmentation: `bert-emd augment` and `bert_emd.augment(...)`."""

from bert_emd.augment.config import AugmentConfig
from bert_emd.augment.run import augment

__all__ = ["AugmentConfig", "augment"]
