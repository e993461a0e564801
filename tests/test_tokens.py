"""Token-classification data: CoNLL and JSON-lines readers, labels carried to sub-word pieces, entity scores."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoTokenizer

from bert_emd.errors import BertEmdError
from bert_emd.tokens.data import IGNORED, align_labels, encode, read_conll, read_token_jsonl, tag_set
from bert_emd.tokens.metrics import entity_metrics, token_loyalty
from tests.conftest import minilm_dir

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""


def test_conll_reader(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(CONLL)
    sentences = read_conll(path)
    assert [s.tokens for s in sentences] == [("EU", "rejects", "German", "call"), ("Peter", "Blackburn"),
                                             ("BRUSSELS",)]
    assert sentences[1].tags == ("B-PER", "I-PER") and sentences[1].line == 8
    assert tag_set(sentences) == ("O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER")
    bad = tmp_path / "bad.txt"
    bad.write_text("EU B-ORG\nrejects\n")
    with pytest.raises(BertEmdError, match="bad.txt, line 2: a word without a tag column"):
        read_conll(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("-DOCSTART- -X- -X- O\n\n")
    with pytest.raises(BertEmdError, match="no sentences"):
        read_conll(empty)


def test_jsonl_reader(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"tokens": ["Peter", "runs"], "tags": ["B-PER", "O"]}\n')
    assert read_token_jsonl(path)[0].tags == ("B-PER", "O")
    path.write_text('{"tokens": ["Peter", "runs"], "tags": ["B-PER"]}\n')
    with pytest.raises(BertEmdError, match="line 1: 2 tokens but 1 tags"):
        read_token_jsonl(path)
    path.write_text('\n["Peter", "runs"]\n')
    with pytest.raises(BertEmdError, match="train.jsonl, line 2: expected an object with tokens and tags"):
        read_token_jsonl(path)
    path.write_bytes(b'{"tokens": ["\xff"], "tags": ["O"]}\n')  # not UTF-8: one error, not a traceback
    with pytest.raises(BertEmdError, match="train.jsonl: not UTF-8 text .* at byte 13"):
        read_token_jsonl(path)
    path.write_bytes('\ufeff{"tokens": ["Peter"], "tags": ["B-PER"]}\n'.encode())  # a byte-order mark is dropped
    assert read_token_jsonl(path)[0].tokens == ("Peter",)


def test_labels_go_to_the_first_piece_of_each_word(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    words = ["Peter", "Gibberishville", "rejects", "it"]
    tags = ("B-PER", "B-LOC", "O", "O")
    labels = ("O", "B-LOC", "B-PER")
    pieces = [tokenizer.tokenize(word) for word in words]  # the split, worked out word by word
    assert len(pieces[1]) > 1  # the test needs a word of several pieces
    first_only = [IGNORED]  # [CLS]
    every_piece = [IGNORED]
    for word_pieces, tag in zip(pieces, tags):
        label = labels.index(tag)
        first_only += [label] + [IGNORED] * (len(word_pieces) - 1)
        every_piece += [label] * len(word_pieces)
    first_only.append(IGNORED)  # [SEP]
    every_piece.append(IGNORED)
    from bert_emd.tokens.data import Sentence

    encoded = encode([Sentence(tuple(words), tags, 1)], tokenizer, labels, max_length=64)
    assert encoded["labels"][0] == first_only
    assert encode([Sentence(tuple(words), tags, 1)], tokenizer, labels, 64, label_all_tokens=True)["labels"][0] == \
        every_piece
    word_ids = [None, 0, 1, 1, 2, None]
    assert align_labels(word_ids, ("B-PER", "B-LOC", "O"), labels) == [IGNORED, 2, 1, IGNORED, 0, IGNORED]


def _one_hot(rows, names):
    logits = np.zeros((1, len(rows), len(names)))
    for position, tag in enumerate(rows):
        logits[0, position, names.index(tag)] = 5.0
    return logits


def test_entity_scores_against_hand_counts():
    names = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    gold = ["B-PER", "I-PER", "O", "B-LOC", "O"]
    predicted = ["B-PER", "I-PER", "O", "O", "B-LOC"]
    labels = np.asarray([[names.index(tag) for tag in gold]])
    scores = entity_metrics(_one_hot(predicted, names), labels, names)
    # gold entities: PER(0-1), LOC(3); predicted: PER(0-1), LOC(4) -> one of two right, one of two predicted right
    assert scores["precision"] == pytest.approx(0.5) and scores["recall"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(0.5) and scores["token_accuracy"] == pytest.approx(3 / 5)
    assert scores["per_type_f1"] == {"LOC": 0.0, "PER": 1.0}
    padded = np.concatenate([labels, [[IGNORED]]], axis=1)  # an ignored position does not count
    assert entity_metrics(np.concatenate([_one_hot(predicted, names), _one_hot(["B-LOC"], names)], axis=1), padded,
                          names)["f1"] == pytest.approx(0.5)


def test_token_loyalty_counts_only_labelled_positions():
    names = ("O", "B-PER")
    student = np.concatenate([_one_hot(["O", "B-PER", "O"], names)], axis=0)
    teacher = _one_hot(["O", "O", "B-PER"], names)
    labels = np.asarray([[0, 1, IGNORED]])
    loyalty = token_loyalty(student, teacher, labels)
    assert loyalty["label_loyalty"] == pytest.approx(0.5)
    assert 0.0 <= loyalty["probability_loyalty"] <= 1.0


def _conll_file(path, sentences: int = 24):
    rows = [("Peter", "B-PER"), ("Blackburn", "I-PER"), ("visited", "O"), ("Brussels", "B-LOC"), ("today", "O")]
    other = [("The", "O"), ("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("lamb", "O")]
    lines = ["-DOCSTART- -X- -X- O", ""]
    for number in range(sentences):
        for word, tag in (rows if number % 2 else other):
            lines.append(f"{word} NNP B-NP {tag}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def conll_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conll")
    for split in ("train", "dev", "test"):
        _conll_file(folder / f"{split}.txt", 24 if split == "train" else 8)
    return folder


def test_finetune_distill_evaluate_a_tagger(tiny_bert, conll_dir, tmp_path, capsys):
    import json

    import torch
    from transformers import AutoModelForTokenClassification

    import bert_emd
    from bert_emd.data.tasks import CONLL2003_TAGS

    data = dict(task="conll2003", data_dir=str(conll_dir), max_length=32, batch_size=8, epochs=2)
    teacher = tmp_path / "teacher"
    results = bert_emd.finetune(model=str(tiny_bert), output=str(teacher), learning_rate=1e-3, **data)
    assert results["kind"] == "token" and set(results["splits"]["dev"]["metrics"]) >= {"f1", "precision", "recall",
                                                                                         "per_type_f1"}
    model = AutoModelForTokenClassification.from_pretrained(teacher)
    assert tuple(model.config.id2label[i] for i in range(9)) == CONLL2003_TAGS
    student = tmp_path / "student"
    distilled = bert_emd.distill(teacher=str(teacher), student_layers=2, output=str(student), **data)
    dev = distilled["splits"]["dev"]
    assert {"metrics", "teacher_metrics", "loyalty"} <= set(dev) and 0.0 <= dev["loyalty"]["label_loyalty"] <= 1.0
    assert AutoModelForTokenClassification.from_pretrained(student).config.num_hidden_layers == 2
    state = json.loads((student / "distill_state.json").read_text())
    assert state["hidden"]["last_step"]["flow"]  # the layer terms ran on the token model
    scored = bert_emd.evaluate(model=str(student), teacher=str(teacher), task="conll2003", data_dir=str(conll_dir),
                               max_length=32, output=str(tmp_path / "dev.json"))
    assert scored["splits"]["dev"]["metrics"] == dev["metrics"]
    assert json.loads((tmp_path / "dev.json").read_text())["kind"] == "token"
    tested = bert_emd.evaluate(model=str(student), task="conll2003", data_dir=str(conll_dir), max_length=32,
                               split="test")  # CoNLL-2003's test file is tagged: it is scored like dev
    assert tested["splits"]["test"]["num_examples"] == 8 and 0.0 <= tested["splits"]["test"]["metrics"]["f1"] <= 1
    # predict: the test words with their tags, in CoNLL layout; scored by seqeval they give evaluate's test F1
    from seqeval.metrics import f1_score

    written = bert_emd.predict(model=str(student), task="conll2003", data_dir=str(conll_dir), max_length=32,
                               output=str(tmp_path / "predicted"))
    predicted, gold = read_conll(written[0]), read_conll(conll_dir / "test.txt")
    assert [s.tokens for s in predicted] == [s.tokens for s in gold]
    assert f1_score([list(s.tags) for s in gold], [list(s.tags) for s in predicted]) == pytest.approx(
        tested["splits"]["test"]["metrics"]["f1"])
    # the saved student is a plain transformers tagger
    with torch.no_grad():
        logits = AutoModelForTokenClassification.from_pretrained(student)(torch.tensor([[101, 2000, 102]])).logits
    assert logits.shape == (1, 3, 9)


def test_the_soft_token_loss_counts_only_labelled_tokens(tiny_bert, conll_dir):
    """A padded batch and its unpadded pieces give the same loss: padding and -100 positions do not count."""
    import torch

    from bert_emd.distill import DistillConfig
    from bert_emd.tokens.run import TokenDistiller

    distiller = TokenDistiller.__new__(TokenDistiller)
    torch.nn.Module.__init__(distiller)
    distiller.kd_temperature, distiller.alpha = 2.0, 1.0
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    labels = torch.tensor([[1, 0, IGNORED, IGNORED, IGNORED], [2, 1, 0, IGNORED, 1]])
    loss = distiller._prediction_loss(student, teacher, labels)
    counted = labels != IGNORED
    t = 2.0
    direct = [-(torch.softmax(teacher[b, p] / t, -1) * torch.log_softmax(student[b, p] / t, -1)).sum()
              for b in range(2) for p in range(5) if counted[b, p]]
    assert loss.item() == pytest.approx((torch.stack(direct).mean() * t * t).item(), rel=1e-6)
    assert DistillConfig  # the token distiller takes distill's own options


def test_token_tasks_refuse_commands_that_do_not_take_them(capsys, conll_dir, tiny_teacher, tmp_path):
    from tests.test_bad_input import assert_one_line_error, run_cli

    code, err = run_cli(capsys, "attack", "--model", str(tiny_teacher), "--task", "conll2003", "--data-dir",
                        str(conll_dir), "--output", str(tmp_path / "a.json"))
    assert_one_line_error(code, err, "CoNLL-2003 is a token-classification task")
    bad = tmp_path / "train.txt"
    bad.write_text("Peter B-PER\nruns\n")
    code, err = run_cli(capsys, "finetune", "--model", str(tiny_teacher), "--task", "token", "--train-file",
                        str(bad), "--output", str(tmp_path / "out"))
    assert_one_line_error(code, err, "train.txt, line 2: a word without a tag column")
    code, err = run_cli(capsys, "evaluate", "--model", str(tiny_teacher), "--task", "conll2003", "--data-dir",
                        str(conll_dir))
    assert_one_line_error(code, err, "has no token-classification head")


def test_count_tokens_attention_averages_over_every_attended_token(tiny_bert):
    """--count-tokens attention: the soft loss over every unpadded token (pieces after the first and special tokens
    too), against a direct computation; labelled: over the labelled pieces only."""
    import torch
    from transformers import AutoModelForTokenClassification

    from bert_emd.distill import DistillConfig
    from bert_emd.distill.terms import TermBatch
    from bert_emd.tokens.run import TokenDistiller

    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3)
    student, teacher = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    labels = torch.tensor([[IGNORED, 1, IGNORED, 0, IGNORED], [IGNORED, 2, IGNORED, IGNORED, IGNORED]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    t = 2.0
    for count, counted in (("attention", mask.bool()), ("labelled", labels != IGNORED)):
        distiller = TokenDistiller(model, model, DistillConfig(mapping="none", kd_temperature=t, count_tokens=count))
        loss = distiller.prediction_loss(TermBatch(student, teacher, labels, mask, {}, {}))
        direct = [-(torch.softmax(teacher[b, p] / t, -1) * torch.log_softmax(student[b, p] / t, -1)).sum()
                  for b in range(2) for p in range(5) if counted[b, p]]
        assert loss.item() == pytest.approx((torch.stack(direct).mean() * t * t).item(), rel=1e-6)


def test_token_options_refused_where_they_do_not_apply(capsys, glue_dir, tiny_teacher, tmp_path):
    from tests.test_bad_input import assert_one_line_error, run_cli

    code, err = run_cli(capsys, "finetune", "--model", str(tiny_teacher), "--task", "sst2", "--data-dir",
                        str(glue_dir), "--label-all-tokens", "--output", str(tmp_path / "a"))
    assert_one_line_error(code, err, "--label-all-tokens applies to token tasks; SST-2 is not one")
    code, err = run_cli(capsys, "distill", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir",
                        str(glue_dir), "--student-layers", "2", "--count-tokens", "attention", "--output",
                        str(tmp_path / "b"))
    assert_one_line_error(code, err, "--count-tokens applies to token tasks; SST-2 is not one")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_augment_replaces_only_words_tagged_o_and_training_reads_the_file(tmp_path, conll_dir, tiny_bert):
    import json

    import bert_emd
    from bert_emd.tokens.data import read_token_jsonl

    rng = np.random.default_rng(0)
    groups = [["visited", "toured", "saw"], ["today", "yesterday", "tonight"], ["rejects", "refuses", "denies"],
              ["lamb", "beef", "pork"], ["peter", "paul", "john"], ["brussels", "paris", "berlin"]]
    lines = []
    for number, group in enumerate(groups):
        centre = np.zeros(8)
        centre[number] = 1.0
        lines += [word + " " + " ".join(f"{v:.5f}" for v in centre + rng.normal(0, 0.05, 8)) for word in group]
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("\n".join(lines) + "\n")
    output = tmp_path / "augmented.jsonl"
    manifest = bert_emd.augment(task="conll2003", data_dir=str(conll_dir), output=str(output), vectors=str(vectors),
                                num_augmented=4, replace_prob=1.0, candidates=2)
    originals = read_conll(conll_dir / "train.txt")
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert manifest["counts"]["written"] == len(records) > len(originals)
    changed = 0
    for record in records:
        source = originals[record["source"]]
        assert record["tags"] == list(source.tags)  # every tag stays true
        for word, new, tag in zip(source.tokens, record["tokens"], source.tags):
            if tag != "O":
                assert new == word  # entities are never replaced: "Peter" stays though "paul" is a neighbour
            changed += new != word
    assert changed > 0
    assert {"toured", "saw"} & {token for record in records for token in record["tokens"]}
    assert len(read_token_jsonl(output)) == len(records)
    # finetune trains on the augmented file (its sentence count says so)
    results = bert_emd.finetune(model=str(tiny_bert), task="conll2003", data_dir=str(conll_dir),
                                augmented_train=str(output), max_length=32, epochs=1, batch_size=16,
                                output=str(tmp_path / "tagger"))
    assert results["train"]["sentences"] == len(records)


def test_experiment_rows_on_a_token_task(tiny_bert, conll_dir, tmp_path):
    """`bert-emd experiment` runs teacher and students of a token task and tables their entity F1."""
    import json

    from bert_emd.experiment import experiment

    table = experiment(name="tok", tasks="conll2003", methods="emd,none", seeds="1", teacher_model=str(tiny_bert),
                       teacher={"epochs": 1, "batch_size": 8, "max_length": 32},
                       distill={"epochs": 1, "batch_size": 8, "max_length": 32}, data_dir=str(conll_dir),
                       work_dir=str(tmp_path / "work"), results_dir=str(tmp_path / "results"), latency_repeats=1,
                       latency_length=16)
    assert [row["name"] for row in table["rows"]] == ["teacher", "emd-L2", "none-L2"]
    record = json.loads((tmp_path / "results" / "tok" / "runs" / "conll2003" / "emd-L2" / "seed1" /
                         "eval_results.json").read_text())
    cell = table["rows"][1]["tasks"]["conll2003"]
    assert cell["score"]["mean"] == pytest.approx(record["splits"]["dev"]["metrics"]["f1"])
    assert "CoNLL-2003 f1" in (tmp_path / "results" / "tok" / "table.md").read_text()


def test_compress_a_tagger_end_to_end(tiny_bert, conll_dir, tmp_path):
    """compress on a token task: shape from measured latency, augmentation (words tagged O), EMD distillation,
    the deployed form checked per token on dev, a report scored by entity F1 and a token-classification model card."""
    import json

    from huggingface_hub import ModelCard

    import bert_emd

    teacher = tmp_path / "teacher"
    bert_emd.finetune(model=str(tiny_bert), task="conll2003", data_dir=str(conll_dir), max_length=32, batch_size=8,
                      epochs=2, learning_rate=1e-3, output=str(teacher))
    output = tmp_path / "out"
    # PyTorch here (the reader's compress test covers the ONNX path of the deploy stage)
    report = bert_emd.compress(teacher=str(teacher), task="conll2003", data_dir=str(conll_dir), output=str(output),
                               backend="torch-fp32", baseline="teacher-same-backend", target_speedup=1.1,
                               latency_repeats=2, eval_steps=4, num_augmented=1, batch_size=16, threads=1,
                               max_length=32)
    student = json.loads((output / "student" / "eval_results.json").read_text())
    dev = student["splits"]["dev"]
    assert report["method"] == "emd" and report["scores"]["student"]["f1"] == dev["metrics"]["f1"]
    assert report["scores"]["student_mean"] == dev["metrics"]["f1"]  # a tagger's score is its entity F1
    assert "per_type_f1" not in report["scores"]["student"]
    assert report["loyalty"] == dev["loyalty"]
    assert 0.0 <= report["deployed_agreement_with_student"] <= 1.0
    assert report["deployed"].endswith("model.safetensors")
    manifest = json.loads((output / "augmented" / "train.jsonl.manifest.json").read_text())
    assert manifest["replaced"] == "words tagged O only"
    card = ModelCard.load(output / "student" / "README.md")
    assert card.data.pipeline_tag == "token-classification"
    assert "AutoModelForTokenClassification" in card.text


def test_a_tagger_that_tags_every_word_alike_is_flagged(tiny_bert, conll_dir, tmp_path, capsys):
    import shutil

    import torch
    from transformers import AutoModelForTokenClassification

    import bert_emd
    from bert_emd.data.tasks import CONLL2003_TAGS

    model = AutoModelForTokenClassification.from_pretrained(
        tiny_bert, num_labels=len(CONLL2003_TAGS), id2label=dict(enumerate(CONLL2003_TAGS)),
        label2id={tag: i for i, tag in enumerate(CONLL2003_TAGS)})
    with torch.no_grad():  # the head ignores its input: 'O' for every word
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([4.0] + [0.0] * (len(CONLL2003_TAGS) - 1)))
    tagger = tmp_path / "tagger"
    model.save_pretrained(tagger)
    shutil.copytree(tiny_bert, tagger, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.safetensors",
                                                                                       "config.json"))
    scored = bert_emd.evaluate(model=str(tagger), task="conll2003", data_dir=str(conll_dir), max_length=32)
    dev = scored["splits"]["dev"]
    assert CONLL2003_TAGS[0] == "O" and dev["constant_prediction"] == {"label": 0}
    assert dev["metrics"]["f1"] == 0.0  # no entity found
    assert "warning: the model predicts class 'O' for every word" in capsys.readouterr().out
