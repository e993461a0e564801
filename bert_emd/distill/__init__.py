"""BERT-EMD distillation: many-to-many layer mapping by Earth Mover's Distance, and fixed baselines.

The EMD pieces (``pairwise_mse``, ``solve_transport``, ``cost_attention_update``, ``fixed_flow``) are
in ``bert_emd.distill.emd`` and usable on their own.
"""

from bert_emd.distill.config import DistillConfig
from bert_emd.distill.emd import cost_attention_update, fixed_flow, fixed_teacher_layers, pairwise_mse, solve_transport
from bert_emd.distill.run import distill

__all__ = ["DistillConfig", "cost_attention_update", "distill", "fixed_flow", "fixed_teacher_layers", "pairwise_mse",
           "solve_transport"]
