"""Context-aware candidates from a masked language model, as TinyBERT's augmentation gets them.

For a word that is one piece under the MLM's tokenizer, the input is the text with that word masked
as the first segment and the unmasked text as the second; the top predictions at the mask that are
whole words made of letters (no ``##`` continuation piece, no special token, no punctuation) are the
candidates. All masked inputs
of a run go through the model in batches.
"""

from __future__ import annotations

import torch

from bert_emd.augment.words import Word
from bert_emd.errors import BertEmdError
from bert_emd.models import load_pretrained


class MaskedLanguageModel:
    def __init__(self, name: str):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        self.name = name
        self.tokenizer = load_pretrained(AutoTokenizer, name, "the MLM's tokenizer")
        if self.tokenizer.mask_token is None:
            raise BertEmdError(f"--mlm {name}: its tokenizer has no mask token, so it cannot predict a masked word")
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        family = type(backend.model).__name__ if backend is not None else type(self.tokenizer).__name__
        if family != "WordPiece":
            raise BertEmdError(f"--mlm {name}: its tokenizer is {family}, not WordPiece; candidates are told "
                               "from sub-word pieces by BERT's '##' prefix, so use a BERT-family MLM")
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the load report: what it says is checked here, in one line
        try:
            model, info = load_pretrained(AutoModelForMaskedLM, name, "a masked language model",
                                          output_loading_info=True)
        finally:
            hf_logging.set_verbosity(verbosity)
        missing = [key for key in info.get("missing_keys", []) if not key.endswith("position_ids")]
        if missing:  # its predictions would come from a randomly initialised head
            raise BertEmdError(f"--mlm {name} has no trained masked-LM head ({len(missing)} weight(s) missing, e.g. "
                               f"{sorted(missing)[0]}): give a model trained as a masked language model (e.g. "
                               "bert-base-uncased), or leave --mlm out to use word vectors only")
        self.model = model.eval()
        self.special_ids = set(self.tokenizer.all_special_ids)

    def is_one_piece(self, word: str) -> bool:
        return len(self.tokenizer.tokenize(word)) == 1

    def candidates(self, requests: list[tuple[str, Word]], count: int, batch_size: int = 32,
                   progress=None) -> list[list[str]]:
        """For each (text, word of that text): the ``count`` best whole-word predictions for the word."""
        mask = self.tokenizer.mask_token
        results: list[list[str]] = []
        for start in range(0, len(requests), batch_size):
            chunk = requests[start:start + batch_size]
            masked = [text[:word.start] + mask + text[word.end:] for text, word in chunk]
            encoded = self.tokenizer(masked, [text for text, _ in chunk], truncation="only_second",
                                     max_length=self.model.config.max_position_embeddings, padding=True,
                                     return_tensors="pt")
            with torch.no_grad():
                logits = self.model(**encoded).logits
            rows, columns = (encoded["input_ids"] == self.tokenizer.mask_token_id).nonzero(as_tuple=True)
            first = {}
            for row, column in zip(rows.tolist(), columns.tolist()):
                first.setdefault(row, column)  # the mask of the first segment
            for row in range(len(chunk)):
                ranked = logits[row, first[row]].topk(count).indices.tolist()
                tokens = self.tokenizer.convert_ids_to_tokens(ranked)
                results.append([token for token, token_id in zip(tokens, ranked)
                                if token.isalpha() and token_id not in self.special_ids])
            if progress is not None:
                progress.update(len(chunk))
        return results
