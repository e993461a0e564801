"""The TextFooler-style attack: word importance, which words change and to what, the meaning constraint, a model
that cannot be fooled, the metrics, seeded subsets, pair tasks, the command end to end, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import bert_emd
from bert_emd.attack.run import chosen_examples
from bert_emd.attack.textfooler import AttackSettings, Outcome, attack_example, importance, summarise
from bert_emd.augment.words import split_words
from tests.test_bad_input import assert_one_line_error, run_cli

WEIGHTS = {"good": 3.0, "great": 2.5, "fine": 0.4, "bad": -3.0, "awful": -2.5, "film": 0.2, "movie": -0.1,
           "picture": 0.1}
NEIGHBOURS = {"good": [("fine", 0.9), ("great", 0.8), ("awful", 0.3)], "film": [("movie", 0.95), ("picture", 0.7)],
              "great": [("good", 0.8)]}


def scorer(first, second):
    """A bag-of-words model: p(positive) = sigmoid(sum of word weights) of the (second) text."""
    texts = second if second is not None else first
    out = []
    for text in texts:
        score = sum(WEIGHTS.get(word.key, 0.0) for word in split_words(text))
        positive = 1 / (1 + math.exp(-score))
        out.append([1 - positive, positive])
    return np.asarray(out)


def same_meaning(original, texts):
    return np.ones(len(texts))


def neighbours(word, threshold=0.5):
    return [(candidate, similarity) for candidate, similarity in NEIGHBOURS.get(word, []) if similarity >= threshold]


def test_importance_by_deletion_matches_a_hand_computation():
    text = "a good film"
    words = [word for word in split_words(text) if word.key != "a"]
    base = scorer([text], None)[0]
    scores = importance(scorer, None, text, words, 1, base)
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    p = sigmoid(3.2)
    without_good, without_film = sigmoid(0.2), sigmoid(3.0)
    # deleting "good" does not flip the prediction (0.2 > 0): the drop alone; nor does deleting "film"
    assert scores == pytest.approx([p - without_good, p - without_film])
    assert scores[0] > scores[1]  # "good" is attacked first


def test_only_replaceable_words_change_and_only_to_allowed_candidates():
    settings = AttackSettings(min_word_similarity=0.5, min_sentence_similarity=0.5)
    outcome = attack_example(scorer, same_meaning, neighbours, "the good film", 1, settings)
    assert outcome.status in ("succeeded", "failed")
    for original, substitute in outcome.changed:
        assert original.lower() not in ("the",)  # stop words are never replaced
        assert substitute in [candidate for candidate, cosine in NEIGHBOURS[original.lower()] if cosine >= 0.5]
    assert "awful" not in (outcome.perturbed or "")  # cosine 0.3 is under the threshold


def test_a_successful_attack_flips_the_label_with_the_fewest_changes_it_found():
    words = dict(WEIGHTS)
    try:
        WEIGHTS.update(fine=-1.0)  # "fine" now reads negative: good -> fine flips "a good film"
        outcome = attack_example(scorer, same_meaning, neighbours, "a good film", 1, AttackSettings())
    finally:
        WEIGHTS.clear()
        WEIGHTS.update(words)
    assert outcome.status == "succeeded" and outcome.perturbed == "a fine film" and outcome.perturbed_prediction == 0
    assert outcome.changed == [("good", "fine")] and outcome.changed_share == pytest.approx(1 / 3)


def test_the_meaning_constraint_rejects_a_substitution():
    words = dict(WEIGHTS)
    try:
        WEIGHTS.update(fine=-1.0)

        def not_fine(original, texts):  # "fine" changes the meaning too much
            return np.asarray([0.1 if "fine" in text else 1.0 for text in texts])

        outcome = attack_example(scorer, not_fine, neighbours, "a good film", 1, AttackSettings())
    finally:
        WEIGHTS.clear()
        WEIGHTS.update(words)
    assert ("good", "fine") not in outcome.changed


def test_a_constant_model_is_never_attacked_successfully():
    def constant(first, second):
        return np.tile([0.2, 0.8], (len(first), 1))

    outcomes = [attack_example(constant, same_meaning, neighbours, text, 1, AttackSettings())
                for text in ("a good film", "a bad film", "good good film")]
    assert all(outcome.status == "failed" for outcome in outcomes)
    assert summarise(outcomes)["attack_success_rate"] == 0.0
    wrong = attack_example(constant, same_meaning, neighbours, "a bad film", 0, AttackSettings())
    assert wrong.status == "skipped" and wrong.queries == 1  # a wrong prediction is not attacked


def test_the_query_budget_is_kept():
    outcome = attack_example(scorer, same_meaning, neighbours, "a good film", 1, AttackSettings(max_queries=3))
    assert outcome.status == "failed" and outcome.queries <= 3


def test_metrics_against_hand_counted_outcomes():
    outcomes = [Outcome("succeeded", 1, 1, words=10, changed=[("a", "b"), ("c", "d")], queries=30),
                Outcome("succeeded", 0, 0, words=4, changed=[("a", "b")], queries=10),
                Outcome("failed", 1, 1, words=5, queries=50), Outcome("skipped", 1, 0, words=5, queries=1)]
    summary = summarise(outcomes)
    assert summary["clean_accuracy"] == 0.75 and summary["accuracy_under_attack"] == 0.25
    assert summary["attack_success_rate"] == pytest.approx(2 / 3)
    assert summary["mean_changed_share"] == pytest.approx((0.2 + 0.25) / 2)
    assert summary["mean_queries"] == pytest.approx(30)


def test_seeded_subsets():
    assert chosen_examples(100, 10, 3) == chosen_examples(100, 10, 3)
    assert chosen_examples(100, 10, 3) != chosen_examples(100, 10, 4)
    assert chosen_examples(5, 10, 3) == [0, 1, 2, 3, 4]
    assert chosen_examples(100, 10, 3) == sorted(set(chosen_examples(100, 10, 3)))


def test_pair_tasks_perturb_only_the_second_text():
    calls = []

    def recording(first, second):
        calls.append((list(first), None if second is None else list(second)))
        return scorer(first, second)

    outcome = attack_example(recording, same_meaning, neighbours, "a good film", 1, AttackSettings(), first="premise")
    assert all(first == ["premise"] * len(first) and second is not None for first, second in calls)
    assert outcome.perturbed is None or "premise" not in outcome.perturbed


def test_the_command_end_to_end_with_transfer_and_resume(tiny_teacher, tiny_bert, glue_dir, tmp_path,
                                                         tiny_vectors_file):
    output = tmp_path / "attack"
    settings = dict(model=str(tiny_teacher), teacher=str(tiny_teacher), task="sst2", data_dir=str(glue_dir),
                    max_examples=6, vectors=str(tiny_vectors_file), sentence_encoder=str(tiny_bert),
                    min_sentence_similarity=0.0, output=str(output), max_length=32)
    results = bert_emd.attack(**settings)
    assert results["attack"].startswith("TextFooler-style with ") and str(tiny_vectors_file) in results["attack"]
    lines = (output / "adversarial_model.jsonl").read_text().splitlines()
    assert len(lines) == 6 and {json.loads(line)["index"] for line in lines} == set(results["examples"])
    summary = results["models"]["model"]
    assert summary == results["models"]["teacher"] | {"model": summary["model"]}  # the same model: the same outcomes
    assert results["transfer"]["teacher_to_model"]["share"] in (None, 1.0)  # the same model is always fooled again
    again = bert_emd.attack(**settings)  # resumed: nothing attacked twice
    assert len((output / "adversarial_model.jsonl").read_text().splitlines()) == 6
    assert again["models"] == results["models"]


@pytest.mark.parametrize("extra, message", [
    (["--vectors", "{missing}"], "word vectors file not found"),
    (["--min-word-similarity", "1.5"], "--min-word-similarity must be >= 0 and <= 1"),
    (["--min-sentence-similarity", "-0.1"], "--min-sentence-similarity must be >= 0 and <= 1"),
    (["--max-queries", "0"], "--max-queries must be >= 1"),
    (["--max-examples", "0"], "--max-examples must be >= 1"),
])
def test_bad_attack_options(capsys, tiny_teacher, glue_dir, tmp_path, extra, message):
    output = tmp_path / "out"
    code, err = run_cli(capsys, "attack", "--model", str(tiny_teacher), "--task", "sst2", "--data-dir", str(glue_dir),
                        "--output", str(output), *[part.format(missing=tmp_path / "none.txt") for part in extra])
    assert_one_line_error(code, err, message)
    assert not output.exists()


def _regressor(tmp_path):
    """A tiny random STS-B-shaped regressor (one output) with the MiniLM tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from tests.conftest import TINY_SIZES, minilm_dir

    model = tmp_path / "regressor"
    BertForSequenceClassification(BertConfig(vocab_size=30522, num_hidden_layers=2, num_labels=1,
                                             problem_type="regression", **TINY_SIZES)).save_pretrained(model)
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(model)
    return model


