"""Options of `bert-emd theseus` (defaults: the BERT-of-Theseus paper's where it gives them)."""

from __future__ import annotations

from dataclasses import dataclass

from bert_emd.data.loading import DataOptions
from bert_emd.options import option
from bert_emd.training import TrainingOptions


@dataclass
class TheseusConfig(TrainingOptions, DataOptions):
    teacher: str | None = option(None, "fine-tuned teacher directory, the predecessor (required)")
    successor_layers: int | None = option(None, "successor layers n; the teacher's layer count must be a multiple of "
                                          "it, each successor layer replacing N / n teacher layers (required)",
                                          at_least=1)
    successor_init: str = option("first", "first: the teacher's first n layers (the paper's best); spaced: evenly "
                                 "spaced teacher layers, first and last kept; or any --student-init of distill "
                                 "(teacher:1,3,6, random, copy:MODEL)")
    replacing_rate_schedule: str = option("constant", "constant p for --replacing-steps, or linear p = min(1, k t + "
                                          "b) (the paper's curriculum)", choices=("constant", "linear"))
    replacing_rate: float = option(0.5, "constant schedule: the probability p that a module is replaced by its "
                                   "successor layer in a batch", at_least=0, at_most=1)
    replacing_steps: int | None = option(None, "constant schedule: optimiser steps of replacing, after which the "
                                         "successor trains alone (default: half of all steps)", at_least=1)
    replacing_rate_start: float = option(0.3, "linear schedule: b, the replacing rate at step 0", at_least=0,
                                         at_most=1)
    replacing_rate_slope: float | None = option(None, "linear schedule: k, the rise of p per optimiser step",
                                                above=0)
    replacing_steps_to_one: int | None = option(None, "linear schedule: steps until p reaches 1 (k = (1 - b) / S), "
                                                "instead of --replacing-rate-slope", at_least=1)
    replacing_share_to_one: float | None = option(None, "linear schedule: the share of all optimiser steps after "
                                                  "which p reaches 1 (S = share x steps, for data of any size), "
                                                  "instead of --replacing-rate-slope or --replacing-steps-to-one",
                                                  above=0, at_most=1)
    unfreeze: bool = option(False, "once the successor trains alone, train its embeddings and head too (they stay "
                            "the teacher's while modules are replaced)")
    learning_rate: float = option(2e-5, "peak learning rate of AdamW (the paper: 2e-5)", above=0)
    batch_size: int = option(32, "training batch size per process (the paper: 32)", at_least=1)
    epochs: float = option(3.0, "training epochs over both phases", above=0)
