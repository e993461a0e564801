"""Token-classification data (NER and other taggers): CoNLL column files and JSON lines, and the labels of each
word carried to the sub-word pieces a tokenizer makes of it.

CoNLL files: one word per line, the word in the first column and its tag in the last, a blank line between
sentences, ``-DOCSTART-`` lines skipped (CoNLL-2003's layout, its POS and chunk columns in between). JSON lines:
one sentence per line with ``tokens`` and ``tags`` lists. The tag set is read from the training file (sorted, ``O``
first) unless ``labels`` gives it. A word's label goes to its first piece; the other pieces get -100 (ignored by
the loss and the metrics) unless ``label_all_tokens``, which gives every piece the word's label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bert_emd.data.text_files import json_objects, read_text
from bert_emd.errors import BertEmdError

IGNORED = -100


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...] | None  # None: an unlabelled file
    line: int  # where the sentence starts in its file, for errors


def read_conll(path: str | Path, labelled: bool = True) -> list[Sentence]:
    """Sentences of a CoNLL column file; a line without a tag column is an error naming the line."""
    path = Path(path)
    sentences, tokens, tags, start = [], [], [], None
    lines = read_text(path).splitlines()

    def close():
        if tokens:
            sentences.append(Sentence(tuple(tokens), tuple(tags) if labelled else None, start))
        tokens.clear()
        tags.clear()

    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            close()
            continue
        if fields[0] == "-DOCSTART-":
            close()
            continue
        if labelled and len(fields) < 2:
            raise BertEmdError(f"{path}, line {number}: a word without a tag column ('{line.strip()}'); CoNLL lines "
                               "hold the word first and its tag last")
        if not tokens:
            start = number
        tokens.append(fields[0])
        tags.append(fields[-1])
    close()
    if not sentences:
        raise BertEmdError(f"{path}: no sentences (an empty file, or only -DOCSTART- lines)")
    return sentences


def read_token_jsonl(path: str | Path, labelled: bool = True) -> list[Sentence]:
    path = Path(path)
    sentences = []
    for number, record in json_objects(path, read_text(path), "an object with tokens and tags"):
        tokens, tags = record.get("tokens"), record.get("tags")
        if not isinstance(tokens, list) or not tokens:
            raise BertEmdError(f"{path}, line {number}: expected a non-empty 'tokens' list")
        if labelled:
            if not isinstance(tags, list):
                raise BertEmdError(f"{path}, line {number}: expected a 'tags' list beside 'tokens'")
            if len(tags) != len(tokens):
                raise BertEmdError(f"{path}, line {number}: {len(tokens)} tokens but {len(tags)} tags")
        sentences.append(Sentence(tuple(map(str, tokens)), tuple(map(str, tags)) if labelled else None, number))
    if not sentences:
        raise BertEmdError(f"{path}: no sentences")
    return sentences


def read_sentences(path: str | Path, labelled: bool = True) -> list[Sentence]:
    """CoNLL (``.txt``, ``.conll``, anything not JSON lines) or JSON lines (``.jsonl``, ``.json``)."""
    if Path(path).suffix.lower() in (".jsonl", ".json"):
        return read_token_jsonl(path, labelled)
    return read_conll(path, labelled)


def tag_set(sentences: list[Sentence]) -> tuple[str, ...]:
    """The tags of a training file, ``O`` first and the rest sorted."""
    found = {tag for sentence in sentences for tag in sentence.tags or ()}
    return tuple(sorted(found, key=lambda tag: (tag != "O", tag)))


def check_tags(sentences: list[Sentence], labels: tuple[str, ...], path: str | Path) -> None:
    known = set(labels)
    for sentence in sentences:
        for tag in sentence.tags or ():
            if tag not in known:
                raise BertEmdError(f"{path}, sentence at line {sentence.line}: tag '{tag}' is not one of the task's "
                                   f"tags ({', '.join(labels)})")


def align_labels(word_ids: list[int | None], tags: tuple[str, ...], labels: tuple[str, ...],
                 label_all_tokens: bool = False) -> list[int]:
    """Per piece: its word's label id on the word's first piece (every piece with ``label_all_tokens``), -100 on
    special tokens and the other pieces."""
    index = {label: number for number, label in enumerate(labels)}
    aligned, previous = [], None
    for word in word_ids:
        if word is None:
            aligned.append(IGNORED)
        elif word != previous or label_all_tokens:
            aligned.append(index[tags[word]])
        else:
            aligned.append(IGNORED)
        previous = word
    return aligned


def encode(sentences: list[Sentence], tokenizer, labels: tuple[str, ...], max_length: int,
           label_all_tokens: bool = False) -> dict[str, list]:
    """Token ids of pre-split words (a fast tokenizer is needed for the word alignment) and aligned labels."""
    if not getattr(tokenizer, "is_fast", False):
        raise BertEmdError("token tasks need a fast tokenizer (it tells which word each piece came from)")
    words = [list(sentence.tokens) for sentence in sentences]
    batch = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    encoded = {key: list(value) for key, value in batch.items()}
    if sentences and sentences[0].tags is not None:
        encoded["labels"] = [align_labels(batch.word_ids(number), sentence.tags, labels, label_all_tokens)
                             for number, sentence in enumerate(sentences)]
    encoded["word_ids"] = [[-1 if word is None else word for word in batch.word_ids(number)]
                           for number in range(len(sentences))]
    return encoded
