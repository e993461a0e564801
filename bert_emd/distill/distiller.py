"""The module the Trainer optimises: frozen teacher, student, projection and the BERT-EMD loss.

Every term of the paper's loss is here (docs/methods.md, section 1):

    L = beta * (theta * (L_att_emd + L_hid_emd) + L_emb) + L_pred
    L_pred = alpha * soft_CE(student / t, teacher / t) * t^2 + (1 - alpha) * CE(student, labels)

(MSE to the teacher's output, and to the labels, for regression tasks.) The two-stage schedule's layer stage
(TinyBERT's shape) has no prediction loss to balance, so it trains on the layer terms unweighted,
theta * (L_att_emd + L_hid_emd) + L_emb, as TinyBERT's layer stage and `bert-emd general-distill` do: a small
beta there would only shrink the gradients towards AdamW's epsilon and slow the stage (measured in
results/recipe_table/layer_stage_beta.json).
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

from bert_emd.distill.attention import QUERY_KEY_ATTENTION
from bert_emd.distill.config import DistillConfig
from bert_emd.distill.distances import layer_distances, masked_layers, score_distances, score_factors
from bert_emd.distill.layer_loss import LayerMappingLoss, share_weights
from bert_emd.distill.mappings import get_mapping
from bert_emd.families.scores import install_score_hooks

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
        layers_on = get_mapping(config.mapping).layer_terms
        self.embedding_term = layers_on and config.embedding
        self.separate_weights = config.separate_weights
        student_layers, teacher_layers = student.config.num_hidden_layers, teacher.config.num_hidden_layers

        def term():
            return LayerMappingLoss(config.mapping, student_layers, teacher_layers, config.weight_update,
                                    config.weight_norm, config.emd_temperature)

        self.attention_loss = term() if layers_on and config.attention != "off" else None
        # The models' attention function decides what `attentions` holds: queries and keys (factorised
        # path) or L x L maps. Both models must hand back the same kind.
        self.factorised_attention = student.config._attn_implementation == QUERY_KEY_ATTENTION
        if self.attention_loss is not None and \
                (teacher.config._attn_implementation == QUERY_KEY_ATTENTION) != self.factorised_attention:
            raise ValueError("teacher and student must use the same attention function for the attention term "
                             f"(teacher {teacher.config._attn_implementation}, "
                             f"student {student.config._attn_implementation})")
        if self.attention_loss is not None and config.attention == "scores" and not self.factorised_attention:
            for model in (teacher, student):  # MPNet, DeBERTa-v2: scores from hooks (no-op for other families)
                install_score_hooks(model)
        self.hidden_loss = term() if layers_on and config.hidden else None
        needs_projection = (self.hidden_loss is not None or self.embedding_term) and \
            student.config.hidden_size != teacher.config.hidden_size
        # One shared trainable projection of student states to the teacher width (training only).
        self.projection = nn.Linear(student.config.hidden_size, teacher.config.hidden_size) \
            if needs_projection else None
        self.stage = "joint"
        self.running: dict[str, list[torch.Tensor]] = defaultdict(list)

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

    @property
    def layer_terms_on(self) -> bool:
        return self.stage != "prediction" and bool(self.attention_loss or self.hidden_loss or self.embedding_term)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        if not self.training:  # evaluation: the student alone
            logits = self.student(**inputs).logits
            return {"loss": self._hard_loss(logits, labels), "logits": logits}

        layers = self.layer_terms_on
        want_attention = layers and self.attention_loss is not None
        with torch.no_grad():
            teacher = self.teacher(**inputs, output_hidden_states=layers, output_attentions=want_attention)
            targets = self._layers(teacher.hidden_states, teacher.attentions, attention_mask) if layers else {}
        teacher_logits = teacher.logits
        del teacher  # the prepared targets are all the layer terms need; the raw layer outputs go now
        student = self.student(**inputs, output_hidden_states=layers, output_attentions=want_attention)
        terms: dict[str, torch.Tensor] = {}
        if self.stage != "intermediate":
            terms["prediction"] = self._prediction_loss(student.logits, teacher_logits, labels)
        if layers:
            terms.update(self._layer_terms(student, targets, attention_mask))
        layer_total = self.theta * (terms.get("attention_emd", 0.0) + terms.get("hidden_emd", 0.0)) + \
            terms.get("embedding", 0.0)
        layer_weight = self.beta if self.stage == "joint" else 1.0  # the layer stage: the layer terms alone
        loss = terms.get("prediction", 0.0) + (layer_weight * layer_total if layers else 0.0)
        for name, value in terms.items():  # detached tensors: no device sync per step, only at logging
            self.running[name].append(value.detach())
        return {"loss": loss, "logits": student.logits}

    def _masks(self, attention_mask):
        """(hidden-state mask [B, L, 1], attention-map mask [B, 1, L, L]); None where padding counts."""
        if self.include_padding or attention_mask is None:
            return None, None
        return attention_mask[:, :, None], attention_mask[:, None, :, None] * attention_mask[:, None, None, :]

    def _layers(self, hidden_states, attentions, attention_mask) -> dict:
        """One model's layer outputs in the form the distances compare (masked, stacked or factorised)."""
        token_mask, pair_mask = self._masks(attention_mask)
        prepared = {}
        if self.embedding_term:
            prepared["embedding"] = masked_layers(hidden_states[:1], token_mask)
        if self.hidden_loss is not None:
            prepared["hidden"] = masked_layers(hidden_states[1:], token_mask)
        if self.attention_loss is not None and self.factorised_attention:
            prepared["attention"] = score_factors(attentions, attention_mask, count_padding=self.include_padding)
        elif self.attention_loss is not None:
            prepared["attention"] = masked_layers(attentions, pair_mask)
        return prepared

    def _layer_terms(self, student, targets: dict, attention_mask) -> dict[str, torch.Tensor]:
        student_hidden = student.hidden_states
        if self.projection is not None:
            student_hidden = [self.projection(state) for state in student_hidden]
        prepared = self._layers(student_hidden, student.attentions, attention_mask)
        terms = {}
        if self.embedding_term:
            terms["embedding"] = layer_distances(prepared["embedding"], targets["embedding"])[0, 0]
        if self.hidden_loss is not None:
            terms["hidden_emd"] = self.hidden_loss.transport_loss(layer_distances(prepared["hidden"],
                                                                                  targets["hidden"]))
        if self.attention_loss is not None:
            distances = score_distances if self.factorised_attention else layer_distances
            terms["attention_emd"] = self.attention_loss.transport_loss(distances(prepared["attention"],
                                                                                  targets["attention"]))
        if self.attention_loss is not None and self.hidden_loss is not None and not self.separate_weights \
                and self.attention_loss.weight_update:
            share_weights(self.attention_loss, self.hidden_loss)
        return terms

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
