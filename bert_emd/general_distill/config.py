"""Options of `bert-emd general-distill`: a pre-trained teacher, plain text, the student and its layer terms."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from bert_emd.data.loading import DataOptions
from bert_emd.distill.config import LayerTermOptions, StudentOptions
from bert_emd.options import option
from bert_emd.training import TrainingOptions


@dataclass
class GeneralDistillConfig(TrainingOptions, DataOptions, StudentOptions, LayerTermOptions):
    trains_classifier: typing.ClassVar[bool] = False  # task texts only, labels unused
    teacher: str | None = option(None, "pre-trained encoder to distil: minilm-l6, a directory or a hub id; a "
                                 "fine-tuned classifier's encoder is used as it is (required)")
    corpus: list[str] | None = option(None, "plain-text file, one paragraph or sentence per line; repeat the flag "
                                      "for more files (with --task, the training split's texts are added)")
    epochs: float = option(1.0, "passes over the packed corpus", above=0)
    batch_size: int = option(32, "packed sequences per batch and process", at_least=1)
