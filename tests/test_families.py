"""Every encoder family through every command: tiny random models of BERT, RoBERTa, XLM-RoBERTa, ELECTRA,
DeBERTa-v2, MPNet and DistilBERT; ALBERT refused with one line. Pre-softmax scores of MPNet and DeBERTa-v2
checked against a computation by hand from the layer's own projections."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import transformers as T
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import bert_emd
from bert_emd.distill.attention import resolve_attention
from bert_emd.distill.config import DistillConfig
from bert_emd.distill.distiller import Distiller
from bert_emd.distill.student import build_student
from bert_emd.errors import BertEmdError
from bert_emd.families import classifier_logits, encoder_blocks, family_of
from bert_emd.families.scores import install_score_hooks
from bert_emd.families.steps import LayerSteps
from tests.conftest import FAMILIES, reload_without_bert_emd
from tests.test_bad_input import assert_one_line_error, run_cli

TEXTS = [["a fine film , full of life", "the plot is thin"], ["dull", "a long and tedious evening at the movies"]]
QUICK = dict(task="sst2", max_train_samples=24, max_eval_samples=8, epochs=1, batch_size=8, eval_batch_size=8)


def batch(path):
    tokenizer = AutoTokenizer.from_pretrained(path)
    return dict(tokenizer(*TEXTS, padding=True, return_tensors="pt"))  # row 1 is padded


def load(path, **kwargs):
    return AutoModelForSequenceClassification.from_pretrained(path, **kwargs).eval()


@pytest.mark.parametrize("kind", FAMILIES)
def test_layer_steps_equal_the_models_forward(tiny_families, kind):
    """Running the blocks one at a time (early exit) gives every layer's states and the logits of the model's own
    forward pass, also after dropping a sample from the batch."""
    model = load(tiny_families[kind])
    inputs = batch(tiny_families[kind])
    with torch.no_grad():
        reference = model(**inputs, output_hidden_states=True)
        steps = LayerSteps(model)
        states, context = steps.embed(inputs["input_ids"], inputs["attention_mask"], inputs.get("token_type_ids"))
        mask = inputs["attention_mask"].bool()
        for index in range(len(steps)):
            states = steps.block(index, states, context)
            torch.testing.assert_close(states[mask], reference.hidden_states[index + 1][mask], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(classifier_logits(model, states), reference.logits, rtol=1e-5, atol=1e-5)
        # the padded second sample alone, through the kept context
        rows = torch.tensor([1])
        states, context = steps.embed(inputs["input_ids"], inputs["attention_mask"], inputs.get("token_type_ids"))
        states = steps.block(0, states, context)[rows]
        context = steps.keep(context, rows)
        for index in range(1, len(steps)):
            states = steps.block(index, states, context)
        torch.testing.assert_close(states[mask[rows]], reference.hidden_states[-1][rows][mask[rows]], rtol=1e-5,
                                   atol=1e-5)


def _hand_scores(attention, hidden, heads, scale):
    """``Q K^T * scale`` from the layer's own projection weights, by hand: ``[B, H, L, L]``."""
    def project(linear):
        out = hidden @ linear.weight.T + linear.bias
        return out.view(*hidden.shape[:2], heads, -1).transpose(1, 2)
    q_proj, k_proj = (attention.q, attention.k) if hasattr(attention, "q") else (attention.query_proj,
                                                                                  attention.key_proj)
    return project(q_proj) @ project(k_proj).transpose(-1, -2) * scale


