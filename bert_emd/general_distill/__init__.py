"""Task-agnostic (general) distillation with the EMD layer mapping: `bert-emd general-distill`."""

from bert_emd.general_distill.config import GeneralDistillConfig
from bert_emd.general_distill.run import general_distill

__all__ = ["GeneralDistillConfig", "general_distill"]
