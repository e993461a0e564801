"""Plain text -> token sequences of exactly ``max_length``, packed across lines as in pre-training.

Files are read by ``datasets``' text loader (Arrow files cached on disk, not held in memory); lines are
tokenised without special tokens, concatenated, cut into pieces of ``max_length`` minus the special
tokens and each piece wrapped as the tokenizer wraps one sequence (``[CLS] ... [SEP]`` for BERT). What is
left over at the end of each block of 1,000 lines is dropped. The Trainer shuffles the pieces every epoch.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import datasets

from bert_emd.data.loading import map_fingerprint
from bert_emd.errors import BertEmdError


def text_lines(files: list[str], extra_texts: list[str]) -> datasets.Dataset:
    """Every non-empty line of ``files``, then ``extra_texts``, as a dataset with one column ``text``
    (quietly: reading is quick, and an error about the text must stand alone)."""
    already_quiet = datasets.is_progress_bar_enabled() is False
    datasets.disable_progress_bars()
    try:
        return _text_lines(files, extra_texts)
    finally:
        if not already_quiet:
            datasets.enable_progress_bars()


def _text_lines(files: list[str], extra_texts: list[str]) -> datasets.Dataset:
    parts = []
    for name in files:
        check_text_file(Path(name))
    if files:
        try:
            parts.append(datasets.load_dataset("text", data_files=[str(Path(name).resolve()) for name in files],
                                               split="train"))
        except Exception as error:  # datasets' generation errors carry the cause further down the chain
            cause = error
            while cause.__cause__ is not None or cause.__context__ is not None:
                cause = cause.__cause__ or cause.__context__
            message = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
            raise BertEmdError(f"cannot read the corpus ({', '.join(files)}): {message}") from None
    if extra_texts:
        parts.append(datasets.Dataset.from_dict({"text": list(extra_texts)}))
    if not parts:
        raise BertEmdError("no text to distil on: pass --corpus FILE and/or --task with --data-dir")
    lines = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    lines = lines.filter(lambda batch: [bool(text.strip()) for text in batch["text"]], batched=True)
    if len(lines) == 0:
        raise BertEmdError("the corpus has no text (every line is empty)")
    return lines


def check_text_file(path: Path, sample: int = 1 << 20) -> None:
    """A corpus file must exist and be UTF-8 text (its first megabyte is checked: no NUL bytes, valid UTF-8)."""
    if not path.is_file():
        raise BertEmdError(f"corpus file not found: {path}")
    if path.stat().st_size == 0:
        raise BertEmdError(f"corpus file {path} is empty")
    with path.open("rb") as handle:
        head = handle.read(sample)
    if b"\x00" in head:
        raise BertEmdError(f"corpus file {path} is not text (it holds binary data); give plain UTF-8 text, one "
                           "passage per line")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < sample)
    except UnicodeDecodeError as error:
        raise BertEmdError(f"corpus file {path} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def pack(lines: datasets.Dataset, tokenizer, max_length: int) -> datasets.Dataset:
    """Sequences of exactly ``max_length`` tokens (input_ids, attention_mask[, token_type_ids])."""
    prefix, suffix = special_tokens_around(tokenizer)
    piece = max_length - len(prefix) - len(suffix)
    if piece < 1:
        raise BertEmdError(f"--max-length {max_length} leaves no room for text beside "
                           f"{len(prefix) + len(suffix)} special tokens")

    def tokenize(batch):
        # verbose=False: long lines are expected here (they are cut into pieces), no length warning
        return {"ids": tokenizer(batch["text"], add_special_tokens=False, verbose=False)["input_ids"]}

    def group(batch):
        stream = [token for ids in batch["ids"] for token in ids]
        pieces = [prefix + stream[start:start + piece] + suffix for start in range(0, len(stream) - piece + 1, piece)]
        packed = {"input_ids": pieces, "attention_mask": [[1] * len(ids) for ids in pieces]}
        if "token_type_ids" in tokenizer.model_input_names:
            packed["token_type_ids"] = [[0] * len(ids) for ids in pieces]
        return packed

    tokens = lines.map(tokenize, batched=True, remove_columns=lines.column_names, desc="Tokenising corpus",
                       new_fingerprint=map_fingerprint(lines, tokenizer, "corpus ids"))
    packed = tokens.map(group, batched=True, batch_size=1000, remove_columns=["ids"], desc="Packing",
                        new_fingerprint=map_fingerprint(tokens, tokenizer, "corpus pieces", prefix, suffix, piece))
    if len(packed) == 0:
        raise BertEmdError(f"the corpus is shorter than one sequence of {max_length} tokens")
    return packed


def special_tokens_around(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after one sequence (BERT: [CLS] and [SEP])."""
    plain = tokenizer("hello", add_special_tokens=False)["input_ids"]
    wrapped = tokenizer("hello", add_special_tokens=True)["input_ids"]
    for start in range(len(wrapped) - len(plain) + 1):
        if wrapped[start:start + len(plain)] == plain:
            return wrapped[:start], wrapped[start + len(plain):]
    raise BertEmdError("cannot tell which special tokens the tokenizer adds around a sequence")
