"""BERT-EMD distillation: many-to-many layer mapping by Earth Mover's Distance, and fixed baselines.

The EMD pieces (``solve_transport``, ``cost_attention_update``, ``fixed_flow``) are in
``bert_emd.distill.emd``, the layer distances (``pairwise_mse``, ``pairwise_score_mse``) in
``bert_emd.distill.distances``; both are usable on their own.
"""

from bert_emd.distill.config import DistillConfig
from bert_emd.distill.distances import pairwise_mse, pairwise_score_mse
from bert_emd.distill.emd import cost_attention_update, fixed_flow, fixed_teacher_layers, solve_transport
from bert_emd.distill.run import distill

__all__ = ["DistillConfig", "cost_attention_update", "distill", "fixed_flow", "fixed_teacher_layers", "pairwise_mse",
           "pairwise_score_mse", "solve_transport"]
