"""`bert-emd augment`: TinyBERT-style task data augmentation by word replacement.

Each original example is kept and up to N new ones are drawn from it: every replaceable word (letters
only, not a stop word) is replaced with probability p by one of its K candidates, taken from a masked
language model (words that are one piece under its tokenizer) or from word-vector neighbours (every
other word). Labels are copied from the original, so with ``--alpha 1`` (distill's default) the student
learns the teacher's outputs on the new texts and the copied labels are never used as truth.
Where this differs from TinyBERT's script: words keep their case and the text its spacing (TinyBERT
writes lower-cased, space-joined tokens); scikit-learn's stop-word list plus single letters (TinyBERT:
NLTK's), no stop word and only words of letters as candidates; GloVe 6B 50-d by default (TinyBERT's
maintainers name glove.42B.300d) and no MLM unless one is given (TinyBERT: BERT-base).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bert_emd.augment.config import AUGMENTED_PER_TASK, DEFAULT_AUGMENTED, AugmentConfig
from bert_emd.augment.vectors import WordVectors
from bert_emd.augment.words import STOP_WORDS, Word, is_candidate, replace_words, split_words
from bert_emd.data.loading import load_split, resolve_task
from bert_emd.errors import BertEmdError
from bert_emd.options import resolve_config
from bert_emd.outputs import check_output_file
from bert_emd.runinfo import run_record
from bert_emd.tokens.load import load_token_split

MANIFEST_SUFFIX = ".manifest.json"


def manifest_path(output: str | Path) -> Path:
    return Path(str(output) + MANIFEST_SUFFIX)


def check_augment_options(config: AugmentConfig, task_name: str) -> int:
    """The number of examples to draw per original, after checking every option."""
    if not config.output:
        raise BertEmdError("--output is required (the .jsonl file to write)")
    output = Path(config.output)
    if output.suffix.lower() != ".jsonl":
        raise BertEmdError(f"--output {output}: the augmented file is JSON lines; give it a .jsonl name")
    if output.is_dir():
        raise BertEmdError(f"--output {output} is a directory; give a file name ending in .jsonl")
    if output.exists() and not config.overwrite:
        raise BertEmdError(f"--output {output} exists; pass --overwrite to replace it")
    check_output_file(output)
    count = config.num_augmented if config.num_augmented is not None else \
        AUGMENTED_PER_TASK.get(task_name, DEFAULT_AUGMENTED)
    return count


def augment(config: AugmentConfig | str | dict | None = None, **overrides) -> dict:
    """Write ``config.output`` (JSON lines) and its manifest; returns the manifest."""
    config = resolve_config(AugmentConfig, config, overrides)
    started = time.perf_counter()
    task = resolve_task(config)
    per_original = check_augment_options(config, task.name)
    if task.kind == "token":
        from bert_emd.tokens.augment import augment_tokens

        load_token_split(task, config, "train")  # a bad file stops the run before any model loads
        return augment_tokens(config, task, per_original, started, *_candidate_sources(config))
    rows = load_split(task, config, "train")
    if len(rows) == 0:
        raise BertEmdError("the training data is empty: nothing to augment")
    columns = [name for name in ("text_a", "text_b") if name in rows.column_names]
    texts = {name: rows[name] for name in columns}
    labels = [float(value) if task.is_regression else task.labels[int(value)] for value in rows["label"]]

    model, vectors = _candidate_sources(config)
    words = {name: [split_words(text) for text in texts[name]] for name in columns}
    candidates, sources = find_candidates(config, texts, words, model, vectors)
    manifest_counts = {"originals": len(rows)}
    output = Path(config.output)

    def records():
        for index in tqdm(range(len(rows)), desc="Augmenting"):
            examples = draw_examples(index, [texts[name][index] for name in columns],
                                     [candidates[name][index] for name in columns], per_original,
                                     config.replace_prob, config.seed)
            for number, example in enumerate(examples):
                yield {**dict(zip(columns, example)), "label": labels[index], "source": index,
                       "original": number == 0}

    def make_manifest(written: int, seconds: float) -> dict:
        manifest_counts.update(written=written, augmented=written - len(rows),
                               duplicates_dropped=len(rows) * (per_original + 1) - written,
                               replaceable_words=sum(len(c) for name in columns for c in candidates[name]))
        return {**run_record("augment", config, task=task.name),
                "labels": list(task.labels), "columns": columns, "num_augmented": per_original,
                "candidate_sources": sources, "counts": manifest_counts, "seconds": seconds,
                "sentences_per_second": written * len(columns) / seconds}

    written, manifest = write_with_manifest(output, records(), make_manifest, started)
    seconds = manifest["seconds"]
    print(f"{written:,} examples ({len(rows):,} originals, {written - len(rows):,} augmented) written to {output} "
          f"in {seconds:.1f} s ({manifest['sentences_per_second']:.0f} sentences/s); manifest beside it")
    return manifest


def write_with_manifest(output: Path, records, make_manifest, started: float) -> tuple[int, dict]:
    """The JSON-lines file and its manifest, both written under temporary names and moved into place together:
    an interrupted run leaves neither behind. ``make_manifest(written, seconds)`` is called once all is written."""
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    manifest_temporary = temporary.with_suffix(".manifest.tmp")
    written = 0
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
        manifest = make_manifest(written, time.perf_counter() - started)
        manifest_temporary.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(temporary, output)
        os.replace(manifest_temporary, manifest_path(output))
    finally:
        for leftover in (temporary, manifest_temporary):
            leftover.unlink(missing_ok=True)
    return written, manifest


def _candidate_sources(config: AugmentConfig):
    """Both candidate sources, loaded before any work so that a bad file or model stops the run at once."""
    model = None
    if config.mlm:
        from bert_emd.augment.masked_lm import MaskedLanguageModel

        model = MaskedLanguageModel(config.mlm)
    return model, WordVectors.load(config.vectors)


def find_candidates(config: AugmentConfig, texts: dict, words: dict, model, vectors: WordVectors) -> tuple[dict, dict]:
    """Per column, per example: the replaceable words with their candidates (words without any left out)."""
    occurrences = [(name, index, word) for name in words for index, example in enumerate(words[name])
                   for word in example if is_candidate(word)]
    by_mlm: dict[tuple[str, int, Word], list[str]] = {}
    sources = {"mlm": config.mlm, "vectors": vectors.source, "words_from_mlm": 0, "words_from_vectors": 0}
    if model is not None:
        served = [item for item in occurrences if model.is_one_piece(item[2].text)]
        with tqdm(total=len(served), desc="MLM candidates") as progress:
            found = model.candidates([(texts[name][index], word) for name, index, word in served], config.candidates,
                                     config.mlm_batch_size, progress)
        by_mlm = dict(zip(served, found))
    rest = [item for item in occurrences if item not in by_mlm]
    neighbours: dict[str, list[str]] = {}
    if rest:
        neighbours = vectors.neighbours([word.key for _, _, word in rest], config.candidates, config.vocabulary_size)
    candidates = {name: [[] for _ in words[name]] for name in words}
    for item in occurrences:
        name, index, word = item
        options = [option for option in (by_mlm[item] if item in by_mlm else neighbours.get(word.key, []))
                   if option.lower() not in STOP_WORDS]  # "New York" must not become "The York"
        if options:
            candidates[name][index].append((word, options))
            sources["words_from_mlm" if item in by_mlm else "words_from_vectors"] += 1
    return candidates, sources


def draw_examples(index: int, texts: list[str], candidates: list[list[tuple[Word, list[str]]]], count: int,
                  replace_prob: float, seed: int) -> list[tuple[str, ...]]:
    """The original and up to ``count`` distinct new versions of one example (one random stream per
    example, so the file does not depend on how the work is split)."""
    generator = np.random.default_rng([seed, index])
    examples = [tuple(texts)]
    seen = {examples[0]}
    for _ in range(count):
        drawn = []
        for text, replaceable in zip(texts, candidates):
            chosen = {}
            for word, options in replaceable:
                if generator.random() < replace_prob:
                    chosen[word] = options[generator.integers(len(options))]
            drawn.append(replace_words(text, chosen) if chosen else text)
        example = tuple(drawn)
        if example not in seen:
            seen.add(example)
            examples.append(example)
    return examples