def test_a_regression_task_is_refused(capsys, glue_dir, tmp_path):
    model = _regressor(tmp_path)
    code, err = run_cli(capsys, "attack", "--model", str(model), "--task", "stsb", "--data-dir", str(glue_dir),
                        "--output", str(tmp_path / "out"))
    assert_one_line_error(code, err, "regression task")


def _attack_settings(model, teacher, glue_dir, tiny_bert, tiny_vectors_file, output, **extra) -> dict:
    return dict(model=str(model), teacher=str(teacher), task="sst2", data_dir=str(glue_dir), max_examples=6,
                vectors=str(tiny_vectors_file), sentence_encoder=str(tiny_bert), min_sentence_similarity=0.0,
                output=str(output), max_length=32, **extra)


def _records(output, role: str) -> list[dict]:
    return [json.loads(line) for line in (output / f"adversarial_{role}.jsonl").read_text().splitlines()]


def test_an_exported_onnx_file_is_attacked_as_its_pytorch_model(tiny_teacher, tiny_bert, glue_dir, tmp_path,
                                                                 tiny_vectors_file):
    bert_emd.export(model=str(tiny_teacher), output=str(tmp_path / "onnx"), check_samples=4)
    output = tmp_path / "attack"
    results = bert_emd.attack(**_attack_settings(tmp_path / "onnx" / "model.onnx", tiny_teacher, glue_dir, tiny_bert,
                                                 tiny_vectors_file, output))
    onnx, torch_model = _records(output, "model"), _records(output, "teacher")
    assert [r["original_prediction"] for r in onnx] == [r["original_prediction"] for r in torch_model]
    assert [r["status"] for r in onnx] == [r["status"] for r in torch_model]  # the same model in another runtime
    assert results["models"]["model"]["clean_accuracy"] == results["models"]["teacher"]["clean_accuracy"]


