"""Extractive question answering: SQuAD readers, windows over long contexts, answer reading, SQuAD scores, the masked
span loss, and finetune -> distill -> evaluate on a tiny model."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from bert_emd.errors import BertEmdError
from bert_emd.spans.answers import exact_match, normalise, read_answers, squad_scores, token_f1
from bert_emd.spans.data import Answer, Question, read_questions
from bert_emd.spans.windows import OUTSIDE, encode_windows
from tests.conftest import minilm_dir
from tests.test_bad_input import assert_one_line_error, run_cli

WORDS = ("river", "stone", "harbour", "market", "garden", "tower", "bridge", "forest", "valley", "castle", "meadow",
         "island", "village", "mountain", "lake", "station", "library", "temple", "palace", "desert")


def _question(number: int, rng: random.Random, words: int = 40, answerable: bool = True) -> dict:
    context_words = [rng.choice(WORDS) for _ in range(words)]
    position = rng.randrange(2, words - 3)
    answer_words = context_words[position:position + rng.randint(1, 2)]
    context = " ".join(context_words) + "."
    start = len(" ".join(context_words[:position])) + 1
    answer = " ".join(answer_words)
    assert context[start:start + len(answer)] == answer
    question = f"what comes after {context_words[position - 2]} {context_words[position - 1]}?"
    record = {"id": f"q{number}", "question": question, "context": context}
    record["answers"] = [{"text": answer, "answer_start": start}] if answerable else []
    return record


def write_squad(path, count: int, seed: int, unanswerable_every: int = 0, words: int = 40):
    rng = random.Random(seed)
    records = [_question(i, rng, words, not (unanswerable_every and i % unanswerable_every == 0)) for i in range(count)]
    paragraphs = [{"context": record.pop("context"), "qas": [record]} for record in records]
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    return path


@pytest.fixture(scope="module")
def squad_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("squad")
    write_squad(folder / "train-v1.1.json", 24, seed=0)
    write_squad(folder / "dev-v1.1.json", 8, seed=1)
    return folder


def test_squad_json_and_jsonl_readers(tmp_path):
    path = write_squad(tmp_path / "v2.json", 4, seed=0, unanswerable_every=2)
    questions = read_questions(path)
    assert [q.id for q in questions] == ["q0", "q1", "q2", "q3"]
    assert not questions[0].answers and questions[1].answers  # v2: an empty answer list is unanswerable
    answer = questions[1].answers[0]
    assert questions[1].context[answer.start:answer.end] == answer.text
    lines = tmp_path / "qa.jsonl"
    lines.write_text(json.dumps({"question": "who?", "context": "Ann met Bob.",
                                 "answers": {"text": ["Bob", "Bob"], "answer_start": [8, 8]}}) + "\n\n" +
                     json.dumps({"id": "x", "question": "where?", "context": "in Rome",
                                 "answers": [{"text": "Rome", "answer_start": 3}]}) + "\n")
    read = read_questions(lines)
    assert [(q.id, q.answers) for q in read] == [("1", (Answer("Bob", 8), Answer("Bob", 8))),
                                                 ("x", (Answer("Rome", 3),))]
    for text, message in [
        ('{"question": "who?", "context": "Ann met Bob.", "answers": [{"text": "Bob", "answer_start": 4}]}',
         r"line 1 \(id 1\): the answer 'Bob' is not at character 4 of its context \(found 'met' there\)"),
        ('{"context": "Ann met Bob.", "answers": []}', "line 1: no 'question' text"),
        ('{"question": "who?", "context": "Ann", "answers": [{"text": "", "answer_start": 0}]}', "non-empty 'text'"),
        ('{"question": "who?", "context": "Ann"}', "no 'answers'"),
        ("{not json", "line 1: not valid JSON"),
    ]:
        lines.write_text(text + "\n")
        with pytest.raises(BertEmdError, match=message):
            read_questions(lines)
    (tmp_path / "bad.json").write_text('{"data": 3}')
    with pytest.raises(BertEmdError, match="not a SQuAD file"):
        read_questions(tmp_path / "bad.json")


def test_windows_keep_every_answer_and_map_offsets_back_to_its_text():
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    rng = random.Random(3)
    raw = [_question(i, rng, words=120) for i in range(6)]
    questions = [Question(r["id"], r["question"], r["context"],
                          tuple(Answer(a["text"], a["answer_start"]) for a in r["answers"]), "test") for r in raw]
    windows = encode_windows(questions, tokenizer, max_length=48, doc_stride=16, training=False)
    assert len(windows) > 2 * len(questions)  # long contexts: several windows each
    for owner, question in enumerate(questions):
        rows = [i for i, index in enumerate(windows["example_index"]) if index == owner]
        found = []
        for i in rows:
            start, end = windows["start_positions"][i], windows["end_positions"][i]
            offsets = windows["offset_mapping"][i]
            assert len(windows["input_ids"][i]) <= 48
            if start == 0:  # this window does not hold the whole answer: the target is [CLS]
                assert end == 0
                continue
            found.append(question.context[offsets[start][0]:offsets[end][1]])
        assert found and set(found) == {question.answers[0].text}
        covered = {pair[0] for i in rows for pair in windows["offset_mapping"][i] if pair[0] != OUTSIDE}
        assert min(covered) == 0  # every window set starts at the context's start ...
        assert max(pair[1] for i in rows for pair in windows["offset_mapping"][i]) == len(question.context)  # ... ends
    with pytest.raises(BertEmdError, match=r"the question takes \d+ of --max-length 12 tokens"):
        encode_windows(questions, tokenizer, max_length=12, doc_stride=4, training=True)
    long_answer = [Question("long", "what?", " ".join(WORDS), (Answer(" ".join(WORDS[1:15]), len(WORDS[0]) + 1),),
                            "test")]
    with pytest.raises(BertEmdError, match="no window of --max-length 16 holds the whole answer"):
        encode_windows(long_answer, tokenizer, max_length=16, doc_stride=2, training=True)


def test_answers_are_read_over_windows_with_the_span_rules():
    context = "alpha beta gamma delta"
    question = Question("q", "?", context, (), "test")
    # window 0: [CLS] q [SEP] alpha beta [SEP]; window 1: [CLS] q [SEP] beta gamma delta [SEP]
    offsets = [[(OUTSIDE, OUTSIDE)] * 3 + [(0, 5), (6, 10), (OUTSIDE, OUTSIDE)],
               [(OUTSIDE, OUTSIDE)] * 3 + [(6, 10), (11, 16), (17, 22), (OUTSIDE, OUTSIDE)]]
    start = np.full((2, 7), -10.0)
    end = np.full((2, 7), -10.0)
    start[0, 3], end[0, 4] = 2.0, 2.0  # "alpha beta": 4.0
    start[1, 4], end[1, 5] = 3.0, 2.5  # "gamma delta": 5.5, the best
    start[1, 1], end[1, 1] = 9.0, 9.0  # question tokens are not in the context: ignored
    start[0, 0], end[0, 0] = 3.0, 3.5  # [CLS] 6.5 in window 0, -20 in window 1: the null score is the lower
    assert read_answers([question], [0, 0], offsets, start, end) == {"q": "gamma delta"}
    assert read_answers([question], [0, 0], offsets, start, end, null_threshold=0.0) == {"q": "gamma delta"}
    start[1, 0], end[1, 0] = 3.0, 3.5  # now both windows vote for no answer: 6.5 > 5.5
    assert read_answers([question], [0, 0], offsets, start, end, null_threshold=0.0) == {"q": ""}
    assert read_answers([question], [0, 0], offsets, start, end, null_threshold=1.5) == {"q": "gamma delta"}
    end[1, 5] = -10.0
    end[1, 3] = 4.0  # gamma (start 3.0) to beta (end 4.0) would score 7.0, but an end before its start is no span
    assert read_answers([question], [0, 0], offsets, start, end) == {"q": "alpha beta"}  # 4.0
    assert read_answers([question], [0, 0], offsets, start, end, max_answer_length=1) == {"q": "beta"}  # -6.0


def test_squad_scores_against_hand_computed_cases():
    assert normalise("The  Eiffel-Tower!") == "eiffeltower"
    assert normalise("an apple, a pear") == "apple pear"
    assert exact_match("the Tower", "tower") == 1.0
    # prediction "big red barn", gold "red barn door": 2 common, precision 2/3, recall 2/3
    assert token_f1("big red barn", "red barn door") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0
    scores = squad_scores({"a": "red barn", "b": "nothing", "c": ""},
                          {"a": ["the red barn", "barn"], "b": ["blue sky"], "c": []})
    assert scores["exact_match"] == pytest.approx((1 + 0 + 1) / 3)
    assert scores["f1"] == pytest.approx((1 + 0 + 1) / 3)
    assert scores["has_answer_f1"] == pytest.approx(0.5) and scores["no_answer_exact_match"] == 1.0
    assert "has_answer_f1" not in squad_scores({"a": "x"}, {"a": ["x"]})


def test_the_span_loss_ignores_padding():
    """A padded batch and its unpadded windows give the same loss; padding takes no probability in either model."""
    from bert_emd.spans.run import span_prediction_loss

    torch.manual_seed(0)
    student, teacher = torch.randn(2, 6, 2), torch.randn(2, 6, 2)
    counted = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    labels = torch.tensor([[1, 2], [0, 5]])
    student_padded = student.clone()
    student_padded[0, 4:] = 50.0  # huge logits on padding must not matter
    teacher_padded = teacher.clone()
    teacher_padded[0, 4:] = 50.0
    for alpha in (1.0, 0.3):
        batch = span_prediction_loss(student_padded, teacher_padded, labels, counted, alpha, 2.0)
        pieces = [span_prediction_loss(student[i:i + 1, :n], teacher[i:i + 1, :n], labels[i:i + 1],
                                       counted[i:i + 1, :n], alpha, 2.0) for i, n in ((0, 4), (1, 6))]
        assert batch.item() == pytest.approx(torch.stack(pieces).mean().item(), rel=1e-6)
    t = 2.0  # the soft part against a direct computation for one window
    direct = 0.0
    for column in range(2):
        p = torch.softmax(teacher[0, :4, column] / t, 0)
        direct += -(p * torch.log_softmax(student[0, :4, column] / t, 0)).sum() / 2
    alone = span_prediction_loss(student[:1, :4], teacher[:1, :4], labels[:1], counted[:1, :4], 1.0, t)
    assert alone.item() == pytest.approx((direct * t * t).item(), rel=1e-6)


def test_finetune_distill_evaluate_a_reader(tiny_bert, squad_dir, tmp_path, capsys):
    from transformers import AutoModelForQuestionAnswering

    import bert_emd

    data = dict(task="squad", data_dir=str(squad_dir), max_length=48, doc_stride=16, batch_size=8)
    teacher = tmp_path / "teacher"
    results = bert_emd.finetune(model=str(tiny_bert), output=str(teacher), learning_rate=1e-3, epochs=2, **data)
    assert results["kind"] == "span" and {"f1", "exact_match"} <= set(results["splits"]["dev"]["metrics"])
    assert results["train"]["windows"] > 24  # 40-word contexts in 48-token windows
    runs = {}
    for mapping in ("emd", "none"):  # a mapping with layer terms, and prediction-layer KD alone
        student = tmp_path / f"student-{mapping}"
        distilled = bert_emd.distill(teacher=str(teacher), student_layers=2, mapping=mapping, output=str(student),
                                     epochs=1, **data)
        dev = distilled["splits"]["dev"]
        runs[mapping] = distilled
        assert {"metrics", "teacher_metrics", "loyalty"} <= set(dev)
        assert 0.0 <= dev["loyalty"]["answer_f1"] <= 1.0
        if mapping != "none":
            state = json.loads((student / "distill_state.json").read_text())
            assert state["hidden"]["last_step"]["flow"]  # the layer terms ran on the reader
    student = tmp_path / "student-emd"
    scored = bert_emd.evaluate(model=str(student), teacher=str(teacher), task="squad", data_dir=str(squad_dir),
                               max_length=48, doc_stride=16, output=str(tmp_path / "dev.json"))
    assert scored["splits"]["dev"]["metrics"] == runs["emd"]["splits"]["dev"]["metrics"]
    # predict: SQuAD's {id: answer} file, which scores as evaluate does
    written = bert_emd.predict(model=str(student), task="squad", data_dir=str(squad_dir), max_length=48,
                               doc_stride=16, split="dev", output=str(tmp_path / "predicted"))
    answers = json.loads(written[0].read_text())
    golds = {q.id: [a.text for a in q.answers] for q in read_questions(squad_dir / "dev-v1.1.json")}
    assert set(answers) == set(golds)
    assert squad_scores(answers, golds) == scored["splits"]["dev"]["metrics"]
    # the saved student is a plain transformers reader
    reader = AutoModelForQuestionAnswering.from_pretrained(student)
    assert reader.config.num_hidden_layers == 2
    with torch.no_grad():
        output = reader(torch.tensor([[101, 2000, 102, 2001, 102]]))
    assert output.start_logits.shape == output.end_logits.shape == (1, 5)


def test_span_tasks_refuse_what_they_cannot_do(capsys, squad_dir, tiny_teacher, tmp_path):
    code, err = run_cli(capsys, "augment", "--task", "squad", "--data-dir", str(squad_dir), "--output",
                        str(tmp_path / "a.jsonl"))
    assert_one_line_error(code, err, "SQuAD v1.1 is a question-answering task")
    code, err = run_cli(capsys, "evaluate", "--model", str(tiny_teacher), "--task", "squad", "--data-dir",
                        str(squad_dir))
    assert_one_line_error(code, err, "has no question-answering head")
    v2 = write_squad(tmp_path / "v2.json", 6, seed=0, unanswerable_every=2)
    code, err = run_cli(capsys, "finetune", "--model", str(tiny_teacher), "--task", "squad", "--train-file", str(v2),
                        "--output", str(tmp_path / "out"))
    assert_one_line_error(code, err, "a question without an answer in a SQuAD v1.1 training set")
    code, err = run_cli(capsys, "finetune", "--model", str(tiny_teacher), "--task", "span", "--output",
                        str(tmp_path / "out"))
    assert_one_line_error(code, err, "--task span reads your own files")
    assert not (tmp_path / "out").exists()


def test_token_and_span_models_export_to_onnx_with_their_output_names(tiny_bert, squad_dir, tmp_path):
    """The ONNX graph of a tagger gives `logits` per token, of a reader `start_logits` and `end_logits`, equal to
    PyTorch's; the check runs on the task's dev examples when --task is given."""
    import onnxruntime
    from transformers import AutoModelForQuestionAnswering, AutoModelForTokenClassification

    import bert_emd

    torch.manual_seed(0)
    reader, tagger = tmp_path / "reader", tmp_path / "tagger"
    AutoModelForQuestionAnswering.from_pretrained(tiny_bert).save_pretrained(reader)
    AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3).save_pretrained(tagger)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    for folder in (reader, tagger):
        tokenizer.save_pretrained(folder)
    report = bert_emd.export(model=str(reader), output=str(tmp_path / "reader-onnx"), task="squad",
                             data_dir=str(squad_dir), max_length=64, int8=True)
    assert report["kind"] == "span" and report["output_names"] == ["start_logits", "end_logits"]
    assert report["examples"] == 8  # the dev questions
    assert report["files"]["model.onnx"]["prediction_agreement"] == 1.0
    assert 0.0 <= report["files"]["model_int8.onnx"]["prediction_agreement"] <= 1.0
    session = onnxruntime.InferenceSession(str(tmp_path / "reader-onnx" / "model.onnx"))
    assert [output.name for output in session.get_outputs()] == ["start_logits", "end_logits"]
    encoded = tokenizer(["what is it?"], ["a stone bridge over the river"], return_tensors="np")
    start, end = session.run(None, {name: encoded[name] for name in ("input_ids", "attention_mask", "token_type_ids")})
    with torch.no_grad():
        output = AutoModelForQuestionAnswering.from_pretrained(reader)(**tokenizer(
            ["what is it?"], ["a stone bridge over the river"], return_tensors="pt"))
    np.testing.assert_allclose(start, output.start_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(end, output.end_logits.numpy(), atol=1e-4)
    # compress's deploy stage reads every window's start and end logits from the graph, padded to one width
    from bert_emd.compress.deploy import onnx_padded_outputs
    from bert_emd.data.loading import DataOptions
    from bert_emd.data.tasks import get_task
    from bert_emd.spans.run import load_span_reader, span_windows, window_logits

    task = get_task("squad")
    _, windows = span_windows(task, DataOptions(task="squad", data_dir=str(squad_dir), max_length=48, doc_stride=16),
                              "dev", tokenizer, training=False)
    want_start, want_end = window_logits(load_span_reader(str(reader), task), tokenizer, windows, 8)
    got_start, got_end = onnx_padded_outputs(tmp_path / "reader-onnx" / "model.onnx", tokenizer, windows,
                                             want_start.shape[1], batch_size=3)
    for row, ids in enumerate(windows["input_ids"]):
        np.testing.assert_allclose(got_start[row, :len(ids)], want_start[row, :len(ids)], atol=1e-4)
        np.testing.assert_allclose(got_end[row, :len(ids)], want_end[row, :len(ids)], atol=1e-4)
    report = bert_emd.export(model=str(tagger), output=str(tmp_path / "tagger-onnx"))
    assert report["kind"] == "token" and report["output_names"] == ["logits"]
    assert report["files"]["model.onnx"]["prediction_agreement"] == 1.0
    # int8 by torchao, scored against the fp32 reader on the task; benchmark times a reader like a classifier
    quantized = bert_emd.quantize(model=str(reader), output=str(tmp_path / "reader-int8"), task="squad",
                                  data_dir=str(squad_dir), max_length=64)
    entry = quantized["splits"]["dev"]
    assert {"f1", "exact_match"} <= set(entry["int8"]) and set(entry["change"]) >= {"f1", "exact_match"}
    assert entry["change"]["f1"] == pytest.approx(entry["int8"]["f1"] - entry["fp32"]["f1"])
    assert 0.0 <= entry["agreement_with_fp32"]["answer_f1"] <= 1.0
    timed = bert_emd.benchmark(model=[str(reader)], backends="torch-fp32", batch_sizes="2", lengths="16", repeats=2)
    assert timed["models"][0]["backends"]["torch-fp32"]


def test_compress_a_reader_end_to_end(tiny_bert, squad_dir, tmp_path, capsys):
    """compress on a question-answering task: EMD distillation of the depth the measured latency allows, the
    deployed answers checked against the PyTorch student on dev, a report scored by SQuAD EM and F1, a QA model
    card."""
    from huggingface_hub import ModelCard

    import bert_emd

    data = dict(task="squad", data_dir=str(squad_dir), max_length=48, doc_stride=16)
    teacher = tmp_path / "teacher"
    bert_emd.finetune(model=str(tiny_bert), output=str(teacher), learning_rate=1e-3, epochs=1, batch_size=8, **data)
    output = tmp_path / "out"
    report = bert_emd.compress(teacher=str(teacher), output=str(output), backend="torch-fp32",
                               baseline="teacher-same-backend", target_speedup=1.1, latency_repeats=2, eval_steps=4,
                               batch_size=16, threads=1, **data)  # augment auto: never for QA
    dev = json.loads((output / "student" / "eval_results.json").read_text())["splits"]["dev"]
    assert report["method"] == "emd" and report["scores"]["student"] == dev["metrics"]
    mean = (dev["metrics"]["exact_match"] + dev["metrics"]["f1"]) / 2
    assert report["scores"]["student_mean"] == pytest.approx(mean)
    assert 0.0 <= report["deployed_agreement_with_student"] <= 1.0
    assert report["deployed"].endswith("model.safetensors")  # PyTorch here; the ONNX reading is tested above
    card = ModelCard.load(output / "student" / "README.md")
    assert card.data.pipeline_tag == "question-answering" and "AutoModelForQuestionAnswering" in card.text
    assert not (output / "augmented").exists()
    for extra, message in [(["--augment", "on"], "question-answering data is not augmented"),
                           (["--method", "theseus"], "--method theseus takes tasks with one label per example"),
                           (["--method", "hybrid"], "--method hybrid takes tasks with one label per example")]:
        code, err = run_cli(capsys, "compress", "--teacher", str(teacher), "--task", "squad", "--data-dir",
                            str(squad_dir), "--target-speedup", "2", "--output", str(tmp_path / "bad"), *extra)
        assert_one_line_error(code, err, message)
