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

from bert_emd.distill.distances import pairwise_mse
from bert_emd.distill.emd import cost_attention_update
from bert_emd.distill.mappings import get_mapping


class LayerMappingLoss(nn.Module):
    def __init__(self, mapping: str, student_layers: int, teacher_layers: int, weight_update: bool = True,
                 weight_norm: str = "softmax", temperature: float = 1.0):
        super().__init__()
        self.mapping = mapping
        self.rule = get_mapping(mapping)
        self.weight_update = weight_update and self.rule.learns_weights
        self.weight_norm = weight_norm
        self.temperature = temperature
        self.register_buffer("student_weights", torch.full((student_layers,), 1.0 / student_layers,
                                                           dtype=torch.float64))
        self.register_buffer("teacher_weights", torch.full((teacher_layers,), 1.0 / teacher_layers,
                                                           dtype=torch.float64))
        if self.rule.fixed:
            self.register_buffer("fixed", torch.from_numpy(self.rule.fixed_flow(student_layers, teacher_layers)),
                                 persistent=False)
        self.last_step: dict | None = None

    def forward(self, student: torch.Tensor, teacher: torch.Tensor,
                element_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Loss for stacked layers ``student [N, ...]`` and ``teacher [M, ...]``; F is a constant."""
        return self.transport_loss(pairwise_mse(student, teacher, element_mask))

    def transport_loss(self, cost: torch.Tensor) -> torch.Tensor:
        """``sum F * cost`` for a ready N x M cost matrix (any distance: MSE here, KL in early exit)."""
        before = (self.student_weights.clone(), self.teacher_weights.clone())
        if not self.rule.fixed:
            flow = torch.from_numpy(self._solve(cost.detach())).to(cost.device)
        else:
            flow = self.fixed  # no solve, and no copy to the CPU on the training path
        if self.training:  # kept on the device; last_step_record() converts when someone asks
            self.last_step = {"cost": cost.detach(), "flow": flow, "before": before,
                              "after": (self.student_weights.clone(), self.teacher_weights.clone())}
        return (flow.to(cost.dtype) * cost).sum()

    def _solve(self, cost: torch.Tensor) -> np.ndarray:
        """The mapping's flow for this step's costs (EMD: the transport); in training also the cost-attention weight
        update."""
        cost = cost.double()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(cost, op=dist.ReduceOp.SUM)
            cost /= dist.get_world_size()
        cost_np = cost.cpu().numpy()
        if not np.isfinite(cost_np).all():  # a diverged step: no solve (the solver would only print noise) and
            return np.full(cost_np.shape, np.nan)  # no weight update; the NaN loss stops the run with one line
        student_weights = self.student_weights.cpu().numpy()
        teacher_weights = self.teacher_weights.cpu().numpy()
        flow = self.rule.flow(cost_np, student_weights, teacher_weights)
        if self.training and self.weight_update:
            new_student, new_teacher = cost_attention_update(flow, cost_np, student_weights, teacher_weights,
                                                             self.weight_norm, self.temperature)
            self.student_weights.copy_(torch.from_numpy(new_student))
            self.teacher_weights.copy_(torch.from_numpy(new_teacher))
        return flow

    def last_step_record(self) -> dict[str, np.ndarray] | None:
        """The last training step's cost and flow (N x M) and the layer weights before and after its update
        (after = the update rule's result, before any averaging of two terms)."""
        if self.last_step is None:
            return None

        def array(tensor):
            return tensor.detach().double().cpu().numpy()

        step = self.last_step
        return {"cost": array(step["cost"]), "flow": array(step["flow"]),
                "student_weights_before": array(step["before"][0]), "teacher_weights_before": array(step["before"][1]),
                "student_weights_after": array(step["after"][0]), "teacher_weights_after": array(step["after"][1])}


def share_weights(first: LayerMappingLoss, second: LayerMappingLoss) -> None:
    """Average two terms' layer weights into one shared pair (the reference code's default)."""
    for name in ("student_weights", "teacher_weights"):
        mean = (getattr(first, name) + getattr(second, name)) / 2
        getattr(first, name).copy_(mean)
        getattr(second, name).copy_(mean)
