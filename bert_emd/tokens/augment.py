"""`bert-emd augment` for a token task: new sentences in which only words tagged ``O`` are replaced, so that every
entity stays as written and every tag stays true; the rest as for sentence tasks (TinyBERT's word replacement, a
random stream per sentence, duplicates dropped). The file is JSON lines with ``tokens`` and ``tags`` (and
``source``, ``original``), which ``--augmented-train`` of finetune and distill reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bert_emd.augment.words import Word
from bert_emd.errors import BertEmdError
from bert_emd.runinfo import run_record
from bert_emd.tokens.load import load_token_split


def outside_words(sentence) -> tuple[str, list[Word]]:
    """The sentence as one space-joined text, and the words tagged O as spans of it."""
    text, words, cursor = " ".join(sentence.tokens), [], 0
    for token, tag in zip(sentence.tokens, sentence.tags):
        if tag == "O":
            words.append(Word(token, cursor, cursor + len(token)))
        cursor += len(token) + 1
    return text, words


def draw_sentences(index: int, tokens: tuple[str, ...], replaceable: list[tuple[Word, list[str]]], count: int,
                   replace_prob: float, seed: int) -> list[tuple[str, ...]]:
    """The original and up to ``count`` distinct new token lists (one random stream per sentence)."""
    from bert_emd.augment.words import match_case

    position = {word.start: number for number, word in enumerate(_spans(tokens))}
    generator = np.random.default_rng([seed, index])
    drawn, seen = [tuple(tokens)], {tuple(tokens)}
    for _ in range(count):
        new = list(tokens)
        for word, options in replaceable:
            if generator.random() < replace_prob:
                new[position[word.start]] = match_case(word.text, options[generator.integers(len(options))])
        if tuple(new) not in seen:
            seen.add(tuple(new))
            drawn.append(tuple(new))
    return drawn


def _spans(tokens):
    cursor = 0
    for token in tokens:
        yield Word(token, cursor, cursor + len(token))
        cursor += len(token) + 1


def augment_tokens(config, task, per_original: int, started: float, model, vectors) -> dict:
    from bert_emd.augment.run import find_candidates, write_with_manifest

    sentences = load_token_split(task, config, "train")
    if not sentences:
        raise BertEmdError("the training data is empty: nothing to augment")
    joined = [outside_words(sentence) for sentence in sentences]
    texts = {"tokens": [text for text, _ in joined]}
    candidates, sources = find_candidates(config, texts, {"tokens": [words for _, words in joined]}, model, vectors)
    def records():
        for index, sentence in enumerate(tqdm(sentences, desc="Augmenting")):
            drawn = draw_sentences(index, sentence.tokens, candidates["tokens"][index], per_original,
                                   config.replace_prob, config.seed)
            for number, tokens in enumerate(drawn):
                yield {"tokens": list(tokens), "tags": list(sentence.tags), "source": index, "original": number == 0}

    def make_manifest(written: int, seconds: float) -> dict:
        return {**run_record("augment", config, task=task.name), "labels": list(task.labels),
                "columns": ["tokens"], "num_augmented": per_original, "candidate_sources": sources,
                "counts": {"originals": len(sentences), "written": written, "augmented": written - len(sentences),
                           "duplicates_dropped": len(sentences) * (per_original + 1) - written,
                           "replaceable_words": sum(len(c) for c in candidates["tokens"])},
                "replaced": "words tagged O only", "seconds": seconds, "sentences_per_second": written / seconds}

    output = Path(config.output)
    written, manifest = write_with_manifest(output, records(), make_manifest, started)
    seconds = manifest["seconds"]
    print(f"{written:,} sentences ({len(sentences):,} originals, {written - len(sentences):,} augmented, only words "
          f"tagged O replaced) written to {output} in {seconds:.1f} s; manifest beside it")
    return manifest
