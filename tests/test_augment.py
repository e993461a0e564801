"""`bert-emd augment`: word replacement by tiny word vectors and a tiny masked LM, made here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bert_emd
from bert_emd.augment.words import STOP_WORDS, split_words
from tests.conftest import minilm_dir
from tests.test_bad_input import assert_one_line_error, run_cli

# Ten groups of near-synonyms: each word's nearest neighbours are its own group.
GROUPS = [["film", "movie", "picture", "feature"], ["good", "great", "fine", "nice"], ["bad", "poor", "awful", "weak"],
          ["actor", "player", "performer", "star"], ["story", "plot", "tale", "narrative"],
          ["funny", "comic", "witty", "amusing"], ["slow", "dull", "tedious", "boring"],
          ["music", "score", "soundtrack", "songs"], ["city", "town", "village", "place"],
          ["quickly", "fast", "rapidly", "swiftly"]]


@pytest.fixture(scope="module")
def tiny_vectors(tmp_path_factory) -> Path:
    """A GloVe text file: each group clusters around its own direction; stop words have vectors too."""
    rng = np.random.default_rng(0)
    lines = []
    for number, group in enumerate(GROUPS):
        centre = np.zeros(12)
        centre[number] = 1.0
        for word in group:
            lines.append(word + " " + " ".join(f"{v:.5f}" for v in centre + rng.normal(0, 0.05, 12)))
    for word in ("the", "and", "was", "it", "a"):
        lines.append(word + " " + " ".join(f"{v:.5f}" for v in rng.normal(0, 1, 12)))
    path = tmp_path_factory.mktemp("vectors") / "tiny_glove.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory) -> Path:
    """A 2-layer random BERT masked LM with the real MiniLM WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_mlm")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, num_hidden_layers=2, hidden_size=32,
                               num_attention_heads=4, intermediate_size=64)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def sentence(rng, words: int = 12) -> str:
    picks = [GROUPS[rng.integers(len(GROUPS))][rng.integers(4)] for _ in range(words)]
    fillers = ["the", "and", ",", "was", "it", "!"]
    parts = []
    for word in picks:
        parts += [word, fillers[rng.integers(len(fillers))]]
    text = " ".join(parts)
    return text[0].upper() + text[1:] + "."


def write_own_file(path: Path, rows: int, pair: bool = False, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    records = []
    for index in range(rows):
        record = {"text": sentence(rng), "label": "pos" if index % 2 else "neg"}
        if pair:
            record["second"] = sentence(rng)
        records.append(json.dumps(record))
    path.write_text("\n".join(records) + "\n", encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def own_options(train: Path, output: Path, vectors: Path, **extra) -> dict:
    return dict(train_file=str(train), output=str(output), vectors=str(vectors), **extra)


def changed_words(original: str, augmented: str) -> list[tuple[str, str]]:
    """(original word, new word) at each position where they differ; the word sequences must align."""
    before, after = split_words(original), split_words(augmented)
    assert len(before) == len(after), (original, augmented)
    return [(a.text, b.text) for a, b in zip(before, after) if a.text != b.text]


def test_only_eligible_words_change_at_about_the_replacement_rate(tmp_path, tiny_vectors):
    train = write_own_file(tmp_path / "train.jsonl", 40)
    output = tmp_path / "augmented.jsonl"
    manifest = bert_emd.augment(own_options(train, output, tiny_vectors, num_augmented=10, replace_prob=0.3,
                                            candidates=3))
    rows = read_jsonl(output)
    originals = {row["source"]: row for row in rows if row["original"]}
    assert len(originals) == 40 and manifest["counts"]["originals"] == 40
    group_of = {word: number for number, group in enumerate(GROUPS) for word in group}
    replaced = eligible = 0
    for row in rows:
        original = originals[row["source"]]
        assert row["label"] == original["label"]  # labels copied
        for old, new in changed_words(original["text_a"], row["text_a"]):
            assert old.isalpha() and old.lower() not in STOP_WORDS
            assert group_of[new.lower()] == group_of[old.lower()]  # a near neighbour, never the word itself
            assert new[0].isupper() == old[0].isupper()  # capitalisation carried over
        if not row["original"]:
            eligible += sum(1 for word in split_words(original["text_a"]) if word.text.lower() in group_of)
            replaced += len(changed_words(original["text_a"], row["text_a"]))
    assert replaced / eligible == pytest.approx(0.3, abs=0.03)
    assert manifest["candidate_sources"]["words_from_vectors"] == manifest["counts"]["replaceable_words"] == 480


def test_number_of_examples_and_duplicates(tmp_path, tiny_vectors):
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "A good film, and the end.", "label": "pos"}\n'
                     '{"text": "The end , and it was .", "label": "neg"}\n', encoding="utf-8")
    output = tmp_path / "augmented.jsonl"
    manifest = bert_emd.augment(own_options(train, output, tiny_vectors, num_augmented=30, candidates=2,
                                            replace_prob=1.0))
    rows = read_jsonl(output)
    first = [row["text_a"] for row in rows if row["source"] == 0]
    # p = 1: both words always change, 2 x 2 candidate choices: at most 4 new texts, none twice
    assert len(first) == len(set(first)) == 5 and first[0] == "A good film, and the end."
    assert [row["text_a"] for row in rows if row["source"] == 1] == ["The end , and it was ."]  # nothing to replace
    assert manifest["counts"] == {"originals": 2, "written": 6, "augmented": 4, "duplicates_dropped": 56,
                                  "replaceable_words": 2}
    many = write_own_file(tmp_path / "many.jsonl", 5)
    bert_emd.augment(own_options(many, tmp_path / "many_out.jsonl", tiny_vectors, num_augmented=7))
    counts = np.bincount([row["source"] for row in read_jsonl(tmp_path / "many_out.jsonl")])
    assert counts.tolist() == [8] * 5  # 12 replaceable words: 7 distinct draws each, plus the original


