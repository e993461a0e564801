"""What the Trainer optimises in BERT-of-Theseus: a frozen predecessor (the teacher) whose groups of layers are each
replaced, batch by batch and independently, by one successor layer with probability p; the task loss only.

Module i of n replaces predecessor layers [i N / n, (i + 1) N / n). The successor is a whole n-layer classifier of the
teacher's family: its embeddings and head are copies of the teacher's and stay frozen while modules are being
replaced (their gradients are dropped before each optimiser step), so that only successor layers learn; after p
reaches 1 the successor runs alone, exactly its own forward pass, and ``unfreeze`` lets its embeddings and head
train too. The gates come from a generator seeded by (seed, optimiser step, micro-batch), so a resumed run draws
the same ones and every DDP rank draws alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import TrainerCallback

from bert_emd.families import classifier_logits, encoder_blocks
from bert_emd.families.steps import LayerSteps
from bert_emd.theseus.schedule import ReplacingSchedule


class TheseusModel(nn.Module):
    checkpoint_excludes = ("predecessor.",)  # frozen: not saved in checkpoints

    def __init__(self, predecessor: nn.Module, successor: nn.Module, schedule: ReplacingSchedule, seed: int,
                 unfreeze: bool = False):
        super().__init__()
        self.predecessor = predecessor.requires_grad_(False).eval()
        self.successor = successor
        self.schedule, self.seed, self.unfreeze = schedule, seed, unfreeze
        total, modules = predecessor.config.num_hidden_layers, successor.config.num_hidden_layers
        size = total // modules
        self.groups = [list(range(index * size, (index + 1) * size)) for index in range(modules)]
        self.__dict__["_predecessor_steps"] = LayerSteps(predecessor, "teacher")
        self.__dict__["_successor_steps"] = LayerSteps(successor, "successor")
        layer_parameters = {id(parameter) for parameter in encoder_blocks(successor, "successor").parameters()}
        self.__dict__["_frozen"] = [parameter for parameter in successor.parameters()
                                    if id(parameter) not in layer_parameters]  # embeddings and head
        self.is_regression = predecessor.config.problem_type == "regression" or predecessor.config.num_labels == 1
        self.step, self.micro_batch = 0, 0
        self.rate = schedule.rate_at(0)

    def train(self, mode: bool = True):
        super().train(mode)
        self.predecessor.eval()
        return self

    def set_step(self, step: int) -> None:
        self.step, self.micro_batch, self.rate = step, 0, self.schedule.rate_at(step)

    def gates(self) -> torch.Tensor:
        """Which modules the successor takes in this batch (True: replaced), one Bernoulli(p) draw each."""
        generator = torch.Generator().manual_seed(hash((self.seed, self.step, self.micro_batch)) % 2**63)
        self.micro_batch += 1
        return torch.rand(len(self.groups), generator=generator) < self.rate

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        gates = self.gates() if self.training and self.rate < 1.0 else None
        if gates is None or bool(gates.all()):
            logits = self.successor(**inputs).logits  # the successor alone: its own forward pass
        else:
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            mine, theirs = self.__dict__["_successor_steps"], self.__dict__["_predecessor_steps"]
            states, context = mine.embed(input_ids, attention_mask, token_type_ids)
            for index, (replaced, layers) in enumerate(zip(gates.tolist(), self.groups)):
                if replaced:
                    states = mine.block(index, states, context)
                else:
                    for layer in layers:
                        states = theirs.block(layer, states, context)
            logits = classifier_logits(self.successor, states)
        return {"loss": self._task_loss(logits, labels), "logits": logits}

    def _task_loss(self, logits, labels):
        if labels is None:
            return None
        if self.is_regression:
            return F.mse_loss(logits.view(-1).float(), labels.float())
        return F.cross_entropy(logits, labels)

    def drop_frozen_gradients(self) -> None:
        """Before each optimiser step: no update of the successor's embeddings and head while modules are replaced
        (and none after, unless ``unfreeze``)."""
        if self.unfreeze and self.rate >= 1.0:
            return
        for parameter in self.__dict__["_frozen"]:
            parameter.grad = None


class ReplacingRate(TrainerCallback):
    """Sets each optimiser step's p and drops the frozen gradients before the step."""

    def __init__(self, model: TheseusModel):
        self.model = model

    def on_step_begin(self, args, state, control, **kwargs):
        self.model.set_step(state.global_step)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.model.drop_frozen_gradients()
