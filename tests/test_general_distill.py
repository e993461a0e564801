"""`bert-emd general-distill`: packing, a tiny pre-trained encoder distilled on real text, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer, TrainerCallback

import bert_emd
from tests.conftest import GLUE_DIR, minilm_dir
from tests.test_bad_input import assert_one_line_error, run_cli

CORPUS = GLUE_DIR.parent / "corpus" / "wikitext103_valid_test.txt"


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    """The first 40 lines of the shared WikiText corpus, with blank lines between them."""
    lines = CORPUS.read_text(encoding="utf-8").splitlines()[:40]
    path = tmp_path_factory.mktemp("corpus") / "wiki.txt"
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return path


QUICK = dict(student_layers=2, max_length=32, batch_size=8, epochs=1, logging_steps=1, history_every=1)


def test_packing_keeps_every_token_in_order():
    import datasets

    from bert_emd.general_distill.corpus import pack

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    texts = ["The cat sat on the mat.", "", "A dog barked at the moon all night long.", "Short one."] * 5
    packed = pack(datasets.Dataset.from_dict({"text": texts}), tokenizer, 12)
    stream = [token for text in texts for token in tokenizer(text, add_special_tokens=False)["input_ids"]]
    assert len(packed) == len(stream) // 10  # 10 text tokens per sequence besides [CLS] and [SEP]
    for number, sequence in enumerate(packed["input_ids"]):
        assert len(sequence) == 12
        assert sequence[0] == tokenizer.cls_token_id and sequence[-1] == tokenizer.sep_token_id
        assert sequence[1:-1] == stream[number * 10:(number + 1) * 10]
    assert all(mask == [1] * 12 for mask in packed["attention_mask"])


def test_general_distillation_end_to_end(tiny_bert, tiny_teacher, corpus_file, glue_dir, tmp_path):
    output = tmp_path / "general"
    results = bert_emd.general_distill(teacher=str(tiny_bert), corpus=[str(corpus_file)], task="sst2",
                                       data_dir=str(glue_dir), max_train_samples=100, output=str(output), **QUICK)
    assert results["task_texts"] == 100 and results["sequences"] > 10 and results["tokens_per_second"] > 0
    assert results["steps"] == -(-results["sequences"] // 8)
    assert not list(output.glob("checkpoint-*"))
    encoder = AutoModel.from_pretrained(output)  # plain transformers: a standard encoder directory
    assert encoder.config.num_hidden_layers == 2 and type(encoder).__name__ == "BertModel"
    assert encoder.config._attn_implementation != "bert_emd_query_key"
    state = json.loads((output / "distill_state.json").read_text())
    assert state["mapping"] == "emd" and len(state["history"]) == results["steps"]
    assert state["attention"]["student_weights"] != [0.5, 0.5]  # cost attention learned the weights
    logged = results["log_history"]
    assert len(logged) == results["steps"] and all("loss_attention_emd" in entry for entry in logged)
    run = json.loads((output / "run_config.json").read_text())
    assert run["command"] == "general-distill" and run["config"]["attention_distance"] == "factorised"

    # the general student is where task distillation starts
    from transformers import BertForSequenceClassification

    from bert_emd.distill.student import build_student

    teacher = BertForSequenceClassification.from_pretrained(tiny_teacher)
    student = build_student(teacher, str(output), 2)
    torch.testing.assert_close(student.bert.encoder.layer[1].output.dense.weight,
                               encoder.encoder.layer[1].output.dense.weight)
    distilled = bert_emd.distill(teacher=str(tiny_teacher), task="sst2", data_dir=str(glue_dir),
                                 student_init=str(output), output=str(tmp_path / "task"), student_layers=2,
                                 max_train_samples=16, max_eval_samples=8, epochs=1, batch_size=8)
    assert distilled["splits"]["dev"]["num_examples"] == 8


class StopAtFirstSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


def test_general_distillation_resumes(tiny_bert, corpus_file, tmp_path, monkeypatch):
    settings = dict(teacher=str(tiny_bert), corpus=[str(corpus_file)], save_steps=2, **QUICK)
    straight = bert_emd.general_distill(output=str(tmp_path / "straight"), **settings)

    from bert_emd.general_distill import run as run_module
    from bert_emd.training import callbacks as real_callbacks

    monkeypatch.setattr(run_module, "callbacks",
                        lambda config, evaluate=True: real_callbacks(config, evaluate) + [StopAtFirstSave()])
    with pytest.raises(KeyboardInterrupt):
        bert_emd.general_distill(output=str(tmp_path / "resumed"), **settings)
    assert [path.name for path in (tmp_path / "resumed").glob("checkpoint-*")] == ["checkpoint-2"]
    monkeypatch.undo()
    resumed = bert_emd.general_distill(output=str(tmp_path / "resumed"), **settings)
    assert resumed["resumed_from"].endswith("checkpoint-2")
    for term in ("attention", "hidden"):
        np.testing.assert_allclose(resumed["layer_weights"][term]["teacher_weights"],
                                   straight["layer_weights"][term]["teacher_weights"], rtol=1e-4)
    first = AutoModel.from_pretrained(tmp_path / "straight").state_dict()
    for name, tensor in AutoModel.from_pretrained(tmp_path / "resumed").state_dict().items():
        torch.testing.assert_close(tensor, first[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("extra, message", [
    (["--mapping", "none"], "--mapping none leaves general distillation nothing to learn"),
    (["--corpus", "missing.txt"], "corpus file not found: missing.txt"),
    ([], "no text to distil on"),
    (["--corpus", "CORPUS", "--max-length", "2"], "leaves no room for text"),
    (["--corpus", "EMPTY"], "the corpus has no text"),
])
def test_bad_input(capsys, tiny_bert, corpus_file, tmp_path, extra, message):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    extra = [str(corpus_file) if item == "CORPUS" else str(empty) if item == "EMPTY" else item for item in extra]
    code, err = run_cli(capsys, "general-distill", "--teacher", str(tiny_bert), "--student-layers", "2",
                        "--output", str(tmp_path / "out"), *extra)
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "out").exists()
