"""The module the Trainer optimises: frozen teacher, student, projection and the BERT-EMD loss.

Every term of the paper's loss is here (docs/methods.md, section 1):

    L = beta * (theta * (L_att_emd + L_hid_emd) + L_emb) + L_pred
    L_pred = alpha * soft_CE(student / t, teacher / t) * t^2 + (1 - alpha) * CE(student, labels)

(MSE to the teacher's output, and to the labels, for regression tasks.) The two-stage schedule's layer stage
(TinyBERT's shape) has no prediction loss to balance, so it trains on the layer terms unweighted,
theta * (L_att_emd + L_hid_emd) + L_emb, as TinyBERT's layer stage and `bert-emd general-distill` do: a small
beta there would only shrink the gradients towards AdamW's epsilon and slow the stage (measured in
results/recipe_table/layer_stage_beta.json).

The terms themselves are registered objects (``bert_emd.distill.terms``); the Distiller switches on those its
config asks for, computes each on the batch and adds them with their weights.
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

from bert_emd.distill.attention import QUERY_KEY_ATTENTION
from bert_emd.distill.config import DistillConfig
from bert_emd.distill.layer_loss import share_weights
from bert_emd.distill.mappings import get_mapping
from bert_emd.distill.terms import TERMS, TermBatch, check_extra_terms

STAGES = ("joint", "intermediate", "prediction")


class Distiller(nn.Module):
    checkpoint_excludes = ("teacher.",)  # the frozen teacher is not saved in checkpoints (GuardedTrainer)

    def __init__(self, teacher: nn.Module, student: nn.Module, config: DistillConfig):
        super().__init__()
        self.teacher = teacher.requires_grad_(False).eval()
        self.student = student
        self.alpha, self.beta, self.theta, self.kd_temperature = (config.alpha, config.beta, config.theta,
                                                                  config.kd_temperature)
        self.is_regression = teacher.config.problem_type == "regression" or teacher.config.num_labels == 1
        self.include_padding = config.include_padding
        self.separate_weights = config.separate_weights
        # The models' attention function decides what `attentions` holds: queries and keys (factorised
        # path) or L x L maps.
        self.factorised_attention = student.config._attn_implementation == QUERY_KEY_ATTENTION
        check_extra_terms(config)
        layers_on = get_mapping(config.mapping).layer_terms
        self.terms = []  # the registered terms this config switches on, with their weights
        for term in TERMS.values():
            setattr(self, term.module_attribute, None)
            if not term.enabled(config):
                continue
            if term.layer and not layers_on:
                continue
            module = term.build(self, config)
            if module is not None:
                setattr(self, term.module_attribute, module)
            self.terms.append((term, term.weight(config)))
        self.embedding_term = "embedding" in self.term_names
        needs_projection = any(term.projected for term, _ in self.terms) and \
            student.config.hidden_size != teacher.config.hidden_size
        # One shared trainable projection of student states to the teacher width (training only).
        self.projection = nn.Linear(student.config.hidden_size, teacher.config.hidden_size) \
            if needs_projection else None
        self.stage = "joint"
        self.running: dict[str, list[torch.Tensor]] = defaultdict(list)

    @property
    def term_names(self) -> list[str]:
        return [term.name for term, _ in self.terms]

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher never uses dropout
        return self

    def set_stage(self, stage: str) -> None:
        """joint: all terms; intermediate: layer terms only; prediction: prediction loss only."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage}")
        self.stage = stage
        if self.projection is not None:  # unused in the prediction stage (and DDP wants no unused parameters)
            self.projection.requires_grad_(stage != "prediction")

    def active_terms(self) -> list:
        """The terms of the current stage, with their weights."""
        if self.stage == "prediction":
            return [(term, weight) for term, weight in self.terms if not term.layer]
        if self.stage == "intermediate":
            return [(term, weight) for term, weight in self.terms if term.layer]
        return self.terms

    @property
    def layer_terms_on(self) -> bool:
        return any(term.layer for term, _ in self.active_terms())

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        if not self.training:  # evaluation: the student alone
            logits = self._logits(self.student(**inputs))
            return {"loss": self._hard_loss(logits, labels), "logits": logits}

        active = self.active_terms()
        layer_terms = [term for term, _ in active if term.layer]
        want_hidden = any(term.uses_hidden_states for term in layer_terms)
        want_attention = any(term.uses_attentions for term in layer_terms)
        with torch.no_grad():
            teacher = self.teacher(**inputs, output_hidden_states=want_hidden, output_attentions=want_attention)
            targets = {term.name: term.prepare(self, teacher.hidden_states, teacher.attentions, attention_mask)
                       for term in layer_terms}
        teacher_logits = self._logits(teacher)
        del teacher  # the prepared targets are all the layer terms need; the raw layer outputs go now
        student = self.student(**inputs, output_hidden_states=want_hidden, output_attentions=want_attention)
        student_hidden = student.hidden_states
        if self.projection is not None and want_hidden:
            student_hidden = [self.projection(state) for state in student_hidden]
        prepared = {term.name: term.prepare(self, student_hidden, student.attentions, attention_mask)
                    for term in layer_terms}
        student_logits = self._logits(student)
        batch = TermBatch(student_logits, teacher_logits, labels, attention_mask, prepared, targets)
        terms = {term.name: term.loss(self, batch) for term, _ in active}
        if self.attention_loss is not None and self.hidden_loss is not None and not self.separate_weights \
                and self.attention_loss.weight_update and layer_terms:
            share_weights(self.attention_loss, self.hidden_loss)
        prediction = sum(weight * terms[term.name] for term, weight in active if not term.layer)
        layer_total = sum(weight * terms[term.name] for term, weight in active if term.layer)
        layer_weight = self.beta if self.stage == "joint" else 1.0  # the layer stage: the layer terms alone
        loss = prediction + layer_weight * layer_total
        for name, value in terms.items():  # detached tensors: no device sync per step, only at logging
            self.running[name].append(value.detach())
        return {"loss": loss, "logits": student_logits}

    def _logits(self, output) -> torch.Tensor:
        """The head's output the prediction loss compares (question answering: start and end logits stacked)."""
        return output.logits

    def prediction_loss(self, batch: TermBatch) -> torch.Tensor:
        return self._prediction_loss(batch.student_logits, batch.teacher_logits, batch.labels)

    def _prediction_loss(self, student_logits, teacher_logits, labels):
        if self.is_regression:
            soft = F.mse_loss(student_logits.float(), teacher_logits.float())
        else:
            t = self.kd_temperature
            soft = -(F.softmax(teacher_logits / t, -1) * F.log_softmax(student_logits / t, -1)).sum(-1).mean() * t * t
        if self.alpha >= 1.0 or labels is None:
            return soft
        return self.alpha * soft + (1.0 - self.alpha) * self._hard_loss(student_logits, labels)

    def _hard_loss(self, logits, labels):
        if labels is None:
            return None
        if self.is_regression:
            return F.mse_loss(logits.view(-1).float(), labels.float())
        return F.cross_entropy(logits, labels)

    def non_finite_terms(self) -> list[str]:
        """The loss terms with a NaN or inf among the values recorded since the last log (the divergence stop
        names them)."""
        return [f"loss_{name}" for name, values in self.running.items()
                if values and not torch.isfinite(torch.stack(values)).all()]

    def pop_running_means(self) -> dict[str, float]:
        means = {f"loss_{name}": torch.stack(values).float().mean().item()
                 for name, values in self.running.items() if values}
        self.running.clear()
        return means

    def layer_weights(self) -> dict[str, dict[str, list[float]]]:
        weights = {}
        for name, term in (("attention", self.attention_loss), ("hidden", self.hidden_loss)):
            if term is not None:
                weights[name] = {"student_weights": term.student_weights.tolist(),
                                 "teacher_weights": term.teacher_weights.tolist()}
        return weights
