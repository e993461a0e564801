"""The splits of a token task: a built-in one (``--task conll2003 --data-dir DIR`` with train.txt, dev.txt, test.txt)
or one's own files (``--task token --train-file x.txt --validation-file y.txt``, CoNLL or JSON lines)."""

from __future__ import annotations

from pathlib import Path

import datasets

from bert_emd.data.tasks import TaskSpec, token_task
from bert_emd.errors import BertEmdError
from bert_emd.tokens.data import Sentence, check_tags, encode, read_sentences, tag_set

SPLIT_FILES = {"train": "train.txt", "dev": "dev.txt", "test": "test.txt"}


def own_token_task(options, model_labels: tuple[str, ...] | None = None) -> TaskSpec:
    """A tagging task of one's own files: tags from --labels, else the training file, else the model's labels."""
    if options.labels:
        labels = tuple(label.strip() for label in options.labels.split(","))
    elif options.train_file:
        labels = tag_set(read_sentences(options.train_file))
    elif model_labels:
        labels = model_labels
    else:
        raise BertEmdError("cannot tell the tag set of your files: pass --labels O,B-PER,... or --train-file")
    if not options.uses_own_files:
        raise BertEmdError("--task token reads your own files: give --train-file / --validation-file (CoNLL columns "
                           "or JSON lines with tokens and tags)")
    return token_task(labels)


def split_path(task: TaskSpec, options, split: str) -> Path:
    if options.uses_own_files:
        return options.own_file(split)
    if not options.data_dir:
        raise BertEmdError(f"{task.display_name} is read from files: pass --data-dir with train.txt, dev.txt and "
                           "test.txt in CoNLL column layout")
    folder = Path(options.data_dir)
    for candidate in (folder, folder / task.name, folder / task.display_name):
        if (candidate / SPLIT_FILES.get(split, f"{split}.txt")).is_file():
            return candidate / SPLIT_FILES.get(split, f"{split}.txt")
    raise BertEmdError(f"file not found: {folder / SPLIT_FILES.get(split, f'{split}.txt')}")


def load_token_split(task: TaskSpec, options, split: str, labelled: bool = True) -> list[Sentence]:
    """A split's sentences; scored splits need their tags (CoNLL-2003's test file has them), ``labelled=False``
    reads words only (for predictions)."""
    augmented = split == "train" and getattr(options, "augmented_train", None)
    path = Path(augmented) if augmented else split_path(task, options, split)
    sentences = read_sentences(path, labelled=labelled)
    if labelled:
        check_tags(sentences, task.labels, path)
    limit = options.max_train_samples if split == "train" else options.max_eval_samples
    return sentences[:limit] if limit else sentences


def token_dataset(sentences: list[Sentence], tokenizer, task: TaskSpec, max_length: int,
                  label_all_tokens: bool = False) -> datasets.Dataset:
    encoded = encode(sentences, tokenizer, task.labels, max_length, label_all_tokens)
    encoded.pop("word_ids")
    return datasets.Dataset.from_dict(encoded)
