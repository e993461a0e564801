"""Which words of a text may be replaced, and how a replacement takes the original's capitalisation.

Texts are split as BERT's basic tokenisation splits them (whitespace, then punctuation split off),
by the ``tokenizers`` library's ``BertPreTokenizer``, which also gives each word's character span, so
a replacement changes that span only and the rest of the text stays exactly as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from tokenizers.pre_tokenizers import BertPreTokenizer

# scikit-learn's English list (318 words); TinyBERT uses NLTK's (179). Single letters are added: the
# split turns "evidence's" and "U.S." into one-letter words that no replacement makes better.
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | frozenset("abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int

    @property
    def key(self) -> str:
        """The form looked up in word vectors and compared with the stop words."""
        return self.text.lower()


@lru_cache(maxsize=1)
def _splitter() -> BertPreTokenizer:
    return BertPreTokenizer()


def split_words(text: str) -> list[Word]:
    return [Word(piece, start, end) for piece, (start, end) in _splitter().pre_tokenize_str(text)]


def is_candidate(word: Word) -> bool:
    """Only words made of letters, and not stop words, are ever replaced."""
    return word.text.isalpha() and word.key not in STOP_WORDS


def match_case(original: str, replacement: str) -> str:
    """``Paris`` -> ``London`` for the candidate ``london``; ``NASA`` -> ``ESA``; lower case stays."""
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def replace_words(text: str, replacements: dict[Word, str]) -> str:
    """``text`` with each given word's span replaced (spans do not overlap)."""
    pieces, cursor = [], 0
    for word in sorted(replacements, key=lambda w: w.start):
        pieces.append(text[cursor:word.start])
        pieces.append(match_case(word.text, replacements[word]))
        cursor = word.end
    pieces.append(text[cursor:])
    return "".join(pieces)
