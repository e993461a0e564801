"""Fine-tune -> evaluate -> predict round trips with tiny models, reload without bert_emd, and resume."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

import bert_emd
from bert_emd.cli import main
from bert_emd.data import DataOptions, get_task, load_split, tokenize
from bert_emd.evaluation import predict_logits
from tests.conftest import reload_without_bert_emd

QUICK = dict(epochs=1, batch_size=16, eval_batch_size=32, learning_rate=1e-3, logging_steps=5)

@pytest.fixture(scope="module")
def sst2_model(tiny_bert, glue_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("sst2_model")
    results = bert_emd.finetune(model=str(tiny_bert), task="sst2", data_dir=str(glue_dir), output=str(output),
                                max_train_samples=96, max_eval_samples=40, **QUICK)
    return output, results


def test_finetune_writes_model_and_records(sst2_model):
    output, results = sst2_model
    for name in ("config.json", "model.safetensors", "tokenizer.json", "eval_results.json", "run_config.json"):
        assert (output / name).is_file(), name
    assert not list(output.glob("checkpoint-*"))
    saved = json.loads((output / "eval_results.json").read_text())
    assert saved["splits"]["dev"]["num_examples"] == 40
    assert 0.0 <= saved["splits"]["dev"]["metrics"]["accuracy"] <= 1.0
    assert saved["train"]["steps"] == 6  # 96 examples / batch 16, one epoch
    record = json.loads((output / "run_config.json").read_text())
    assert record["seed"] == 42 and record["config"]["task"] == "sst2"
    assert record["versions"]["transformers"] and record["versions"]["torch"]
    assert record["torch_threads"] == torch.get_num_threads()
    assert record["accelerator"] == (torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu")
    assert list((output / "runs").rglob("events.out.tfevents*")), "TensorBoard logs missing"


def test_saved_model_reloads_without_bert_emd(sst2_model, glue_dir):
    output, _ = sst2_model
    task = get_task("sst2")
    raw = load_split(task, DataOptions(task="sst2", data_dir=str(glue_dir), max_eval_samples=6), "dev")
    reloaded = reload_without_bert_emd(output, [list(raw["text_a"])])
    assert reloaded["labels"] == {"0": "0", "1": "1"}
    model = bert_emd.models.load_trained_classifier(str(output), task)
    tokenizer = bert_emd.models.load_tokenizer(str(output))
    ours = predict_logits(model, tokenizer, tokenize(raw, tokenizer, 128))
    np.testing.assert_allclose(np.array(reloaded["logits"]), ours, atol=1e-5)


def test_evaluate_against_itself_and_predict(sst2_model, glue_dir, tmp_path, capsys):
    output, results = sst2_model
    report = tmp_path / "report.json"
    code = main(["evaluate", "--model", str(output), "--task", "SST-2", "--data-dir", str(glue_dir),
                 "--max-eval-samples", "40", "--teacher", str(output), "--output", str(report)])
    assert code == 0
    saved = json.loads(report.read_text())["splits"]["dev"]
    assert saved["metrics"] == pytest.approx(results["splits"]["dev"]["metrics"])
    assert saved["teacher_metrics"] == pytest.approx(saved["metrics"])
    assert saved["loyalty"] == pytest.approx({"label_loyalty": 1.0, "probability_loyalty": 1.0}, abs=1e-6)
    assert "accuracy=" in capsys.readouterr().out

    code = main(["predict", "--model", str(output), "--task", "sst2", "--data-dir", str(glue_dir),
                 "--max-eval-samples", "25", "--output", str(tmp_path / "submission")])
    assert code == 0
    with open(tmp_path / "submission" / "SST-2.tsv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    test_ids = [line.split("\t")[0] for line in (glue_dir / "SST-2" / "test.tsv").read_text().splitlines()[1:26]]
    assert rows[0] == ["index", "prediction"]
    assert [row[0] for row in rows[1:]] == test_ids
    assert {row[1] for row in rows[1:]} <= {"0", "1"}


def test_roberta_regression_round_trip(tiny_roberta, glue_dir, tmp_path):
    output = tmp_path / "stsb"
    results = bert_emd.finetune(model=str(tiny_roberta), task="stsb", data_dir=str(glue_dir), output=str(output),
                                max_train_samples=64, max_eval_samples=30, **QUICK)
    metrics = results["splits"]["dev"]["metrics"]
    assert set(metrics) == {"pearson", "spearman"}
    reloaded = reload_without_bert_emd(output, [["A man plays."], ["A person is playing."]])
    assert np.array(reloaded["logits"]).shape == (1, 1)
    evaluation = bert_emd.evaluate(model=str(output), task="stsb", data_dir=str(glue_dir), max_eval_samples=30)
    # same model and examples; on a GPU the two passes batch differently and Pearson of this near-constant
    # untrained regressor moved by 1.5e-5 (seen on an H100), so compare to 1e-4, not to float precision
    assert evaluation["splits"]["dev"]["metrics"] == pytest.approx(metrics, abs=1e-4)


def test_own_files_finetune_and_evaluate(tiny_bert, tmp_path):
    rows = [("a fine and good film", "pos"), ("bad and dull", "neg")] * 16
    for name in ("train.jsonl", "valid.jsonl"):
        (tmp_path / name).write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    output = tmp_path / "own"
    bert_emd.finetune(model=str(tiny_bert), train_file=str(tmp_path / "train.jsonl"),
                      validation_file=str(tmp_path / "valid.jsonl"), output=str(output), **QUICK)
    # Evaluating needs no label list: the model's config carries it.
    result = bert_emd.evaluate(model=str(output), validation_file=str(tmp_path / "valid.jsonl"))
    assert set(result["splits"]["dev"]["metrics"]) == {"accuracy", "f1"}
    assert reload_without_bert_emd(output, [["bad"]])["labels"] == {"0": "neg", "1": "pos"}


class InterruptAfterFirstSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


def test_interrupted_finetune_resumes_to_the_same_model(tiny_bert, glue_dir, tmp_path, monkeypatch):
    settings = dict(model=str(tiny_bert), task="rte", data_dir=str(glue_dir), max_train_samples=48,
                    max_eval_samples=16, **{**QUICK, "epochs": 2})
    straight = tmp_path / "straight"
    bert_emd.finetune(output=str(straight), **settings)

    resumed = tmp_path / "resumed"
    from bert_emd.finetune import run as run_module
    from bert_emd.training import callbacks as real_callbacks

    monkeypatch.setattr(run_module, "callbacks", lambda config: real_callbacks(config) + [InterruptAfterFirstSave()])
    with pytest.raises(KeyboardInterrupt):
        bert_emd.finetune(output=str(resumed), **settings)
    assert [p.name for p in resumed.glob("checkpoint-*")] == ["checkpoint-3"]
    monkeypatch.undo()
    results = bert_emd.finetune(output=str(resumed), **settings)
    assert results["train"]["resumed_from"].endswith("checkpoint-3")
    assert results["train"]["steps"] == 6

    from safetensors.torch import load_file

    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4, msg=name)


def test_mnli_both_dev_sets_and_submission_files(tiny_bert, written_glue, tmp_path):
    output = tmp_path / "mnli"
    results = bert_emd.finetune(model=str(tiny_bert), task="mnli", data_dir=str(written_glue), output=str(output),
                                **QUICK)
    assert set(results["splits"]) == {"dev_matched", "dev_mismatched"}
    assert reload_without_bert_emd(output, [["a"], ["b"]])["labels"] == {"0": "entailment", "1": "neutral",
                                                                         "2": "contradiction"}
    written = bert_emd.predict(model=str(output), task="mnli", data_dir=str(written_glue),
                               output=str(tmp_path / "submission"))
    assert [path.name for path in written] == ["MNLI-m.tsv", "MNLI-mm.tsv"]
    lines = written[0].read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 13
    assert {line.split("\t")[1] for line in lines[1:]} <= {"entailment", "neutral", "contradiction"}


def test_eval_steps_records_every_evaluation_and_keeps_the_best(tiny_bert, glue_dir, tmp_path):
    results = bert_emd.finetune(model=str(tiny_bert), task="mrpc", data_dir=str(glue_dir), output=str(tmp_path),
                                max_train_samples=48, max_eval_samples=40, eval_steps=2, **{**QUICK, "epochs": 1})
    evaluations = results["train"]["dev_per_epoch"]
    assert [entry["step"] for entry in evaluations] == [2, 3]  # every 2 steps, and the last (48 / 16 = 3) step
    best = max(evaluations, key=lambda entry: entry["f1"])
    assert results["splits"]["dev"]["metrics"]["f1"] == pytest.approx(best["f1"])


def test_each_epochs_dev_metrics_are_recorded_and_the_best_epoch_is_kept(tiny_bert, glue_dir, tmp_path):
    results = bert_emd.finetune(model=str(tiny_bert), task="mrpc", data_dir=str(glue_dir), output=str(tmp_path),
                                max_train_samples=48, max_eval_samples=40, **{**QUICK, "epochs": 3})
    epochs = results["train"]["dev_per_epoch"]
    assert [entry["epoch"] for entry in epochs] == pytest.approx([1.0, 2.0, 3.0])
    assert all({"f1", "accuracy", "loss"} <= set(entry) for entry in epochs)
    best = max(epochs, key=lambda entry: entry["f1"])  # the Trainer keeps the best checkpoint by the main metric
    assert results["splits"]["dev"]["metrics"]["f1"] == pytest.approx(best["f1"])
    assert results["splits"]["dev"]["metrics"]["accuracy"] == pytest.approx(best["accuracy"])


def test_any_trainer_argument_can_be_reached(tiny_bert, glue_dir, tmp_path):
    from bert_emd.finetune import FinetuneConfig
    from bert_emd.options import resolve_config
    from bert_emd.training import training_arguments

    config = resolve_config(FinetuneConfig, None, dict(output=str(tmp_path / "x"), report_to="none",
                                                       trainer_arg=["max_grad_norm=0.5", "optim=adafactor",
                                                                    "dataloader_drop_last=true"]))
    arguments = training_arguments(config, None)
    assert arguments.max_grad_norm == 0.5 and arguments.optim == "adafactor" and arguments.dataloader_drop_last
    assert arguments.report_to == []
    output = tmp_path / "run"
    bert_emd.finetune(model=str(tiny_bert), task="rte", data_dir=str(glue_dir), max_train_samples=16,
                      max_eval_samples=8, epochs=1, batch_size=8, output=str(output), report_to="none",
                      trainer_arg=["max_grad_norm=0.5"])
    assert not (output / "runs").exists()  # no TensorBoard logs with --report-to none
    record = json.loads((output / "run_config.json").read_text())
    assert record["config"]["trainer_arg"] == ["max_grad_norm=0.5"]


def test_a_model_that_answers_one_class_is_flagged(tiny_teacher, glue_dir, tmp_path, capsys):
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_teacher)
    with torch.no_grad():  # the head ignores its input: class 1 for every example
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 4.0]))
    constant = tmp_path / "constant"
    model.save_pretrained(constant)
    shutil.copytree(tiny_teacher, constant, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.safetensors",
                                                                                            "config.json"))
    report = tmp_path / "report.json"
    code = main(["evaluate", "--model", str(constant), "--task", "sst2", "--data-dir", str(glue_dir),
                 "--max-eval-samples", "40", "--teacher", str(tiny_teacher), "--output", str(report)])
    assert code == 0
    dev = json.loads(report.read_text())["splits"]["dev"]
    labels = [int(line.split("\t")[1]) for line in (glue_dir / "SST-2" / "dev.tsv").read_text().splitlines()[1:41]]
    assert dev["constant_prediction"] == {"label": 1}
    assert dev["metrics"]["accuracy"] == pytest.approx(sum(labels) / len(labels))
    assert "warning: the model predicts class '1' for every example" in capsys.readouterr().out
