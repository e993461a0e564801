"""MS-BERT early exit: exit logic, batched vs single inference, training, EMD targets, saving, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from transformers import (
    AlbertConfig,
    AlbertForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    RobertaForSequenceClassification,
)

from bert_emd.cli import main
from bert_emd.distill.emd import solve_transport
from bert_emd.distill.layer_loss import LayerMappingLoss
from bert_emd.early_exit import EarlyExitModel, exit_layers, train_early_exit, uncertainty
from bert_emd.early_exit.summary import main as summary_main
from bert_emd.early_exit.train import EarlyExitTrainConfig, SelfDistiller
from bert_emd.errors import BertEmdError
from tests.conftest import TINY_SIZES, minilm_dir
from tests.test_bad_input import assert_one_line_error, run_cli

TEXTS = ["a gripping, beautifully acted film", "dull", "it is neither good nor bad , just long and loud",
         "the plot makes no sense at all but the music is lovely"]


def encode(path, texts=TEXTS):
    return AutoTokenizer.from_pretrained(path)(texts, padding=True, return_tensors="pt")


# ----- exit logic against hand-made probabilities
def test_entropy_exit_layers_by_hand():
    probs = torch.tensor([[[0.99, 0.01], [0.6, 0.4], [0.5, 0.5]],   # layer 1
                          [[0.5, 0.5], [0.95, 0.05], [0.55, 0.45]],  # layer 2
                          [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]])     # layer 3 (always answers)
    entropy = -(probs * probs.log()).sum(-1) / math.log(2)
    assert torch.allclose(uncertainty(probs), entropy)
    # H(0.99) = 0.081, H(0.6) = 0.971, H(0.95) = 0.286, H(0.55) = 0.993
    assert exit_layers(probs, 0.1).tolist() == [1, 3, 3]
    assert exit_layers(probs, 0.3).tolist() == [1, 2, 3]
    assert exit_layers(probs, 0.98).tolist() == [1, 1, 3]
    assert exit_layers(probs, 0.0).tolist() == [3, 3, 3]  # threshold 0: never early
    assert exit_layers(probs, 1.0).tolist() == [1, 1, 2]  # exactly uniform (H = 1) never passes "< 1"


def test_topk_uncertainty_by_hand():
    probs = torch.tensor([[0.50, 0.48, 0.01, 0.01],   # torn between two classes
                          [0.40, 0.20, 0.20, 0.20],   # one clear favourite among the top two
                          [0.25, 0.25, 0.25, 0.25]])
    top2 = uncertainty(probs, "topk", 2)
    q = torch.tensor([0.5 / 0.98, 0.48 / 0.98])
    assert top2[0] == pytest.approx(float(-(q * q.log()).sum() / math.log(2)), abs=1e-6)
    q = torch.tensor([2 / 3, 1 / 3])
    assert top2[1] == pytest.approx(float(-(q * q.log()).sum() / math.log(2)), abs=1e-6)
    assert top2[2] == pytest.approx(1.0)
    entropy = uncertainty(probs, "entropy")
    assert entropy[1] > entropy[0]  # the full entropy ranks the two the other way round
    assert torch.allclose(uncertainty(probs, "topk", 4), entropy)  # K = C is the entropy
    layers = torch.stack([probs, torch.full_like(probs, 0.25)])
    assert exit_layers(layers, 0.95, "topk", 2).tolist() == [2, 1, 2]
    assert exit_layers(layers, 0.95, "entropy").tolist() == [1, 2, 2]


# ----- inference
def test_threshold_zero_equals_the_full_model_and_batches_match_single(tiny_teacher):
    backbone = BertForSequenceClassification.from_pretrained(tiny_teacher).eval()
    model = EarlyExitModel(backbone, "fastbert", width=16, heads=2).eval()
    torch.manual_seed(1)
    for head in model.exits:  # confident-enough random heads so that some samples exit early
        for parameter in head.parameters():
            parameter.data.normal_(0, 0.5)
    inputs = encode(tiny_teacher)
    with torch.inference_mode():
        full = backbone(**inputs).logits
    logits, layers = model.predict(**inputs, threshold=0.0)
    assert torch.equal(logits, full) and layers.tolist() == [4] * len(TEXTS)
    every = model.all_logits(**inputs)["exits"]
    for threshold in (0.3, 0.6, 0.9, 1.0):
        expected = exit_layers(every.softmax(-1), threshold)
        logits, layers = model.predict(**inputs, threshold=threshold)
        assert layers.tolist() == expected.tolist()
        assert torch.allclose(logits, every[expected - 1, torch.arange(len(TEXTS))], atol=1e-5)
        for index, text in enumerate(TEXTS):
            single_logits, single_layer = model.predict(**encode(tiny_teacher, [text]), threshold=threshold)
            assert single_layer.item() == layers[index].item()
            assert torch.allclose(single_logits[0], logits[index], atol=1e-4)
    assert model.predict(**inputs, threshold=1.0)[1].tolist() == [1] * len(TEXTS)  # any non-uniform exit is sure


def test_roberta_backbone_threshold_zero(tiny_roberta):
    from transformers import RobertaConfig

    config = RobertaConfig.from_pretrained(tiny_roberta, num_labels=3)
    backbone = RobertaForSequenceClassification(config).eval()
    model = EarlyExitModel(backbone, "ramp").eval()
    inputs = AutoTokenizer.from_pretrained(tiny_roberta)(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        full = backbone(**inputs).logits
    logits, layers = model.predict(**inputs, threshold=0.0, measure="topk", top_k=3)
    assert torch.equal(logits, full) and layers.tolist() == [2] * len(TEXTS)


# ----- training
def test_train_keeps_the_backbone_and_saves_a_reloadable_model(tiny_teacher, glue_dir, tmp_path):
    output = tmp_path / "exits"
    before = {key: value.clone() for key, value in
              BertForSequenceClassification.from_pretrained(tiny_teacher).state_dict().items()}
    results = train_early_exit(teacher=str(tiny_teacher), task="sst2", data_dir=str(glue_dir), output=str(output),
                               max_train_samples=48, max_eval_samples=24, epochs=1, batch_size=8,
                               student_design="fastbert", student_width=16, targets="emd", label_weight=0.5,
                               logging_steps=1)
    assert len(results["splits"]["dev"]["per_exit"]) == 4
    assert sum(results["layer_weights"]["student_weights"]) == pytest.approx(1.0)
    reloaded = EarlyExitModel.from_pretrained(output)
    after = reloaded.backbone.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)  # the backbone did not move
    stored = BertForSequenceClassification.from_pretrained(output)  # standard transformers format
    assert all(torch.equal(before[key], stored.state_dict()[key]) for key in before)
    settings = json.loads((output / "early_exit.json").read_text())
    assert settings["design"] == "fastbert" and settings["targets"] == "emd" and settings["width"] == 16
    assert not list(output.glob("checkpoint-*"))
    # round trip: the same exits give the same logits after a second save and load
    again = tmp_path / "again"
    reloaded.save_pretrained(again)
    inputs = encode(output)
    first = reloaded.all_logits(**inputs)["exits"]
    second = EarlyExitModel.from_pretrained(again).all_logits(**inputs)["exits"]
    assert torch.equal(first, second)
    trained_first_exit = reloaded.exits[0].project.weight
    untrained = EarlyExitModel(BertForSequenceClassification.from_pretrained(tiny_teacher), "fastbert", 16, 2)
    assert not torch.equal(trained_first_exit, untrained.exits[0].project.weight)


def test_emd_targets_go_through_the_shared_transport(tiny_teacher, glue_dir):
    backbone = BertForSequenceClassification.from_pretrained(tiny_teacher)
    model = EarlyExitModel(backbone, "ramp")
    config = EarlyExitTrainConfig(teacher=str(tiny_teacher), targets="emd", weight_update=False)
    distiller = SelfDistiller(model, config).train()
    for module in model.exits.modules():  # no dropout, so that the recomputation below sees the same students
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    assert isinstance(distiller.transport, LayerMappingLoss) and distiller.transport.mapping == "emd"
    inputs = encode(tiny_teacher)
    loss = distiller(**inputs)["loss"]
    record = distiller.transport.last_step_record()
    # the cost is KL(tiny_teacher on teacher layer j || student i), recomputed here independently
    with torch.no_grad():
        out = model.all_logits(**inputs, layer_targets=True)
    targets, students = out["layer_targets"].softmax(-1), out["exits"][:-1].softmax(-1)
    cost = np.array([[float((t * (t.log() - s.log())).sum(-1).mean()) for t in targets] for s in students])
    assert np.allclose(record["cost"], cost, atol=1e-5)
    flow = solve_transport(cost, np.full(3, 1 / 3), np.full(4, 1 / 4))
    assert np.allclose(record["flow"], flow, atol=1e-6)
    assert loss.item() == pytest.approx(float((flow * cost).sum()), rel=1e-4)
    loss.backward()
    assert all(parameter.grad is None for parameter in backbone.parameters())
    assert all(parameter.grad is not None for parameter in model.exits.parameters())


def test_curve_from_the_cli(tiny_teacher, glue_dir, tmp_path, capsys):
    output = tmp_path / "exits"
    train_early_exit(teacher=str(tiny_teacher), task="sst2", data_dir=str(glue_dir), output=str(output),
                     max_train_samples=32, epochs=1, batch_size=8, student_design="ramp")
    curve = tmp_path / "results" / "sst2" / "ramp-final" / "early_exit_curve.json"
    assert main(["early-exit", "evaluate", "--model", str(output), "--task", "sst2", "--data-dir", str(glue_dir),
                 "--max-eval-samples", "40", "--thresholds", "0,0.5,1", "--uncertainty", "entropy,topk",
                 "--latency-samples", "8", "--latency-batch-sizes", "1,4", "--output", str(curve)]) == 0
    report = json.loads(curve.read_text())
    zero = report["curves"]["entropy"][0]
    assert zero["threshold"] == 0 and zero["mean_exit_layer"] == 4 and zero["flops_speedup"] < 1  # heads cost a bit
    assert zero["metrics"] == report["full_model"]["metrics"]
    for measure in ("entropy", "topk"):
        assert report["curves"][measure][-1]["mean_exit_layer"] <= 4
        for point in report["curves"][measure]:
            assert sum(point["exit_counts"]) == 40
            assert point["timed_exit_agreement"] == {"1": 1.0, "4": 1.0}
    # binary task, K = C = 2: top-K and entropy exit at the same layers
    counts = {measure: [point["exit_counts"] for point in report["curves"][measure]] for measure in ("topk", "entropy")}
    assert counts["topk"] == counts["entropy"]
    assert curve.with_suffix(".png").is_file()
    assert "curve written to" in capsys.readouterr().out
    # the results summary reads the curve back
    assert summary_main([str(tmp_path / "results")]) == 0
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    entry = summary["tasks"]["sst2"]["ramp-final"]
    assert entry["full"] == report["full_model"]["metrics"]["accuracy"]
    assert [p["threshold"] for p in entry["measures"]["topk"]["points"]] == [0, 0.5, 1]
    assert "| ramp | final |" in (tmp_path / "results" / "summary.md").read_text()
    assert (tmp_path / "results" / "sst2_curves.png").is_file()


# ----- bad input
@pytest.mark.parametrize("arguments, message", [
    (["--thresholds", "0,1.5"], "threshold 1.5 is outside [0, 1]"),
    (["--uncertainty", "topk", "--top-k", "3"], "--top-k 3 must lie between 2 and the number of classes (2)"),
    (["--uncertainty", "margin"], "unknown uncertainty 'margin'"),
])
def test_bad_curve_options(capsys, tiny_teacher, glue_dir, tmp_path, arguments, message):
    model = EarlyExitModel(BertForSequenceClassification.from_pretrained(tiny_teacher), "ramp")
    model.save_pretrained(tmp_path / "m", AutoTokenizer.from_pretrained(tiny_teacher))
    code, err = run_cli(capsys, "early-exit", "evaluate", "--model", str(tmp_path / "m"), "--task", "sst2",
                        "--data-dir", str(glue_dir), *arguments)
    assert_one_line_error(code, err, message)


def test_regression_task_is_refused(capsys, glue_dir, tmp_path):
    path = tmp_path / "regressor"
    config = BertConfig(vocab_size=30522, num_hidden_layers=2, num_labels=1, problem_type="regression", **TINY_SIZES)
    BertForSequenceClassification(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(path)
    code, err = run_cli(capsys, "early-exit", "train", "--teacher", str(path), "--task", "stsb", "--data-dir",
                        str(glue_dir), "--output", str(tmp_path / "out"))
    assert_one_line_error(code, err, "regression task: early exit by uncertainty needs classification")


def test_model_without_classification_head_is_refused(capsys, tiny_bert, glue_dir, tmp_path):
    code, err = run_cli(capsys, "early-exit", "train", "--teacher", str(tiny_bert), "--task", "sst2", "--data-dir",
                        str(glue_dir), "--output", str(tmp_path / "out"))
    assert_one_line_error(code, err, "has no sequence-classification head")


def test_family_without_own_layer_weights_is_refused():
    config = AlbertConfig(vocab_size=100, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, num_labels=2)
    with pytest.raises(BertEmdError, match="ALBERT shares one set of layer weights"):
        EarlyExitModel(AlbertForSequenceClassification(config))


def test_not_an_early_exit_model(capsys, tiny_teacher, glue_dir):
    code, err = run_cli(capsys, "early-exit", "evaluate", "--model", str(tiny_teacher), "--task", "sst2", "--data-dir",
                        str(glue_dir))
    assert_one_line_error(code, err, "not an early-exit model")
