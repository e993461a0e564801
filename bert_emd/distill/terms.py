"""The loss terms the Distiller composes, as objects in one registry.

The BERT-EMD loss (docs/methods.md, section 1)

    L = beta * (theta * (L_att_emd + L_hid_emd) + L_emb) + L_pred

is a weighted sum of registered terms: ``prediction`` (soft cross-entropy to the teacher's predictions plus the
labels' share; MSE for regression), and the layer terms ``embedding`` (MSE of the embedding outputs),
``hidden_emd`` and ``attention_emd`` (the mapped layer distances, each weighed by theta). The Distiller adds the
prediction terms to beta times the weighted layer terms (the two-stage schedule's layer stage trains on the
weighted layer terms alone), logs each term per step as ``loss_NAME`` and names the non-finite ones when training
diverges. The built-in terms follow their options (``--attention``, ``--hidden``, ``--embedding``, ``--mapping``);
any other registered term is switched on by ``--extra-terms NAME[:WEIGHT]``. A new term is one ``LossTerm``
subclass and one ``register_term`` call::

    class LogitCosine(LossTerm):
        def loss(self, distiller, batch):
            return 1 - F.cosine_similarity(batch.student_logits, batch.teacher_logits, dim=-1).mean()

    register_term(LogitCosine("logit_cosine", "1 - cosine of student and teacher logits", layer=False))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bert_emd.distill.attention import QUERY_KEY_ATTENTION
from bert_emd.distill.distances import layer_distances, masked_layers, score_distances, score_factors
from bert_emd.distill.layer_loss import LayerMappingLoss
from bert_emd.distill.registry import Registry
from bert_emd.errors import BertEmdError
from bert_emd.families.scores import install_score_hooks


@dataclass
class TermBatch:
    """What a term sees of one training batch: the logits, the labels, and each layer term's prepared outputs
    of both models by term name (the teacher's computed without gradients; the student's hidden states at the
    teacher's width when the Distiller projects them)."""
    student_logits: torch.Tensor
    teacher_logits: torch.Tensor
    labels: torch.Tensor | None
    attention_mask: torch.Tensor | None
    student: dict[str, Any]
    teacher: dict[str, Any]


@dataclass(frozen=True)
class LossTerm:
    name: str  # logged as loss_NAME
    description: str
    layer: bool = True  # a layer term: weighed by beta in the joint loss, trained alone by the layer stage
    uses_hidden_states: bool = False
    uses_attentions: bool = False
    projected: bool = False  # compares the student's hidden states at the teacher's width (a trained projection)

    def enabled(self, config) -> bool:
        return self.name in extra_term_weights(config)

    def weight(self, config) -> float:
        return extra_term_weights(config).get(self.name, 1.0)

    def build(self, distiller, config) -> nn.Module | None:
        """Trainable or saved parts of the term (a module kept on the Distiller as ``module_attribute``)."""
        return None

    @property
    def module_attribute(self) -> str:
        return f"{self.name}_term"

    def prepare(self, distiller, hidden_states, attentions, attention_mask) -> Any:
        """One model's layer outputs in the form the term compares (called for the teacher and the student)."""
        return None

    def loss(self, distiller, batch: TermBatch) -> torch.Tensor:
        raise NotImplementedError


TERMS: Registry = Registry("loss term")


def register_term(term: LossTerm) -> LossTerm:
    return TERMS.add(term)


def extra_term_weights(config) -> dict[str, float]:
    """``--extra-terms NAME[:WEIGHT],...`` as {name: weight}; one line naming the option for a bad entry."""
    spec = getattr(config, "extra_terms", None) or ""
    weights = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        name, _, weight = entry.partition(":")
        if name not in TERMS or name in BUILT_IN:
            others = [term for term in TERMS if term not in BUILT_IN]
            raise BertEmdError(f"--extra-terms: {name!r} is not a registered extra loss term (registered: "
                               f"{', '.join(others) or 'none'}; the built-in terms follow their own options)")
        try:
            weights[name] = float(weight) if weight else 1.0
        except ValueError:
            raise BertEmdError(f"--extra-terms: the weight of {name} must be a number (got {weight!r})") from None
        if not weights[name] >= 0 or weights[name] == float("inf"):
            raise BertEmdError(f"--extra-terms: the weight of {name} must be a finite number >= 0 (got {weight})")
    return weights


def check_extra_terms(config) -> None:
    """One line for an unknown term, a bad weight, or a layer term under a mapping without layer terms."""
    from bert_emd.distill.mappings import get_mapping

    layer = [name for name in extra_term_weights(config) if TERMS[name].layer]
    if layer and not get_mapping(config.mapping).layer_terms:
        raise BertEmdError(f"--extra-terms {layer[0]} is a layer term; --mapping {config.mapping} has no layer terms")


def _masks(distiller, attention_mask):
    """(hidden-state mask [B, L, 1], attention-map mask [B, 1, L, L]); None where padding counts."""
    if distiller.include_padding or attention_mask is None:
        return None, None
    return attention_mask[:, :, None], attention_mask[:, None, :, None] * attention_mask[:, None, None, :]


class PredictionTerm(LossTerm):
    """The prediction-layer KD: the Distiller's ``prediction_loss`` (sequence, token or span heads)."""

    def enabled(self, config) -> bool:
        return True

    def weight(self, config) -> float:
        return 1.0

    def loss(self, distiller, batch):
        return distiller.prediction_loss(batch)


class EmbeddingTerm(LossTerm):
    """Plain MSE of the embedding-layer outputs."""

    def enabled(self, config) -> bool:
        return config.embedding

    def weight(self, config) -> float:
        return 1.0

    def prepare(self, distiller, hidden_states, attentions, attention_mask):
        return masked_layers(hidden_states[:1], _masks(distiller, attention_mask)[0])

    def loss(self, distiller, batch):
        return layer_distances(batch.student[self.name], batch.teacher[self.name])[0, 0]


class MappedTerm(LossTerm):
    """A layer-matching term: the layer distances weighed by the mapping's flow (EMD or fixed)."""

    def weight(self, config) -> float:
        return config.theta

    def build(self, distiller, config):
        return LayerMappingLoss(config.mapping, distiller.student.config.num_hidden_layers,
                                distiller.teacher.config.num_hidden_layers, config.weight_update,
                                config.weight_norm, config.emd_temperature)


class HiddenTerm(MappedTerm):
    def enabled(self, config) -> bool:
        return config.hidden

    @property
    def module_attribute(self) -> str:
        return "hidden_loss"

    def prepare(self, distiller, hidden_states, attentions, attention_mask):
        return masked_layers(hidden_states[1:], _masks(distiller, attention_mask)[0])

    def loss(self, distiller, batch):
        return distiller.hidden_loss.transport_loss(layer_distances(batch.student[self.name],
                                                                    batch.teacher[self.name]))


class AttentionTerm(MappedTerm):
    """Attention scores or probabilities; from query/key factors when the models run the factorised attention
    function (no L x L map is made), else from the maps (score hooks where a family bypasses the interface)."""

    def enabled(self, config) -> bool:
        return config.attention != "off"

    @property
    def module_attribute(self) -> str:
        return "attention_loss"

    def build(self, distiller, config):
        teacher, student = distiller.teacher, distiller.student
        if (teacher.config._attn_implementation == QUERY_KEY_ATTENTION) != distiller.factorised_attention:
            raise ValueError("teacher and student must use the same attention function for the attention term "
                             f"(teacher {teacher.config._attn_implementation}, "
                             f"student {student.config._attn_implementation})")
        if config.attention == "scores" and not distiller.factorised_attention:
            for model in (teacher, student):  # MPNet, DeBERTa-v2: scores from hooks (no-op for other families)
                install_score_hooks(model)
        return super().build(distiller, config)

    def prepare(self, distiller, hidden_states, attentions, attention_mask):
        if distiller.factorised_attention:
            return score_factors(attentions, attention_mask, count_padding=distiller.include_padding)
        return masked_layers(attentions, _masks(distiller, attention_mask)[1])

    def loss(self, distiller, batch):
        distances = score_distances if distiller.factorised_attention else layer_distances
        return distiller.attention_loss.transport_loss(distances(batch.student[self.name], batch.teacher[self.name]))


register_term(PredictionTerm("prediction", "soft cross-entropy to the teacher's predictions (MSE for regression), "
                             "1 - alpha of it on the labels", layer=False))
register_term(EmbeddingTerm("embedding", "MSE of the embedding-layer outputs", uses_hidden_states=True,
                            projected=True))
register_term(HiddenTerm("hidden_emd", "hidden states of the transformer layers, distances weighed by the "
                         "mapping's flow", uses_hidden_states=True, projected=True))
register_term(AttentionTerm("attention_emd", "attention scores (or probabilities), distances weighed by the "
                            "mapping's flow", uses_attentions=True))
BUILT_IN = frozenset(TERMS)