def test_both_texts_of_a_pair_change_and_same_seed_same_file(tmp_path, tiny_vectors):
    train = write_own_file(tmp_path / "pairs.jsonl", 6, pair=True)
    options = dict(text_columns="text,second", num_augmented=5)
    first = bert_emd.augment(own_options(train, tmp_path / "one.jsonl", tiny_vectors, **options))
    bert_emd.augment(own_options(train, tmp_path / "two.jsonl", tiny_vectors, **options))
    bert_emd.augment(own_options(train, tmp_path / "other.jsonl", tiny_vectors, seed=7, **options))
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    assert (tmp_path / "one.jsonl").read_bytes() != (tmp_path / "other.jsonl").read_bytes()
    rows = read_jsonl(tmp_path / "one.jsonl")
    originals = {row["source"]: row for row in rows if row["original"]}
    new = [row for row in rows if not row["original"]]
    assert first["columns"] == ["text_a", "text_b"]
    assert any(changed_words(originals[r["source"]]["text_a"], r["text_a"]) for r in new)
    assert any(changed_words(originals[r["source"]]["text_b"], r["text_b"]) for r in new)
    manifest = json.loads((tmp_path / "one.jsonl.manifest.json").read_text())
    assert manifest["config"]["seed"] == 42 and manifest["candidate_sources"]["vectors"] == str(tiny_vectors)


def test_masked_lm_candidates_are_whole_words(tmp_path, tiny_vectors, tiny_mlm):
    from transformers import AutoTokenizer

    from bert_emd.augment.masked_lm import MaskedLanguageModel

    model = MaskedLanguageModel(str(tiny_mlm))
    text = "The witty actor made a tedious film."
    words = [word for word in split_words(text) if word.text in ("witty", "tedious")]
    found = model.candidates([(text, word) for word in words], count=40, batch_size=1)
    vocabulary = AutoTokenizer.from_pretrained(tiny_mlm).get_vocab()
    assert len(found) == 2 and all(found)
    for candidates in found:
        assert len(candidates) <= 40
        assert all(token in vocabulary and token.isalpha() for token in candidates)

    train = write_own_file(tmp_path / "train.jsonl", 4)
    output = tmp_path / "mlm.jsonl"
    manifest = bert_emd.augment(own_options(train, output, tiny_vectors, mlm=str(tiny_mlm), num_augmented=4,
                                            mlm_batch_size=16))
    sources = manifest["candidate_sources"]
    assert sources["words_from_mlm"] > 0 and sources["mlm"] == str(tiny_mlm)
    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm)
    rows = read_jsonl(output)
    originals = {row["source"]: row for row in rows if row["original"]}
    for row in rows:
        for _, new in changed_words(originals[row["source"]]["text_a"], row["text_a"]):
            assert len(tokenizer.tokenize(new)) == 1 or new.lower() in {w for g in GROUPS for w in g}


