"""A fine-tuned encoder with an exit student after each of its layers but the last, and early-exit inference.

The backbone (a transformers sequence classifier) is stored in the standard transformers format;
the exit students go beside it in ``early_exit.safetensors`` with their settings in ``early_exit.json``.
The backbone is never trained here: it stays frozen and in eval mode.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bert_emd.early_exit.heads import DESIGNS, build_head
from bert_emd.early_exit.uncertainty import check_uncertainty, uncertainty
from bert_emd.errors import BertEmdError
from bert_emd.families import classifier_logits
from bert_emd.families.steps import LayerSteps
from bert_emd.finite import refuse_non_finite
from bert_emd.models import load_trained_classifier

SETTINGS_FILE = "early_exit.json"
WEIGHTS_FILE = "early_exit.safetensors"


class EarlyExitModel(nn.Module):
    def __init__(self, backbone: nn.Module, design: str = "fastbert", width: int = 128, heads: int = 2,
                 name: str = "model"):
        super().__init__()
        if design not in DESIGNS:
            raise BertEmdError(f"unknown student design {design!r}; choose from {', '.join(DESIGNS)}")
        if backbone.config.num_labels < 2:
            raise BertEmdError(f"{name} is a regressor (1 output): early exit by uncertainty needs a "
                               "classification task")
        if not hasattr(backbone, "classifier"):
            raise BertEmdError(f"{name}: a {type(backbone).__name__} has no `classifier` to answer at the last layer")
        # the family's way of running its blocks one at a time: plain references kept outside the module registry,
        # so that no parameter is registered twice; fails here, before any work, for a family it cannot serve
        self.__dict__["_steps"] = LayerSteps(backbone, name)
        self.backbone = backbone.requires_grad_(False).eval()
        hidden, classes = backbone.config.hidden_size, backbone.config.num_labels
        self.settings = {"design": design, "width": width, "heads": heads, "hidden": hidden, "classes": classes,
                         "layers": backbone.config.num_hidden_layers}
        self.exits = nn.ModuleList(build_head(design, hidden, classes, width, heads)
                                   for _ in range(len(self._steps) - 1))

    @property
    def num_layers(self) -> int:
        return len(self._steps)

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # frozen: no dropout in the backbone, ever
        return self

    # ----- pieces of the backbone, run one at a time
    def final_logits(self, states: torch.Tensor) -> torch.Tensor:
        """The backbone's own classifier on a layer's hidden states (BERT: pooler + linear; RoBERTa: its head)."""
        return classifier_logits(self.backbone, states)

    def all_logits(self, input_ids, attention_mask, token_type_ids=None, layer_targets: bool = False) -> dict:
        """Every exit's logits ``[layers, batch, classes]`` (the last = the backbone's classifier); with
        ``layer_targets`` also the backbone's classifier on every layer (the teacher-layer targets)."""
        with torch.no_grad():
            states, context = self._steps.embed(input_ids, attention_mask, token_type_ids)
            hidden = []
            for index in range(self.num_layers):
                states = self._steps.block(index, states, context)
                hidden.append(states)
        exits = [head(states, attention_mask) for head, states in zip(self.exits, hidden)]
        with torch.no_grad():
            final = self.final_logits(hidden[-1])
            targets = torch.stack([self.final_logits(states) for states in hidden[:-1]] + [final]) \
                if layer_targets else None
        return {"exits": torch.stack(exits + [final]), "layer_targets": targets}

    @torch.no_grad()
    def predict(self, input_ids, attention_mask, token_type_ids=None, threshold: float = 0.0,
                measure: str = "entropy", top_k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        """Early-exit inference: (logits [batch, classes], 1-based exit layer [batch]). Samples leave the
        batch at the first exit whose uncertainty is below ``threshold``; the rest go on to the next layer."""
        check_uncertainty(measure, threshold, top_k, self.settings["classes"])
        batch = input_ids.shape[0]
        logits = torch.zeros(batch, self.settings["classes"], dtype=torch.float32, device=input_ids.device)
        exit_layer = torch.zeros(batch, dtype=torch.long, device=input_ids.device)
        states, context = self._steps.embed(input_ids, attention_mask, token_type_ids)
        alive = torch.arange(batch, device=input_ids.device)
        for index in range(self.num_layers):
            states = self._steps.block(index, states, context)
            if index == self.num_layers - 1:
                logits[alive] = self.final_logits(states).float()
                exit_layer[alive] = index + 1
                break
            current = self.exits[index](states, attention_mask[alive]).float()
            leaving = uncertainty(current.softmax(-1), measure, top_k) < threshold
            if leaving.any():
                logits[alive[leaving]] = current[leaving]
                exit_layer[alive[leaving]] = index + 1
                staying = ~leaving
                if not staying.any():
                    break
                alive, states = alive[staying], states[staying]
                context = self._steps.keep(context, staying)
        return logits, exit_layer

    # ----- saving and loading
    def save_pretrained(self, directory: str | Path, tokenizer=None, extra: dict | None = None) -> None:
        refuse_non_finite(self, f"the early-exit model to {directory}")
        directory = Path(directory)
        self.backbone.save_pretrained(directory)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)
        save_file({key: value.contiguous() for key, value in self.exits.state_dict().items()},
                  directory / WEIGHTS_FILE)
        (directory / SETTINGS_FILE).write_text(json.dumps({**self.settings, **(extra or {})}, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs) -> EarlyExitModel:
        directory = Path(directory)
        if not (directory / SETTINGS_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
            raise BertEmdError(f"{directory}: not an early-exit model (no {SETTINGS_FILE} / {WEIGHTS_FILE}; make one "
                               "with `bert-emd early-exit train`)")
        settings = json.loads((directory / SETTINGS_FILE).read_text())
        backbone = load_trained_classifier(str(directory), **kwargs)
        model = cls(backbone, settings["design"], settings["width"], settings["heads"], name=str(directory))
        model.exits.load_state_dict(load_file(directory / WEIGHTS_FILE))
        return model.eval()
