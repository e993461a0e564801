"""One layer-matching term (attention or hidden states): ``sum F * D`` with F from EMD or fixed.

The layer weights are buffers, so they are saved in checkpoints and restored on resume. Under DDP
the cost matrix is averaged over processes before the solve, so every process computes the same
flow and the same weights.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from bert_emd.distill.emd import cost_attention_update, fixed_flow, pairwise_mse, solve_transport


class LayerMappingLoss(nn.Module):
    def __init__(self, mapping: str, student_layers: int, teacher_layers: int, weight_update: bool = True,
                 weight_norm: str = "softmax", temperature: float = 1.0):
        super().__init__()
        self.mapping = mapping
        self.weight_update = weight_update and mapping == "emd"
        self.weight_norm = weight_norm
        self.temperature = temperature
        self.register_buffer("student_weights", torch.full((student_layers,), 1.0 / student_layers,
                                                           dtype=torch.float64))
        self.register_buffer("teacher_weights", torch.full((teacher_layers,), 1.0 / teacher_layers,
                                                           dtype=torch.float64))
        if mapping in ("skip", "last"):
            self.register_buffer("fixed", torch.from_numpy(fixed_flow(mapping, student_layers, teacher_layers)),
                                 persistent=False)
        self.last_step: dict | None = None

    def forward(self, student: torch.Tensor, teacher: torch.Tensor,
                element_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Loss for stacked layers ``student [N, ...]`` and ``teacher [M, ...]``; F is a constant."""
        cost = pairwise_mse(student, teacher, element_mask)
        if self.mapping != "emd":
            if self.training:
                weights = (self.student_weights.cpu().numpy(), self.teacher_weights.cpu().numpy())
                self.last_step = {"cost": cost.detach().double().cpu().numpy(), "flow": self.fixed.cpu().numpy(),
                                  "student_weights_before": weights[0], "teacher_weights_before": weights[1],
                                  "student_weights_after": weights[0], "teacher_weights_after": weights[1]}
            return (self.fixed.to(cost.dtype) * cost).sum()
        cost_now = cost.detach().double()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(cost_now, op=dist.ReduceOp.SUM)
            cost_now /= dist.get_world_size()
        cost_np = cost_now.cpu().numpy()
        before_student = self.student_weights.cpu().numpy().copy()
        before_teacher = self.teacher_weights.cpu().numpy().copy()
        flow = solve_transport(cost_np, before_student, before_teacher)
        if self.training:
            after_student, after_teacher = before_student, before_teacher
            if self.weight_update:
                after_student, after_teacher = cost_attention_update(
                    flow, cost_np, before_student, before_teacher, self.weight_norm, self.temperature)
                self.student_weights.copy_(torch.from_numpy(after_student))
                self.teacher_weights.copy_(torch.from_numpy(after_teacher))
            self.last_step = {"cost": cost_np, "flow": flow,
                              "student_weights_before": before_student, "teacher_weights_before": before_teacher,
                              "student_weights_after": np.asarray(after_student),
                              "teacher_weights_after": np.asarray(after_teacher)}
        return (torch.from_numpy(flow).to(cost) * cost).sum()


def share_weights(first: LayerMappingLoss, second: LayerMappingLoss) -> None:
    """Average two terms' layer weights into one shared pair (the reference code's default)."""
    for name in ("student_weights", "teacher_weights"):
        mean = (getattr(first, name) + getattr(second, name)) / 2
        getattr(first, name).copy_(mean)
        getattr(second, name).copy_(mean)