def test_augmented_file_round_trips_through_distill(tmp_path, tiny_vectors, tiny_teacher, glue_dir):
    output = tmp_path / "sst2_augmented.jsonl"
    manifest = bert_emd.augment(task="sst2", data_dir=str(glue_dir), max_train_samples=12, output=str(output),
                                vectors=str(tiny_vectors), num_augmented=3)
    rows = read_jsonl(output)
    assert manifest["task"] == "sst2" and {row["label"] for row in rows} <= {"0", "1"}
    results = bert_emd.distill(teacher=str(tiny_teacher), task="sst2", data_dir=str(glue_dir), output=str(
        tmp_path / "student"), augmented_train=str(output), student_layers=2, epochs=1, batch_size=4,
        max_eval_samples=8, logging_steps=1)
    assert results["train"]["joint"]["steps"] == -(-len(rows) // 4)  # every augmented example, once
    assert results["splits"]["dev"]["num_examples"] == 8  # evaluated on the real dev set


def test_augmented_file_of_another_task_is_refused(capsys, tmp_path, tiny_vectors, tiny_teacher, glue_dir):
    output = tmp_path / "sst2_augmented.jsonl"
    bert_emd.augment(task="sst2", data_dir=str(glue_dir), max_train_samples=4, output=str(output),
                     vectors=str(tiny_vectors), num_augmented=1)
    code, err = run_cli(capsys, "finetune", "--model", str(tiny_teacher), "--task", "cola", "--data-dir",
                        str(glue_dir), "--output", str(tmp_path / "wrong"), "--augmented-train", str(output))
    assert_one_line_error(code, err, "was made for task sst2, not cola")


def test_default_glove_vectors(tmp_path):
    from bert_emd.augment.vectors import WordVectors

    vectors = WordVectors.load()
    assert len(vectors.words) == 400_000 and vectors.unit.shape == (400_000, 50)
    neighbours = vectors.neighbours(["film", "good"], 15, 100_000)
    assert "movie" in neighbours["film"] and len(neighbours["good"]) == 15


@pytest.mark.parametrize("case", ["missing vectors", "malformed vectors", "mlm without mask", "mlm not wordpiece",
                                  "n zero", "p zero", "p above one", "k zero", "output exists", "empty source",
                                  "output not jsonl"])
def test_bad_input(capsys, tmp_path, tiny_vectors, tiny_mlm, tiny_roberta, case):
    train = write_own_file(tmp_path / "train.jsonl", 3)
    output = tmp_path / "out" / "augmented.jsonl"
    output.parent.mkdir()
    argv = ["augment", "--train-file", str(train), "--output", str(output), "--vectors", str(tiny_vectors)]
    expected = {
        "missing vectors": (["--vectors", str(tmp_path / "nope.txt")], "word vectors file not found"),
        "malformed vectors": (["--vectors", str(tmp_path / "bad.txt")], "line 2: expected a word and 3 numbers"),
        "mlm without mask": (["--mlm", str(tmp_path / "no_mask")], "has no mask token"),
        "mlm not wordpiece": (["--mlm", str(tiny_roberta)], "not WordPiece"),
        "n zero": (["--num-augmented", "0"], "--num-augmented must be >= 1 (got 0)"),
        "p zero": (["--replace-prob", "0"], "--replace-prob must be > 0 and <= 1 (got 0.0)"),
        "p above one": (["--replace-prob", "1.5"], "--replace-prob must be > 0 and <= 1 (got 1.5)"),
        "k zero": (["--candidates", "0"], "--candidates must be >= 1 (got 0)"),
        "output exists": ([], "exists; pass --overwrite"),
        "empty source": (["--train-file", str(tmp_path / "empty.tsv"), "--labels", "neg,pos"],
                         "no data rows"),
        "output not jsonl": (["--output", str(tmp_path / "out" / "augmented.tsv")], "give it a .jsonl name"),
    }
    extra, message = expected[case]
    (tmp_path / "bad.txt").write_text("alpha 0.1 0.2 0.3\nbeta 0.1 0.2\n", encoding="utf-8")
    (tmp_path / "empty.tsv").write_text("text\tlabel\n", encoding="utf-8")
    if case == "mlm without mask":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tiny_mlm)
        tokenizer.mask_token = None
        tokenizer.save_pretrained(tmp_path / "no_mask")
        (tmp_path / "no_mask" / "config.json").write_text((tiny_mlm / "config.json").read_text())
    if case == "output exists":
        output.write_text("earlier work\n", encoding="utf-8")
    code, err = run_cli(capsys, *argv, *extra)
    assert_one_line_error(code, err, message)
    left = sorted(path.name for path in output.parent.iterdir())
    assert left == (["augmented.jsonl"] if case == "output exists" else []), left  # nothing half-written
    if case == "output exists":
        assert output.read_text() == "earlier work\n"


@pytest.mark.parametrize("task", ["cola", "sst2", "mrpc", "rte", "stsb"])
def test_every_task_of_the_glue_folder(tmp_path, tiny_vectors, glue_dir, task):
    output = tmp_path / f"{task}.jsonl"
    manifest = bert_emd.augment(task=task, data_dir=str(glue_dir), max_train_samples=6, output=str(output),
                                num_augmented=2)  # the default GloVe vectors
    rows = read_jsonl(output)
    assert manifest["counts"]["originals"] == 6 and len(rows) == manifest["counts"]["written"] > 6
    assert manifest["num_augmented"] == 2 and manifest["candidate_sources"]["vectors"].startswith("GloVe 6B 50d")
    pair = task in ("mrpc", "rte", "stsb")
    assert all(("text_b" in row) == pair for row in rows)
    if task == "stsb":  # regression scores copied as numbers
        assert all(isinstance(row["label"], float) for row in rows)
    from bert_emd.data.loading import DataOptions, load_split, resolve_task

    options = DataOptions(task=task, data_dir=str(glue_dir), augmented_train=str(output))
    loaded = load_split(resolve_task(options), options, "train")
    assert len(loaded) == len(rows) and loaded["text_a"][1] == rows[1]["text_a"]
