"""What the project needs to know about an encoder family, in one place.

Every command that reaches into a model (student construction, the attention term, early exit's
layer-by-layer run, hybrid compression's Linear layers) asks ``family_of(model)`` instead of assuming
BERT's ``encoder.layer``. A family is described by

- where its blocks are below the base model (``encoder.layer``; DistilBERT ``transformer.layer``),
- the config name of its feed-forward width (``intermediate_size``; DistilBERT ``hidden_dim``),
- how the attention term reads pre-softmax scores: ``interface`` (the family's attention goes through
  the transformers attention-function interface: bert_emd.distill.attention) or ``hooks`` (MPNet,
  DeBERTa-v2: bert_emd.families.scores rebuilds the scores from the layer's own projections),
- the module path of each Linear layer hybrid compression may factorise, inside one block,
- how its classifier turns a layer's states into logits (early exit's last exit),
- and, for a family the project cannot serve, why and what to do instead.

A family not listed is treated as BERT-like when its blocks sit at ``encoder.layer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from bert_emd.errors import BertEmdError

BERT_LINEARS = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
                "attention_output": "attention.output.dense", "ffn_in": "intermediate.dense",
                "ffn_out": "output.dense"}


@dataclass(frozen=True)
class Family:
    name: str
    blocks: str = "encoder.layer"
    intermediate: str = "intermediate_size"
    scores: str = "interface"  # interface | hooks
    linears: dict = field(default_factory=lambda: dict(BERT_LINEARS))
    head: str = "auto"  # auto (BERT pooler + linear, or a head on the sequence) | context_pooler | first_token_mlp
    position_offset: int = 0  # position ids start after the padding id (RoBERTa-style): max positions - 2 tokens
    refused: str | None = None


FAMILIES = {
    "bert": Family("BERT"),
    "roberta": Family("RoBERTa", position_offset=2),
    "xlm-roberta": Family("XLM-RoBERTa", position_offset=2),
    "camembert": Family("CamemBERT", position_offset=2),
    "electra": Family("ELECTRA"),
    "mpnet": Family("MPNet", scores="hooks", position_offset=2, linears={
        "query": "attention.attn.q", "key": "attention.attn.k", "value": "attention.attn.v",
        "attention_output": "attention.attn.o", "ffn_in": "intermediate.dense", "ffn_out": "output.dense"}),
    "deberta-v2": Family("DeBERTa-v2", scores="hooks", head="context_pooler", linears={
        "query": "attention.self.query_proj", "key": "attention.self.key_proj", "value": "attention.self.value_proj",
        "attention_output": "attention.output.dense", "ffn_in": "intermediate.dense", "ffn_out": "output.dense"}),
    "distilbert": Family("DistilBERT", blocks="transformer.layer", intermediate="hidden_dim",
                         head="first_token_mlp", linears={
                             "query": "attention.q_lin", "key": "attention.k_lin", "value": "attention.v_lin",
                             "attention_output": "attention.out_lin", "ffn_in": "ffn.lin1", "ffn_out": "ffn.lin2"}),
    "albert": Family("ALBERT", refused="ALBERT shares one set of layer weights across all its layers, so it has no "
                     "separate layers to map, copy or compress; use a teacher of a family with its own weights per "
                     "layer (BERT, RoBERTa, ELECTRA, DeBERTa-v2, MPNet, DistilBERT)"),
}


def family_of(model_or_config, name: str = "model") -> Family:
    """The family description of a model (or its config); a one-line error for a refused family."""
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    family = FAMILIES.get(model_type)
    if family is None:
        family = Family(model_type or "unknown")
    if family.refused:
        raise BertEmdError(f"{name}: {family.refused}")
    return family


def encoder_blocks(model: nn.Module, name: str = "model") -> nn.ModuleList:
    """The transformer blocks of a classifier or encoder, per its family."""
    family = family_of(model, name)
    base = getattr(model, getattr(model, "base_model_prefix", ""), model)
    blocks = base
    for part in family.blocks.split("."):
        blocks = getattr(blocks, part, None)
    if not isinstance(blocks, nn.ModuleList):
        raise BertEmdError(f"{name}: cannot find the encoder layers of a {type(model).__name__} (expected "
                           f"<model>.{family.blocks}); supported families: {', '.join(supported_families())}")
    return blocks


def supported_families() -> list[str]:
    return [family.name for family in FAMILIES.values() if not family.refused]


def feed_forward_size(config) -> int:
    return getattr(config, family_of(config).intermediate)


def set_sizes(config, layers: int, hidden: int, intermediate: int, heads: int) -> None:
    """Set a config's depth and widths under the family's own names (DistilBERT maps the common ones)."""
    config.num_hidden_layers = layers
    config.hidden_size = hidden
    setattr(config, family_of(config).intermediate, intermediate)
    config.num_attention_heads = heads


def classifier_logits(backbone: nn.Module, states: torch.Tensor) -> torch.Tensor:
    """The backbone's own classification head applied to one layer's hidden states ``[B, L, H]``."""
    family = family_of(backbone)
    dropout = getattr(backbone, "dropout", nn.Identity())
    if family.head == "context_pooler":  # DeBERTa-v2: first-token pooler on the classifier model, then linear
        return backbone.classifier(dropout(backbone.pooler(states)))
    if family.head == "first_token_mlp":  # DistilBERT: first token -> pre_classifier -> ReLU -> linear
        return backbone.classifier(dropout(nn.functional.relu(backbone.pre_classifier(states[:, 0]))))
    base = getattr(backbone, backbone.base_model_prefix)
    pooler = getattr(base, "pooler", None)
    if pooler is not None and isinstance(backbone.classifier, nn.Linear):  # BERT: pooler + linear
        return backbone.classifier(dropout(pooler(states)))
    return backbone.classifier(states)  # RoBERTa, ELECTRA, MPNet: a head that reads the sequence