@pytest.fixture(scope="module")
def early_exit_dir(tiny_teacher, tmp_path_factory):
    """tiny_teacher with untrained exit students after its first three layers."""
    import torch
    from transformers import AutoTokenizer

    from bert_emd.early_exit.model import EarlyExitModel
    from bert_emd.models import load_trained_classifier

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("early_exit")
    EarlyExitModel(load_trained_classifier(str(tiny_teacher))).save_pretrained(
        path, AutoTokenizer.from_pretrained(tiny_teacher))
    return path


def test_an_early_exit_model_is_attacked_at_its_threshold(early_exit_dir, tiny_teacher, tiny_bert, glue_dir,
                                                          tmp_path, tiny_vectors_file):
    import torch
    from transformers import AutoTokenizer

    from bert_emd.early_exit.model import EarlyExitModel

    full = tmp_path / "threshold0"  # threshold 0: nobody leaves early, the backbone answers: the teacher's outcomes
    bert_emd.attack(**_attack_settings(early_exit_dir, tiny_teacher, glue_dir, tiny_bert, tiny_vectors_file, full,
                                       exit_threshold=0.0))
    assert [(r["original_prediction"], r["status"]) for r in _records(full, "model")] == \
        [(r["original_prediction"], r["status"]) for r in _records(full, "teacher")]
    early = tmp_path / "threshold1"  # threshold 1: almost every example answers at the first exit student
    bert_emd.attack(**_attack_settings(early_exit_dir, tiny_teacher, glue_dir, tiny_bert, tiny_vectors_file, early,
                                       exit_threshold=1.0))
    records = _records(early, "model")
    model = EarlyExitModel.from_pretrained(early_exit_dir)
    encoded = AutoTokenizer.from_pretrained(early_exit_dir)([r["original"] for r in records], padding=True,
                                                            truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        logits, _ = model.predict(**encoded, threshold=1.0)
    assert [r["original_prediction"] for r in records] == logits.argmax(-1).tolist()


def test_early_exit_options_are_checked(capsys, early_exit_dir, tiny_teacher, glue_dir, tmp_path):
    base = ["attack", "--task", "sst2", "--data-dir", str(glue_dir), "--output", str(tmp_path / "out")]
    code, err = run_cli(capsys, *base, "--model", str(early_exit_dir))
    assert_one_line_error(code, err, "is an early-exit model: give --exit-threshold T")
    code, err = run_cli(capsys, *base, "--model", str(tiny_teacher), "--exit-threshold", "0.2")
    assert_one_line_error(code, err, "--exit-threshold applies to an early-exit model")
    code, err = run_cli(capsys, *base, "--model", str(early_exit_dir), "--exit-threshold", "0.2",
                        "--exit-uncertainty", "margin")
    assert_one_line_error(code, err, "unknown uncertainty 'margin'")
    assert not (tmp_path / "out").exists()


def test_evaluate_attack_adds_the_attack_to_the_results(tiny_teacher, tiny_bert, glue_dir, tmp_path,
                                                        tiny_vectors_file):
    options = {"vectors": str(tiny_vectors_file), "sentence_encoder": str(tiny_bert), "min_sentence_similarity": 0.0,
               "max_examples": 6}
    summary = bert_emd.evaluate(model=str(tiny_teacher), teacher=str(tiny_teacher), task="sst2",
                                data_dir=str(glue_dir), max_length=32, output=str(tmp_path / "results.json"),
                                attack=str(tmp_path / "attack"), attack_options=options)
    written = json.loads((tmp_path / "attack" / "attack_results.json").read_text())
    assert summary["attack"]["models"] == written["models"] and written["split"] == "dev"
    assert len(written["examples"]) == 6 and set(summary["attack"]["models"]) == {"model", "teacher"}
    assert json.loads((tmp_path / "results.json").read_text())["attack"]["models"] == written["models"]
    # the clean accuracy on the attacked examples agrees with evaluate's own predictions on them
    records = _records(tmp_path / "attack", "model")
    assert written["models"]["model"]["clean_accuracy"] == pytest.approx(
        np.mean([r["original_prediction"] == r["label"] for r in records]))


def test_evaluate_attack_refuses_what_it_cannot_do(capsys, tiny_teacher, glue_dir, tmp_path):
    with pytest.raises(bert_emd.BertEmdError, match="model are set by evaluate"):
        bert_emd.evaluate(model=str(tiny_teacher), task="sst2", data_dir=str(glue_dir), attack=str(tmp_path / "a"),
                          attack_options={"model": "x"})
    with pytest.raises(bert_emd.BertEmdError, match="attack_options apply to (--attack |attack=)DIR"):
        bert_emd.evaluate(model=str(tiny_teacher), task="sst2", data_dir=str(glue_dir), attack_options={})
    model = _regressor(tmp_path)
    code, err = run_cli(capsys, "evaluate", "--model", str(model), "--task", "stsb", "--data-dir", str(glue_dir),
                        "--attack", str(tmp_path / "out"))
    assert_one_line_error(code, err, "--attack flips labels of a classifier; STS-B is a regression task")
    assert not (tmp_path / "out").exists()
