"""`bert-emd predict` for a token task: each word of a split with its predicted tag, in CoNLL column layout
(``word TAG``, a blank line between sentences). A word's tag is read from its first piece; words cut off by
``--max-length`` get ``O`` and are counted in the message."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from bert_emd.errors import BertEmdError
from bert_emd.finite import NonFiniteError
from bert_emd.tokens.data import encode
from bert_emd.tokens.load import load_token_split


def predicted_tags(model, tokenizer, sentences, labels, max_length: int, batch_size: int) -> tuple[list, int]:
    """(tags per sentence, number of words cut off by max_length)."""
    encoded = encode(sentences, tokenizer, labels, max_length)
    word_ids = encoded.pop("word_ids")
    encoded.pop("labels", None)
    loader = DataLoader(datasets.Dataset.from_dict(encoded), batch_size=batch_size,
                        collate_fn=DataCollatorWithPadding(tokenizer))
    chosen = []
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            logits = model(**batch).logits.float().numpy()
            if not np.isfinite(logits[batch["attention_mask"].numpy().astype(bool)]).all():
                raise NonFiniteError("the model's outputs are NaN or inf: its predictions would mean nothing")
            chosen.extend(logits.argmax(-1))
    tags, cut = [], 0
    for sentence, words, best in zip(sentences, word_ids, chosen):
        first = {}
        for position, word in enumerate(words):
            if word >= 0 and word not in first:
                first[word] = labels[int(best[position])]
        tags.append([first.get(word, "O") for word in range(len(sentence.tokens))])
        cut += len(sentence.tokens) - len(first)
    return tags, cut


def predict_tokens(config, task, model, tokenizer, output: Path) -> list[Path]:
    from bert_emd.outputs import make_directory

    split = config.split
    if split not in ("train", "dev", "test"):
        raise BertEmdError(f"unknown split '{split}' for {task.display_name}; use one of train, dev, test")
    sentences = load_token_split(task, config, split, labelled=False)
    tags, cut = predicted_tags(model, tokenizer, sentences, task.labels, config.max_length, config.batch_size)
    make_directory(output)  # once the split has read: a bad split or file leaves nothing behind
    path = output / f"{split}.conll"
    with open(path, "w", encoding="utf-8") as handle:
        for sentence, sentence_tags in zip(sentences, tags):
            handle.writelines(f"{word} {tag}\n" for word, tag in zip(sentence.tokens, sentence_tags))
            handle.write("\n")
    note = f" ({cut} words beyond --max-length {config.max_length} tagged O)" if cut else ""
    print(f"{task.display_name} {split}: tags of {len(sentences)} sentences written to {path}{note}")
    return [path]
