"""A TextFooler-style word-substitution attack (Jin et al., AAAI 2020), written here on the project's own word
vectors and sentence encoder.

For one correctly classified example: (1) each replaceable word's importance is the drop of the true label's
probability when the word is deleted, plus, where deleting it changes the prediction, the rise of the new label's
probability; (2) in that order, each word is tried with its nearest neighbours in the word vectors whose cosine is
at least ``min_word_similarity`` (stop words are never replaced); a substitution is kept only if the sentence
encoder's cosine between the original and the perturbed text is at least ``min_sentence_similarity``; (3) among the
kept ones a substitution that changes the prediction ends the attack (the most similar such sentence wins),
otherwise the one that lowers the true label's probability most stays and the next word is tried. Each model call
on one text counts as a query; past ``max_queries`` the attack fails. For a pair task only the second text is
perturbed. Results with other vectors or another encoder than TextFooler's (counter-fitted vectors, the Universal
Sentence Encoder, a part-of-speech check) are not comparable with published TextFooler numbers, so every output
says which were used.

Why not TextAttack: its recipes download counter-fitted vectors and the Universal Sentence Encoder, and its import
runs NLTK / stanza downloads unless their caches exist; on a machine without network access it cannot run as
shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bert_emd.augment.words import Word, is_candidate, replace_words, split_words

# texts (first, second or None) -> class probabilities [n, classes]
Predict = Callable[[list[str], list[str] | None], np.ndarray]
# (original, perturbed texts) -> cosine of each perturbed text with the original [n]
Similarity = Callable[[str, list[str]], np.ndarray]


@dataclass
class AttackSettings:
    min_word_similarity: float = 0.5
    min_sentence_similarity: float = 0.8
    max_candidates: int = 30
    max_queries: int = 2000
    vocabulary_size: int = 100_000


@dataclass
class Outcome:
    """One example's attack: ``status`` is ``skipped`` (the model was wrong already), ``succeeded`` or ``failed``."""
    status: str
    label: int
    original_prediction: int
    perturbed: str | None = None  # the attacked text (the second text of a pair)
    perturbed_prediction: int | None = None
    words: int = 0
    changed: list[tuple[str, str]] = field(default_factory=list)
    queries: int = 0

    @property
    def changed_share(self) -> float:
        return len(self.changed) / self.words if self.words else 0.0


class Budget:
    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def take(self, count: int) -> bool:
        """Spend ``count`` queries if they fit."""
        if self.used + count > self.limit:
            return False
        self.used += count
        return True


def importance(predict: Predict, first: str | None, text: str, words: list[Word], label: int,
               base: np.ndarray) -> np.ndarray:
    """Each word's importance by deletion (TextFooler's formula), from one batch of model calls."""
    deleted = [replace_words(text, {word: ""}) for word in words]
    probabilities = _call(predict, first, deleted)
    scores = base[label] - probabilities[:, label]
    new_labels = probabilities.argmax(-1)
    flipped = new_labels != label
    scores[flipped] += probabilities[flipped, new_labels[flipped]] - base[new_labels[flipped]]
    return scores


def _call(predict: Predict, first: str | None, texts: list[str]) -> np.ndarray:
    """The model on the attacked text of each example: alone, or as the second text after the fixed first."""
    if first is None:
        return predict(texts, None)
    return predict([first] * len(texts), texts)


def attack_example(predict: Predict, similarity: Similarity, neighbours: Callable[[str], list[tuple[str, float]]],
                   text: str, label: int, settings: AttackSettings, first: str | None = None) -> Outcome:
    """Attack one example (``text``; for a pair, the second text after ``first``) of true class ``label``."""
    budget = Budget(settings.max_queries)
    budget.take(1)
    base = _call(predict, first, [text])[0]
    prediction = int(base.argmax())
    words = split_words(text)
    outcome = Outcome("skipped", label, prediction, words=len(words), queries=1)
    if prediction != label:
        return outcome
    outcome.status = "failed"
    replaceable = [word for word in words if is_candidate(word)]
    if not replaceable or not budget.take(len(replaceable)):
        outcome.queries = budget.used
        return outcome
    scores = importance(predict, first, text, replaceable, label, base)
    order = [replaceable[index] for index in np.argsort(-scores, kind="stable")]
    chosen: dict[Word, str] = {}
    current, current_probability, current_prediction = text, base[label], prediction
    for word in order:
        candidates = [candidate for candidate, _ in neighbours(word.key)][:settings.max_candidates]
        if not candidates:
            continue
        texts = [replace_words(text, {**chosen, word: candidate}) for candidate in candidates]
        if not budget.take(len(texts)):
            break
        probabilities = _call(predict, first, texts)
        similar = similarity(text, texts)
        allowed = similar >= settings.min_sentence_similarity
        predictions = probabilities.argmax(-1)
        fooling = np.flatnonzero(allowed & (predictions != label))
        if len(fooling):
            best = int(fooling[np.argmax(similar[fooling])])
            chosen[word] = candidates[best]
            outcome.status, outcome.perturbed, outcome.perturbed_prediction = "succeeded", texts[best], \
                int(predictions[best])
            break
        lowered = np.flatnonzero(allowed & (probabilities[:, label] < current_probability))
        if len(lowered):
            best = int(lowered[np.argmin(probabilities[lowered, label])])
            chosen[word] = candidates[best]
            current, current_probability = texts[best], probabilities[best, label]
            current_prediction = int(predictions[best])
    if outcome.status == "failed":
        outcome.perturbed = current
        outcome.perturbed_prediction = current_prediction
    outcome.changed = [(word.text, chosen[word]) for word in sorted(chosen, key=lambda w: w.start)]
    outcome.queries = budget.used
    return outcome


def summarise(outcomes: list[Outcome]) -> dict:
    """Clean accuracy, accuracy under attack, success rate, mean share of words changed and mean queries."""
    total = len(outcomes)
    succeeded = [o for o in outcomes if o.status == "succeeded"]
    failed = [o for o in outcomes if o.status == "failed"]
    attacked = succeeded + failed
    return {
        "examples": total,
        "clean_accuracy": len(attacked) / total if total else None,
        "accuracy_under_attack": len(failed) / total if total else None,
        "attack_success_rate": len(succeeded) / len(attacked) if attacked else None,
        "succeeded": len(succeeded), "failed": len(failed), "skipped": total - len(attacked),
        "mean_changed_share": float(np.mean([o.changed_share for o in succeeded])) if succeeded else None,
        "mean_queries": float(np.mean([o.queries for o in attacked])) if attacked else None,
    }
