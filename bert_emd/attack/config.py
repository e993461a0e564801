"""Options of `bert-emd attack`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bert_emd.data.loading import DataOptions
from bert_emd.errors import BertEmdError
from bert_emd.options import option


@dataclass
class AttackConfig(DataOptions):
    model: str | None = option(None, "the model to attack: any model directory the project writes (fine-tuned, "
                               "distilled, Theseus, hybrid, int8, early exit with --exit-threshold) or an ONNX "
                               "file of `bert-emd export` (model.onnx, model_int8.onnx) (required)")
    teacher: str | None = option(None, "also attack this teacher on the same examples, and measure transfer: the "
                                 "share of adversarial examples found against one that also fool the other")
    output: str | None = option(None, "directory for attack_results.json and the adversarial examples (required)")
    overwrite: bool = option(False, "replace a finished output of another command or task in --output")
    split: str = option("dev", "the split whose examples are attacked (MNLI: dev_matched, ...)")
    max_examples: int = option(500, "attack at most this many examples, a seeded random subset of the split",
                               at_least=1)
    seed: int = option(0, "seed of the subset", at_least=0, at_most=2**32 - 1)
    vectors: str | None = option(None, "word vectors for the candidates: a GloVe / word2vec text file (default: "
                                 "GloVe 6B 50-d from the augment extra)")
    vocabulary_size: int = option(100_000, "candidates are searched among the first N words of the vectors",
                                  at_least=1)
    min_word_similarity: float = option(0.5, "the least cosine between a word and its substitute", at_least=0,
                                        at_most=1)
    sentence_encoder: str = option("minilm-l6", "sentence encoder of the meaning constraint (mean-pooled; default "
                                   "the bundled all-MiniLM-L6-v2, a sentence-embedding model)")
    min_sentence_similarity: float = option(0.8, "the least cosine between the original and the perturbed text",
                                            at_least=0, at_most=1)
    max_candidates: int = option(30, "substitutes tried per word", at_least=1)
    max_queries: int = option(2000, "model calls per example before the attack gives up", at_least=1)
    batch_size: int = option(64, "texts per model call batch", at_least=1)
    exit_threshold: float | None = option(None, "an early-exit model answers with early exit at this uncertainty "
                                          "threshold (its `early-exit evaluate` report chooses one; 0: the full "
                                          "model); required for an early-exit model", at_least=0, at_most=1)
    exit_uncertainty: str = option("entropy", "early exit: the uncertainty measure (entropy, topk)")
    exit_top_k: int = option(2, "early exit, topk: number of largest class probabilities used", at_least=2)
    resume: bool = option(True, "keep the examples attacked before an interruption and go on with the rest")


# Options a command that runs the attack for the user (experiment, evaluate --attack) sets itself.
OWNED_BY_CALLER = {"task", "model", "teacher", "output", "data_dir", "max_train_samples", "max_eval_samples",
                   "overwrite", "resume", "train_file", "validation_file", "test_file", "augmented_train"}


def check_attack_overrides(options, where: str, setter: str) -> None:
    """``options`` (the option ``where`` of a command; ``setter`` sets the rest) must be `bert-emd attack` options
    that the calling command does not set itself."""
    if options is None:
        return
    if not isinstance(options, dict):
        raise BertEmdError(f"{where} must be a mapping of `bert-emd attack` options ({{}} for its defaults)")
    taken = sorted(set(options) & OWNED_BY_CALLER)
    if taken:
        raise BertEmdError(f"{where}: {', '.join(taken)} are set by {setter} for each attack")
    unknown = sorted(set(options) - {field.name for field in dataclasses.fields(AttackConfig)})
    if unknown:
        raise BertEmdError(f"{where}: {', '.join(unknown)} not an option of `bert-emd attack`")
