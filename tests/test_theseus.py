"""BERT-of-Theseus: gates per module and batch, the replacing-rate schedules, what trains, the forward pass at
p = 0 and p = 1 against the teacher's and the successor's own, the command on every family, resume, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import bert_emd
from bert_emd.distill.student import build_student
from bert_emd.errors import BertEmdError
from bert_emd.theseus.model import TheseusModel
from bert_emd.theseus.run import successor_init
from bert_emd.theseus.schedule import ReplacingSchedule
from tests.conftest import FAMILIES, reload_without_bert_emd
from tests.test_bad_input import assert_one_line_error, run_cli

QUICK = dict(task="sst2", max_train_samples=32, max_eval_samples=16, epochs=2, batch_size=8, eval_batch_size=16,
             learning_rate=1e-3)
TEXTS = [["a fine and moving film", "dull"], ["it was", "a story told too slowly to care about"]]


def theseus_model(teacher_dir, layers=2, rate=0.5, seed=0, **schedule):
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir).eval()
    successor = build_student(teacher, successor_init("first", layers), layers,
                              attn_implementation=teacher.config._attn_implementation)
    return TheseusModel(teacher, successor, ReplacingSchedule("constant", rate, **schedule), seed)


def no_dropout(module: nn.Module) -> None:
    for child in module.modules():
        if isinstance(child, nn.Dropout):
            child.p = 0.0


def test_the_schedules():
    constant = ReplacingSchedule.from_options("constant", 0.5, 100, 0.3, None, None)
    assert [constant.rate_at(step) for step in (0, 99, 100, 500)] == [0.5, 0.5, 1.0, 1.0]
    assert constant.successor_alone_from() == 100
    linear = ReplacingSchedule.from_options("linear", 0.5, None, 0.3, None, 1000)
    assert linear.slope == pytest.approx(0.7 / 1000)
    assert [linear.rate_at(step) for step in (0, 500, 1000, 2000)] == pytest.approx([0.3, 0.65, 1.0, 1.0])
    assert linear.successor_alone_from() == 1000
    sloped = ReplacingSchedule.from_options("linear", 0.5, None, 0.1, 0.0009, None)
    assert sloped.rate_at(500) == pytest.approx(0.55) and sloped.successor_alone_from() == 1000
    shared = ReplacingSchedule.from_options("linear", 0.5, None, 0.3, None, None, share_to_one=0.793, total_steps=1261)
    assert shared.successor_alone_from() == round(0.793 * 1261) == 1000  # the recipe table's chosen S
    with pytest.raises(BertEmdError, match="one of --replacing-rate-slope K, --replacing-steps-to-one S and"):
        ReplacingSchedule.from_options("linear", 0.5, None, 0.3, None, None)
    with pytest.raises(BertEmdError, match="one of"):
        ReplacingSchedule.from_options("linear", 0.5, None, 0.3, 0.001, 100)
    with pytest.raises(BertEmdError, match="one of"):
        ReplacingSchedule.from_options("linear", 0.5, None, 0.3, None, 100, share_to_one=0.5, total_steps=1000)


def test_each_module_has_its_own_gate_and_replacement_share_matches_p(tiny_teacher):
    model = theseus_model(tiny_teacher, layers=2, rate=0.3, seed=7)  # 2 modules of 2 layers each
    draws = []
    for step in range(1500):
        model.set_step(step)
        draws.append(model.gates())
    gates = torch.stack(draws).float()
    assert torch.allclose(gates.mean(0), torch.full((2,), 0.3), atol=0.04)  # each module replaced with share p
    mixed = (gates.sum(1) == 1).float().mean()
    assert abs(mixed - 2 * 0.3 * 0.7) < 0.05  # independent gates: one of the two replaced in 2 p (1 - p) of batches
    # the same seed and step give the same pattern (a resumed run draws what the first one did), another seed not
    again = theseus_model(tiny_teacher, layers=2, rate=0.3, seed=7)
    other = theseus_model(tiny_teacher, layers=2, rate=0.3, seed=8)
    differ = 0
    for step in range(50):
        again.set_step(step)
        other.set_step(step)
        assert torch.equal(again.gates(), draws[step])
        differ += not torch.equal(other.gates(), draws[step])
    assert differ > 10


def test_p_zero_is_the_teacher_and_p_one_is_the_successor(tiny_teacher):
    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    inputs = tokenizer(*TEXTS, padding=True, return_tensors="pt")
    model = theseus_model(tiny_teacher, rate=0.0)
    model.train()
    no_dropout(model)
    with torch.no_grad():
        teacher_logits = model.predecessor(**inputs).logits
        mixed = model(**inputs)["logits"]  # every module kept: teacher layers inside the successor's frame
    torch.testing.assert_close(mixed, teacher_logits, rtol=1e-5, atol=1e-6)
    model.schedule = ReplacingSchedule("constant", 1.0)
    model.set_step(0)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs)["logits"], model.successor(**inputs).logits, rtol=0, atol=0)


def test_only_successor_layers_receive_gradients(tiny_teacher):
    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    inputs = tokenizer(*TEXTS, padding=True, return_tensors="pt")
    model = theseus_model(tiny_teacher, rate=0.5, seed=3)
    model.train()
    for step in range(4):  # over a few batches every successor layer is used at least once
        model.set_step(step)
        model(**inputs, labels=torch.tensor([1, 0]))["loss"].backward()
    model.drop_frozen_gradients()
    assert all(parameter.grad is None for parameter in model.predecessor.parameters())
    layers = dict(model.successor.bert.encoder.layer.named_parameters())
    assert all(parameter.grad is not None for parameter in layers.values())
    others = [name for name, parameter in model.successor.named_parameters()
              if "encoder.layer" not in name and parameter.grad is not None]
    assert others == []  # embeddings, pooler and classifier stay the teacher's


def test_the_command_trains_a_reloadable_successor(tiny_teacher, glue_dir, tmp_path):
    output = tmp_path / "successor"
    results = bert_emd.theseus(teacher=str(tiny_teacher), data_dir=str(glue_dir), successor_layers=2,
                               output=str(output), replacing_steps=4, **QUICK)
    assert results["modules"] == [[1, 2], [3, 4]] and results["successor_init"] == "teacher:1,2"
    assert results["replacing_rate_per_step"] == [0.5] * 4 + [1.0] * 4
    assert results["splits"]["dev"]["loyalty"] and results["train"]["dev_evaluations"]
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher)
    successor = AutoModelForSequenceClassification.from_pretrained(output).eval()
    assert successor.config.num_hidden_layers == 2
    # frozen: embeddings and head equal the teacher's; trained: the layers moved from their copied start
    torch.testing.assert_close(successor.bert.embeddings.word_embeddings.weight,
                               teacher.bert.embeddings.word_embeddings.weight)
    torch.testing.assert_close(successor.classifier.weight, teacher.classifier.weight)
    assert not torch.allclose(successor.bert.encoder.layer[1].output.dense.weight,
                              teacher.bert.encoder.layer[1].output.dense.weight)
    reloaded = reload_without_bert_emd(output, TEXTS)
    tokenizer = AutoTokenizer.from_pretrained(output)
    with torch.no_grad():
        logits = successor(**tokenizer(*TEXTS, padding=True, return_tensors="pt")).logits
    torch.testing.assert_close(torch.tensor(reloaded["logits"]), logits, rtol=1e-4, atol=1e-5)
    record = json.loads((output / "run_config.json").read_text())
    assert record["command"] == "theseus" and not list(output.glob("checkpoint-*"))


def test_a_regression_task_trains_by_mean_squared_error_and_is_scored_by_correlation(tiny_teacher, glue_dir, tmp_path):
    """STS-B: the successor keeps the teacher's one output, its loss is the mean squared error against the score,
    and its dev Pearson / Spearman are those of its own predictions (checked with scipy)."""
    from scipy.stats import pearsonr, spearmanr
    from transformers import BertConfig, BertForSequenceClassification

    from bert_emd.data.loading import DataOptions, load_split, resolve_task
    from tests.conftest import TINY_SIZES

    teacher_dir = tmp_path / "regressor"
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(vocab_size=30522, num_hidden_layers=4, num_labels=1,
                                             problem_type="regression", **TINY_SIZES)).save_pretrained(teacher_dir)
    AutoTokenizer.from_pretrained(tiny_teacher).save_pretrained(teacher_dir)
    model = theseus_model(teacher_dir, rate=1.0).train()
    no_dropout(model)
    batch = AutoTokenizer.from_pretrained(teacher_dir)(*TEXTS, padding=True, return_tensors="pt")
    scores = torch.tensor([4.2, 0.6])
    out = model(**batch, labels=scores)
    torch.testing.assert_close(out["loss"], ((out["logits"].view(-1) - scores) ** 2).mean())

    output = tmp_path / "successor"
    results = bert_emd.theseus(teacher=str(teacher_dir), successor_layers=2, output=str(output), replacing_steps=4,
                               **{**QUICK, "task": "stsb"}, data_dir=str(glue_dir))
    successor = AutoModelForSequenceClassification.from_pretrained(output).eval()
    assert successor.config.num_labels == 1 and successor.config.num_hidden_layers == 2
    options = DataOptions(task="stsb", data_dir=str(glue_dir), max_eval_samples=QUICK["max_eval_samples"])
    dev = load_split(resolve_task(options), options, "dev")[:]
    tokenizer = AutoTokenizer.from_pretrained(output)
    with torch.no_grad():
        predicted = successor(**tokenizer(dev["text_a"], dev["text_b"], padding=True, truncation=True, max_length=128,
                                          return_tensors="pt")).logits.view(-1).numpy()
    metrics = results["splits"]["dev"]["metrics"]
    assert metrics["pearson"] == pytest.approx(pearsonr(predicted, dev["label"])[0], abs=1e-4)
    assert metrics["spearman"] == pytest.approx(spearmanr(predicted, dev["label"])[0], abs=1e-4)


def test_unfreeze_trains_embeddings_after_replacing(tiny_teacher, glue_dir, tmp_path):
    output = tmp_path / "unfrozen"
    train = tmp_path / "train.csv"  # no dev set: the last step's weights are kept, not the best evaluation's
    train.write_text("text,label\n" + "".join(f"a fine film {i},1\na dull film {i},0\n" for i in range(16)))
    bert_emd.theseus(teacher=str(tiny_teacher), train_file=str(train), successor_layers=2, output=str(output),
                     replacing_steps=4, unfreeze=True, epochs=2, batch_size=8, learning_rate=1e-3)
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher)
    successor = AutoModelForSequenceClassification.from_pretrained(output)
    assert not torch.allclose(successor.classifier.weight, teacher.classifier.weight)


def test_a_linear_schedule_and_resume(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    from transformers import TrainerCallback

    settings = dict(teacher=str(tiny_teacher), data_dir=str(glue_dir), successor_layers=2,
                    replacing_rate_schedule="linear", replacing_rate_start=0.2, replacing_steps_to_one=4,
                    save_steps=3, **QUICK)
    straight = bert_emd.theseus(output=str(tmp_path / "straight"), **settings)
    assert straight["replacing_rate_per_step"] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0])
    # p = 1 after half of the 4 planned steps of one epoch, given as a share
    shared = bert_emd.theseus(output=str(tmp_path / "shared"), **{**settings, "replacing_steps_to_one": None,
                                                                   "replacing_share_to_one": 0.5, "epochs": 1})
    assert shared["schedule"]["planned_steps"] == 4 and shared["schedule"]["successor_alone_from_step"] == 2
    assert shared["replacing_rate_per_step"] == pytest.approx([0.2, 0.6, 1.0, 1.0])

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt

    from bert_emd.theseus import run as run_module
    from bert_emd.training import callbacks as real_callbacks

    monkeypatch.setattr(run_module, "callbacks", lambda config, evaluate=True: real_callbacks(config, evaluate)
                        + [Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        bert_emd.theseus(output=str(tmp_path / "resumed"), **settings)
    monkeypatch.undo()
    from safetensors import safe_open

    with safe_open(tmp_path / "resumed" / "checkpoint-3" / "model.safetensors", "pt") as weights:
        assert not [key for key in weights.keys() if key.startswith("predecessor.")]  # no teacher in checkpoints
    resumed = bert_emd.theseus(output=str(tmp_path / "resumed"), **settings)
    assert resumed["train"]["resumed_from"].endswith("checkpoint-3")
    from safetensors.torch import load_file

    first, second = load_file(tmp_path / "straight" / "model.safetensors"), load_file(
        tmp_path / "resumed" / "model.safetensors")
    for name in first:
        torch.testing.assert_close(second[name], first[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", FAMILIES)
def test_every_family(kind, tiny_families, glue_dir, tmp_path):
    output = tmp_path / kind
    results = bert_emd.theseus(teacher=str(tiny_families[kind]), data_dir=str(glue_dir), successor_layers=2,
                               output=str(output), replacing_steps=2, **{**QUICK, "epochs": 1})
    assert results["train"]["steps"] == 4
    assert AutoModelForSequenceClassification.from_pretrained(output).config.num_hidden_layers == 2
    # with no module replaced the Theseus forward pass is the teacher's own, for this family too
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_families[kind]).eval()
    successor = build_student(teacher, "teacher:1,2", 2, attn_implementation=teacher.config._attn_implementation)
    model = TheseusModel(teacher, successor, ReplacingSchedule("constant", 0.0), 0).train()
    no_dropout(model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_families[kind])
    inputs = tokenizer(*TEXTS, padding=True, return_tensors="pt")
    inputs.pop("token_type_ids", None) if kind in ("mpnet", "distilbert") else None
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs)["logits"], teacher(**inputs).logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("extra, message", [
    (["--successor-layers", "3"], "--successor-layers 3 does not divide the teacher's 4 layers into equal modules; "
                                  "choose one of 1, 2"),
    (["--successor-layers", "4"], "fewer layers than the teacher"),
    (["--successor-layers", "2", "--replacing-rate", "1.5"], "--replacing-rate must be >= 0 and <= 1 (got 1.5)"),
    (["--successor-layers", "2", "--replacing-rate-start", "-0.1"], "--replacing-rate-start must be >= 0"),
    (["--successor-layers", "2", "--replacing-rate-schedule", "linear", "--replacing-rate-slope", "-0.01"],
     "--replacing-rate-slope must be > 0"),
    (["--successor-layers", "2", "--replacing-rate-schedule", "linear", "--replacing-steps-to-one", "0"],
     "--replacing-steps-to-one must be >= 1"),
    (["--successor-layers", "2", "--replacing-rate-schedule", "linear"], "takes one of --replacing-rate-slope"),
    (["--successor-layers", "2", "--replacing-steps", "0"], "--replacing-steps must be >= 1"),
    (["--successor-layers", "2", "--replacing-rate-schedule", "linear", "--replacing-share-to-one", "0"],
     "--replacing-share-to-one must be > 0"),
    (["--successor-layers", "2", "--replacing-rate-schedule", "linear", "--replacing-share-to-one", "1.5"],
     "--replacing-share-to-one must be > 0 and <= 1"),
    (["--successor-layers", "2", "--replacing-rate-schedule", "linear", "--replacing-share-to-one", "0.5",
      "--replacing-steps-to-one", "4"], "takes one of --replacing-rate-slope K, --replacing-steps-to-one S and"),
    ([], "--successor-layers is required"),
])
def test_bad_theseus_options(capsys, tiny_teacher, glue_dir, tmp_path, extra, message):
    output = tmp_path / "out"
    code, err = run_cli(capsys, "theseus", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir",
                        str(glue_dir), "--output", str(output), *extra)
    assert_one_line_error(code, err, message)
    assert not output.exists()


def test_albert_is_refused(capsys, tiny_families, glue_dir, tmp_path):
    code, err = run_cli(capsys, "theseus", "--teacher", str(tiny_families["albert"]), "--task", "sst2", "--data-dir",
                        str(glue_dir), "--successor-layers", "2", "--output", str(tmp_path / "out"))
    assert_one_line_error(code, err, "ALBERT shares one set of layer weights")


def test_two_process_torchrun_ends_with_identical_successors(tiny_teacher, glue_dir, tmp_path):
    """DDP over gloo: both ranks draw the same gates, so their successors stay identical; the data is split."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "scripts" / "ddp_theseus.py"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(script),
                             str(tiny_teacher), str(glue_dir), str(tmp_path)], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = json.loads((tmp_path / "rank0_successor.json").read_text())
    rank1 = json.loads((tmp_path / "rank1_successor.json").read_text())
    assert rank0 == rank1
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert results["train"]["steps"] == 3  # 48 examples / (2 processes x batch 8)
