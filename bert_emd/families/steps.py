"""Run a backbone's blocks one at a time (early exit), with what each family's blocks need beside the states.

``LayerSteps(backbone)``: ``embed`` gives the embedding output and a context (mask, MPNet's position
bias, DeBERTa-v2's relative positions), ``block(i, states, context)`` runs block ``i``, and
``keep(context, rows)`` drops the samples that left the batch. The same computation as the model's own
forward pass (tests compare every layer's states against ``output_hidden_states``).
"""

from __future__ import annotations

import torch
from transformers.masking_utils import create_bidirectional_mask

from bert_emd.families import encoder_blocks, family_of

BATCH_SHAPED = ("mask", "input_mask", "embedded", "position_bias")


class LayerSteps:
    def __init__(self, backbone, name: str = "model"):
        self.family = family_of(backbone, name)
        self.config = backbone.config
        self.base = getattr(backbone, backbone.base_model_prefix)
        self.blocks = encoder_blocks(backbone, name)
        self.kind = backbone.config.model_type if backbone.config.model_type in ("mpnet", "deberta-v2", "distilbert") \
            else "bert"

    def __len__(self) -> int:
        return len(self.blocks)

    def embed(self, input_ids, attention_mask, token_type_ids=None) -> tuple[torch.Tensor, dict]:
        embeddings = self.base.embeddings
        if self.kind == "deberta-v2":
            states = embeddings(input_ids=input_ids, token_type_ids=token_type_ids, mask=attention_mask)
            encoder = self.base.encoder
            return states, {"mask": encoder.get_attention_mask(attention_mask), "input_mask": attention_mask,
                            "embedded": states, "relative_pos": encoder.get_rel_pos(states)}
        if self.kind in ("mpnet", "distilbert"):  # no token types
            states = embeddings(input_ids=input_ids)
        else:
            states = embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=states, attention_mask=attention_mask)
        context = {"mask": mask}
        if self.kind == "mpnet":
            context["position_bias"] = self.base.encoder.compute_position_bias(states)
        return states, context

    def block(self, index: int, states: torch.Tensor, context: dict) -> torch.Tensor:
        block = self.blocks[index]
        if self.kind == "mpnet":
            return block(states, context["mask"], context["position_bias"])[0]
        if self.kind == "deberta-v2":
            encoder = self.base.encoder
            out, _ = block(states, context["mask"], relative_pos=context["relative_pos"],
                           rel_embeddings=encoder.get_rel_embedding())
            if index == 0 and encoder.conv is not None:
                out = encoder.conv(context["embedded"], out, context["input_mask"])
            return out
        out = block(states, context["mask"])
        return out[0] if isinstance(out, tuple) else out

    @staticmethod
    def keep(context: dict, rows: torch.Tensor) -> dict:
        """The context of the samples ``rows`` only (DeBERTa-v2's relative positions are shared by the batch)."""
        return {key: value[rows] if key in BATCH_SHAPED and value is not None else value
                for key, value in context.items()}