@pytest.mark.parametrize("kind, position_terms", [("mpnet", None), ("deberta-v2", []), ("deberta-v2", ["c2p", "p2c"])])
def test_scores_of_families_outside_the_attention_interface(tiny_families, tmp_path, kind, position_terms):
    path = tiny_families[kind]
    overrides = {} if position_terms is None else {"pos_att_type": position_terms}
    model = load(path, **overrides)
    inputs = batch(path)
    with torch.no_grad():
        if kind == "deberta-v2":  # random relative embeddings (std 0.02) make position terms too small to see
            model.deberta.encoder.rel_embeddings.weight.mul_(100)
        plain = model(**inputs, output_attentions=True, output_hidden_states=True)
        assert install_score_hooks(model)
        hooked = model(**inputs, output_attentions=True, output_hidden_states=True)
    torch.testing.assert_close(hooked.logits, plain.logits)  # the hooks change what attentions holds, nothing else
    keys = inputs["attention_mask"].bool()[:, None, None, :]
    queries = inputs["attention_mask"].bool()[:, None, :, None]
    heads = model.config.num_attention_heads
    blocks = encoder_blocks(model)
    for index, (scores, probabilities) in enumerate(zip(hooked.attentions, plain.attentions)):
        # the model's own probabilities are the softmax of these scores over the real keys
        rebuilt = scores.masked_fill(~keys, float("-inf")).softmax(-1)
        both = (keys & queries).expand_as(scores)
        torch.testing.assert_close(rebuilt[queries.expand_as(rebuilt)], probabilities[queries.expand_as(rebuilt)],
                                   rtol=1e-5, atol=1e-6)
        assert (scores[~keys.expand_as(scores)] == 0).all()  # padded keys count nowhere
        hidden = plain.hidden_states[index]
        if kind == "mpnet":
            attention = blocks[index].attention.attn
            content = _hand_scores(attention, hidden, heads, 1 / math.sqrt(attention.attention_head_size))
            bias = model.mpnet.encoder.compute_position_bias(hidden)  # the relative position bias is part of S
            torch.testing.assert_close(scores[both], (content + bias)[both], rtol=1e-5, atol=1e-5)
        else:
            attention = blocks[index].attention.self
            factor = 1 + len(position_terms)
            content = _hand_scores(attention, hidden, heads, 1 / math.sqrt(hidden.shape[-1] // heads * factor))
            if not position_terms:  # content only: the hand computation is the whole score
                torch.testing.assert_close(scores[both], content[both], rtol=1e-5, atol=1e-5)
            else:  # content + position terms: the position part is not zero and the softmax check above holds
                assert (scores - content)[both].abs().max() > 0.01


def test_distiller_hands_scores_of_hook_families_to_the_attention_term(tiny_families):
    path = tiny_families["mpnet"]
    teacher = load(path, attn_implementation="eager")
    student = build_student(teacher, "teacher", 2)
    config = DistillConfig(teacher=str(path), task="sst2", student_layers=2, attention="scores")
    Distiller(teacher, student, config)
    inputs = batch(path)
    with torch.no_grad():
        for model in (teacher, student):
            attentions = model(**inputs, output_attentions=True).attentions
            assert all((a < 0).any() for a in attentions)  # scores, not probabilities
    probs_config = DistillConfig(teacher=str(path), task="sst2", student_layers=2, attention="probs")
    fresh = load(path, attn_implementation="eager")
    Distiller(fresh, build_student(fresh, "teacher", 2), probs_config)
    with torch.no_grad():
        attentions = fresh(**inputs, output_attentions=True).attentions
    assert all((a >= 0).all() for a in attentions)


def test_attention_options_per_family(tiny_families):
    mpnet = T.AutoConfig.from_pretrained(tiny_families["mpnet"])
    bert = T.AutoConfig.from_pretrained(tiny_families["bert"])
    assert resolve_attention("scores", "auto", True, mpnet) == ("eager", "maps")
    assert resolve_attention("scores", "auto", True, bert)[1] == "factorised"
    with pytest.raises(BertEmdError, match="not available for MPNet"):
        resolve_attention("scores", "factorised", True, mpnet)
    unknown = T.DebertaConfig()  # DeBERTa (v1): attention outside the interface and no score hooks
    with pytest.raises(BertEmdError, match="use --attention probs or --attention off"):
        resolve_attention("scores", "auto", True, unknown)


def test_distilbert_student_sizes(tiny_families):
    teacher = load(tiny_families["distilbert"])
    student = build_student(teacher, "teacher:1,4", 2, intermediate=48)
    assert (student.config.n_layers, student.config.hidden_dim, student.config.dim) == (2, 48, 32)
    torch.testing.assert_close(encoder_blocks(student)[1].attention.q_lin.weight,
                               encoder_blocks(teacher)[3].attention.q_lin.weight)


@pytest.mark.parametrize("kind", FAMILIES)
def test_family_pipeline(tiny_families, glue_dir, tmp_path, kind):
    """finetune -> distill (attention scores) -> evaluate -> reload with plain transformers; early exit; hybrid."""
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    bert_emd.finetune(model=str(tiny_families[kind]), data_dir=str(glue_dir), output=str(teacher), **QUICK)
    results = bert_emd.distill(teacher=str(teacher), data_dir=str(glue_dir), output=str(student), student_layers=2,
                               attention="scores", **QUICK)
    config = json.loads((student / "config.json").read_text())
    assert config["model_type"] == kind
    assert family_of(load(student)) is family_of(load(teacher))
    assert len(encoder_blocks(load(student))) == 2
    expected_path = "maps" if kind in ("mpnet", "deberta-v2") else "factorised"
    assert json.loads((student / "run_config.json").read_text())["config"]["attention_distance"] == expected_path
    assert results["layer_weights"]["attention"]["student_weights"]
    scored = bert_emd.evaluate(model=str(student), task="sst2", data_dir=str(glue_dir), max_eval_samples=8)
    assert 0.0 <= scored["splits"]["dev"]["metrics"]["accuracy"] <= 1.0
    reloaded = reload_without_bert_emd(student, [["a fine film", "a dull one"]])
    assert np.array(reloaded["logits"]).shape == (2, 2)

    exits = tmp_path / "exit"
    early = bert_emd.train_early_exit(teacher=str(teacher), data_dir=str(glue_dir), output=str(exits), **QUICK)
    assert "dev" in early["splits"]
    assert bert_emd.EarlyExitModel.from_pretrained(exits).num_layers == 4
    compact = bert_emd.hybrid(teacher=str(teacher), data_dir=str(glue_dir), output=str(tmp_path / "hybrid"),
                              target_ratio=2.0, steps=1, **QUICK)
    assert compact["encoder"]["ratio"] >= 2.0 - 1e-6


def test_albert_is_refused_by_every_command(capsys, tiny_families, glue_dir, tmp_path):
    albert = str(tiny_families["albert"])
    quick = ["--task", "sst2", "--data-dir", str(glue_dir), "--max-train-samples", "8", "--epochs", "1"]
    for command in (["distill", "--teacher", albert, "--student-layers", "2"], ["early-exit", "train", "--teacher",
                                                                                albert],
                    ["hybrid", "--teacher", albert, "--target-ratio", "2"]):
        output = tmp_path / command[0]
        code, err = run_cli(capsys, *command, *quick, "--output", str(output))
        assert_one_line_error(code, err, "ALBERT shares one set of layer weights across all its layers")
        assert "use a teacher of a family with its own weights per layer" in err
        assert not output.exists()


@pytest.mark.parametrize("kind", ["mpnet", "distilbert"])
def test_benchmark_of_families_without_token_types(tiny_families, tmp_path, kind):
    results = bert_emd.benchmark(model=[str(tiny_families[kind])], backends="torch-fp32,ort-fp32,ort-int8",
                                 batch_sizes="2", lengths="16", repeats=1, warmup=0, threads=1,
                                 output=str(tmp_path / "bench.json"))
    backends = results["models"][0]["backends"]
    assert set(backends) == {"torch-fp32", "ort-fp32", "ort-int8"}
    assert backends["ort-fp32"]["settings"]["batch2_len16"]["p50_ms"] > 0
    assert backends["ort-int8"]["size_mb"] < backends["ort-fp32"]["size_mb"]  # the int8 graph of this family
