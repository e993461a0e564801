"""End-to-end distillation with tiny models: every mapping, both schedules, resume, DDP, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, TrainerCallback

import bert_emd
from bert_emd.cli import main
from bert_emd.distill.emd import cost_attention_update, fixed_flow
from bert_emd.errors import BertEmdError
from tests.conftest import TINY_SIZES, reload_without_bert_emd
from tests.test_bad_input import assert_one_line_error, run_cli

QUICK = dict(task="sst2", max_train_samples=32, max_eval_samples=16, epochs=1, batch_size=8, eval_batch_size=16,
             logging_steps=1, history_every=1, student_layers=2)


def check_outputs(output: Path, mapping: str, student_layers: int = 2, teacher_layers: int = 4):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "eval_results.json", "distill_state.json",
                 "run_config.json"):
        assert (output / name).is_file(), name
    assert not list(output.glob("checkpoint-*"))
    reloaded = reload_without_bert_emd(output, [["a fine film", "a dull one"]])
    assert np.array(reloaded["logits"]).shape == (2, 2)
    config = json.loads((output / "config.json").read_text())
    assert config["num_hidden_layers"] == student_layers
    results = json.loads((output / "eval_results.json").read_text())
    dev = results["splits"]["dev"]
    # constant_prediction too where the tiny student answers one class (bert_emd.evaluation.metrics)
    assert set(dev) - {"constant_prediction"} == {"num_examples", "metrics", "teacher_metrics", "loyalty"}
    assert results["parameters"]["student"] < results["parameters"]["teacher"]
    state = json.loads((output / "distill_state.json").read_text())
    assert state["mapping"] == mapping
    return state


@pytest.mark.parametrize("mapping", ["emd", "skip", "last", "none"])
def test_joint_distill_every_mapping(tiny_teacher, glue_dir, tmp_path, mapping):
    output = tmp_path / mapping
    bert_emd.distill(teacher=str(tiny_teacher), data_dir=str(glue_dir), output=str(output), mapping=mapping, **QUICK)
    state = check_outputs(output, mapping)
    if mapping == "none":
        assert "attention" not in state and "hidden" not in state
        return
    for term in ("attention", "hidden"):
        step = {key: np.array(value) for key, value in state[term]["last_step"].items()}
        assert step["cost"].shape == step["flow"].shape == (2, 4)
        if mapping == "emd":
            np.testing.assert_allclose(step["flow"].sum(1), step["student_weights_before"], atol=1e-9)
            np.testing.assert_allclose(step["flow"].sum(0), step["teacher_weights_before"], atol=1e-9)
            after = cost_attention_update(step["flow"], step["cost"], step["student_weights_before"],
                                          step["teacher_weights_before"], "softmax", 1.0)
            np.testing.assert_allclose(step["student_weights_after"], after[0], rtol=1e-6)
            np.testing.assert_allclose(step["teacher_weights_after"], after[1], rtol=1e-6)
        else:
            np.testing.assert_array_equal(step["flow"], fixed_flow(mapping, 2, 4))
            np.testing.assert_allclose(state[term]["student_weights"], [0.5, 0.5])
    if mapping == "emd":  # shared weights by default: the two terms end with one pair
        assert state["attention"]["student_weights"] == state["hidden"]["student_weights"]
        assert len(state["history"]) == 4 and state["history"][-1]["step"] == 4
        # the weights after the final step; the saved (best-epoch) model's: here the one epoch is both
        assert state["attention"]["student_weights"] == state["history"][-1]["attention"]["student_weights"]
        np.testing.assert_allclose(state["attention"]["saved_model_weights"]["student_weights"],
                                   state["attention"]["student_weights"], rtol=1e-12)
        tags = tensorboard_tags(output)
        for tag in ("train/loss_prediction", "train/loss_hidden_emd", "train/loss_attention_emd",
                    "train/loss_embedding", "train/hidden_student_weight_2", "train/attention_teacher_weight_4"):
            assert tag in tags, sorted(tags)


def tensorboard_tags(output: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in (output / "runs").rglob("events.out.tfevents*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


def test_student_init_from_a_pretrained_small_model(tiny_teacher, tmp_path):
    from bert_emd.distill.student import build_student

    small = tmp_path / "general_small"
    torch.manual_seed(3)
    general = BertForSequenceClassification(BertConfig(vocab_size=30522, num_hidden_layers=2, **TINY_SIZES))
    general.save_pretrained(small)
    teacher = BertForSequenceClassification.from_pretrained(tiny_teacher)
    student = build_student(teacher, str(small), 2)
    torch.testing.assert_close(student.bert.encoder.layer[1].output.dense.weight,
                               general.bert.encoder.layer[1].output.dense.weight)
    assert student.config.id2label == teacher.config.id2label


def test_two_stage_with_narrower_student_and_probs(tiny_teacher, glue_dir, tmp_path):
    output = tmp_path / "two_stage"
    results = bert_emd.distill(teacher=str(tiny_teacher), data_dir=str(glue_dir), output=str(output),
                               schedule="two-stage", intermediate_epochs=1, prediction_epochs=1, student_hidden=16,
                               student_intermediate=32, attention="probs", separate_weights=True,
                               weight_norm="sum", **QUICK)
    assert set(results["train"]) == {"intermediate", "prediction"}
    state = check_outputs(output, "emd")
    stages = {entry["stage"] for entry in state["history"]}
    assert stages == {"intermediate", "prediction"}
    # The projection is training-only: the saved student has the student width and no projection weights.
    from safetensors.torch import load_file

    saved = load_file(output / "model.safetensors")
    assert not any("projection" in name for name in saved)
    assert saved["bert.embeddings.word_embeddings.weight"].shape[1] == 16
    assert (output / "intermediate" / "stage_done.json").is_file()


def test_student_init_from_teacher_copies_evenly_spaced_layers(tiny_teacher):
    from bert_emd.distill.student import build_student, evenly_spaced_layers

    teacher = BertForSequenceClassification.from_pretrained(tiny_teacher)
    student = build_student(teacher, "teacher", 2)
    assert evenly_spaced_layers(2, 4) == [0, 3] and evenly_spaced_layers(4, 12) == [0, 4, 7, 11]
    for student_index, teacher_index in enumerate([0, 3]):
        torch.testing.assert_close(student.bert.encoder.layer[student_index].output.dense.weight,
                                   teacher.bert.encoder.layer[teacher_index].output.dense.weight)
    torch.testing.assert_close(student.classifier.weight, teacher.classifier.weight)
    torch.testing.assert_close(student.bert.embeddings.word_embeddings.weight,
                               teacher.bert.embeddings.word_embeddings.weight)


@pytest.mark.parametrize("mapping", ["emd", "skip"])
def test_beta_weighs_the_layer_terms_in_the_joint_loss_only(tiny_teacher, mapping):
    """joint: prediction + beta * layer terms; the two-stage layer stage: the layer terms unweighted (TinyBERT's
    layer stage, and general-distill's); the prediction stage: the prediction loss alone. Each loss is checked
    against its terms as the distiller logged them."""
    from bert_emd.distill.config import DistillConfig
    from bert_emd.distill.distiller import Distiller
    from bert_emd.distill.student import build_student

    teacher = BertForSequenceClassification.from_pretrained(tiny_teacher, attn_implementation="eager")
    torch.manual_seed(0)
    distiller = Distiller(teacher, build_student(teacher, "teacher", 2), DistillConfig(
        mapping=mapping, beta=0.01, theta=0.5, attention="probs"))
    distiller.train()
    torch.manual_seed(1)
    batch = {"input_ids": torch.randint(1000, 2000, (3, 7)), "attention_mask": torch.ones(3, 7, dtype=torch.long),
             "labels": torch.tensor([0, 1, 1])}
    losses = {}
    for stage in ("joint", "intermediate", "prediction"):
        distiller.set_stage(stage)
        torch.manual_seed(2)  # the same dropout in every stage
        loss = float(distiller(**batch)["loss"].detach())
        terms = {name: float(values[-1]) for name, values in distiller.running.items() if values}
        distiller.running.clear()
        losses[stage] = loss, terms
    loss, terms = losses["joint"]
    layer_total = 0.5 * (terms["attention_emd"] + terms["hidden_emd"]) + terms["embedding"]
    assert layer_total > 0
    assert loss == pytest.approx(terms["prediction"] + 0.01 * layer_total, rel=1e-5)
    loss, terms = losses["intermediate"]
    assert "prediction" not in terms
    assert loss == pytest.approx(0.5 * (terms["attention_emd"] + terms["hidden_emd"]) + terms["embedding"], rel=1e-5)
    # the layer terms of one size in both stages (EMD moves its layer weights a little after every step)
    assert loss == pytest.approx(layer_total, rel=1e-2)
    loss, terms = losses["prediction"]
    assert set(terms) == {"prediction"} and loss == pytest.approx(terms["prediction"], rel=1e-6)


def test_student_init_from_chosen_teacher_layers_and_bad_choices(tiny_teacher):
    from bert_emd.distill.student import build_student

    teacher = BertForSequenceClassification.from_pretrained(tiny_teacher)
    student = build_student(teacher, "teacher:2,3", 2)
    for student_index, teacher_index in enumerate([1, 2]):
        torch.testing.assert_close(student.bert.encoder.layer[student_index].attention.self.query.weight,
                                   teacher.bert.encoder.layer[teacher_index].attention.self.query.weight)
    assert not torch.equal(student.bert.encoder.layer[0].output.dense.weight,
                           teacher.bert.encoder.layer[0].output.dense.weight)
    for bad, message in [("teacher:1", "names 1 teacher layer"), ("teacher:0,2", "numbered 1..4"),
                         ("teacher:1,5", "numbered 1..4"), ("teacher:3,2", "increasing order"),
                         ("teacher:2,2", "increasing order"), ("teacher:a,b", "expected 1-based teacher layer")]:
        with pytest.raises(BertEmdError, match=message):
            build_student(teacher, bad, 2)


def test_student_init_copied_from_another_model_of_the_family(tiny_teacher, tiny_roberta, tmp_path):
    from transformers import BertModel

    from bert_emd.distill.student import build_student

    teacher = BertForSequenceClassification.from_pretrained(tiny_teacher)
    torch.manual_seed(5)  # stands for the pre-trained model the teacher was fine-tuned from
    source = BertModel(BertConfig(vocab_size=30522, num_hidden_layers=4, **TINY_SIZES))
    tiny_bert = tmp_path / "pretrained"
    source.save_pretrained(tiny_bert)
    for init, layers in ((f"copy:{tiny_bert}:2,4", [1, 3]), (f"copy:{tiny_bert}", [0, 3])):
        student = build_student(teacher, init, 2)
        for student_index, source_index in enumerate(layers):
            torch.testing.assert_close(student.bert.encoder.layer[student_index].output.dense.weight,
                                       source.encoder.layer[source_index].output.dense.weight)
        torch.testing.assert_close(student.bert.embeddings.word_embeddings.weight,
                                   source.embeddings.word_embeddings.weight)
        assert not torch.equal(student.bert.encoder.layer[0].attention.self.query.weight,
                               teacher.bert.encoder.layer[0].attention.self.query.weight)
        assert student.config.id2label == teacher.config.id2label and student.config.num_hidden_layers == 2
    for bad, message in [(f"copy:{tiny_bert}:1,5", "its layers are numbered 1..4"),
                         (f"copy:{tiny_bert}:1", "names 1 its layer"), (f"copy:{tiny_roberta}", "a roberta model"),
                         ("copy:", "expected copy:MODEL or copy:MODEL:L1"),
                         ("copy:/no/such/model", "model path does not exist")]:
        with pytest.raises(BertEmdError, match=message):
            build_student(teacher, bad, 2)
    with pytest.raises(BertEmdError, match="hidden and feed-forward sizes"):
        build_student(teacher, f"copy:{tiny_bert}", 2, hidden=16, intermediate=32, heads=2)


class InterruptAfterFirstSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


def interrupt_at_first_save_then_resume(monkeypatch, settings: dict, output: Path, checkpoints: list | None = None):
    """Run distill until its first checkpoint is written, stop it there, then run it again (it resumes)."""
    from bert_emd.distill import run as run_module
    from bert_emd.training import callbacks as real_callbacks

    monkeypatch.setattr(run_module, "callbacks",
                        lambda config, evaluate=True: real_callbacks(config, evaluate) + [InterruptAfterFirstSave()])
    with pytest.raises(KeyboardInterrupt):
        bert_emd.distill(output=str(output), **settings)
    if checkpoints is not None:
        checkpoints += sorted(path.name for path in output.glob("checkpoint-*"))
    monkeypatch.undo()
    return bert_emd.distill(output=str(output), **settings)


def assert_same_layer_weights(first: dict, second: dict) -> None:
    for term in ("attention", "hidden"):
        for side in ("student_weights", "teacher_weights"):
            np.testing.assert_allclose(first["layer_weights"][term][side], second["layer_weights"][term][side],
                                       rtol=1e-4)


def test_resume_restores_layer_weights(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    settings = dict(teacher=str(tiny_teacher), data_dir=str(glue_dir), **{**QUICK, "epochs": 2})
    straight = bert_emd.distill(output=str(tmp_path / "straight"), **settings)

    resumed = interrupt_at_first_save_then_resume(monkeypatch, settings, tmp_path / "resumed")
    assert resumed["train"]["joint"]["resumed_from"].endswith("checkpoint-4")
    assert_same_layer_weights(resumed, straight)
    history = json.loads((tmp_path / "resumed" / "distill_state.json").read_text())["history"]
    assert [entry["step"] for entry in history] == list(range(1, 9))


def test_two_process_torchrun_ends_with_identical_weights(tiny_teacher, glue_dir, tmp_path):
    script = Path(__file__).parent / "scripts" / "ddp_distill.py"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(script),
                             str(tiny_teacher), str(glue_dir), str(tmp_path)], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = json.loads((tmp_path / "rank0_weights.json").read_text())
    rank1 = json.loads((tmp_path / "rank1_weights.json").read_text())
    assert rank0 == rank1
    assert rank0["hidden"]["student_weights"] != [0.5, 0.5]  # they were really updated
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert results["train"]["joint"]["steps"] == 3  # 48 examples / (2 processes x batch 8): the data was split


def _distill_cli(capsys, teacher, glue_dir, tmp_path, *extra, task="sst2"):
    return run_cli(capsys, "distill", "--teacher", str(teacher), "--task", task, "--data-dir", str(glue_dir),
                   "--output", str(tmp_path / "out"), *extra)


def test_student_not_smaller(capsys, tiny_teacher, glue_dir, tmp_path):
    code, err = _distill_cli(capsys, tiny_teacher, glue_dir, tmp_path, "--student-layers", "4")
    assert_one_line_error(code, err, "fewer layers than the teacher", "4 >= 4")


def test_attention_with_other_head_count(capsys, tiny_teacher, glue_dir, tmp_path):
    code, err = _distill_cli(capsys, tiny_teacher, glue_dir, tmp_path, "--student-layers", "2", "--student-heads", "2")
    assert_one_line_error(code, err, "equal head counts", "--attention off")


def test_teacher_without_task_head(capsys, tiny_bert, glue_dir, tmp_path):
    code, err = _distill_cli(capsys, tiny_bert, glue_dir, tmp_path, "--student-layers", "2")
    assert_one_line_error(code, err, "teacher", "no sequence-classification head")


def test_student_of_another_family(capsys, tiny_teacher, tiny_roberta, glue_dir, tmp_path):
    code, err = _distill_cli(capsys, tiny_teacher, glue_dir, tmp_path, "--student-layers", "2",
                             "--student-init", str(tiny_roberta))
    assert_one_line_error(code, err, "is a roberta model but the teacher is bert")


def test_student_with_other_vocabulary(capsys, tiny_teacher, glue_dir, tmp_path):
    other = tmp_path / "small_vocab"
    BertForSequenceClassification(BertConfig(vocab_size=500, num_hidden_layers=2, **TINY_SIZES)).save_pretrained(other)
    code, err = _distill_cli(capsys, tiny_teacher, glue_dir, tmp_path, "--student-layers", "2",
                             "--student-init", str(other))
    assert_one_line_error(code, err, "vocabulary of 500 tokens", "30522")


def test_task_labels_differ_from_teacher(capsys, tiny_teacher, glue_dir, tmp_path):
    code, err = _distill_cli(capsys, tiny_teacher, glue_dir, tmp_path, "--student-layers", "2", task="rte")
    assert_one_line_error(code, err, "labels (0, 1)", "RTE has (entailment, not_entailment)")


def test_cli_distill_runs(capsys, tiny_teacher, glue_dir, tmp_path):
    code = main(["distill", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir", str(glue_dir),
                 "--output", str(tmp_path / "cli"), "--student-layers", "1", "--mapping", "skip", "--no-embedding",
                 "--attention", "off", "--max-train-samples", "16", "--max-eval-samples", "8", "--epochs", "1"])
    assert code == 0
    state = json.loads((tmp_path / "cli" / "distill_state.json").read_text())
    assert "attention" not in state and state["hidden"]["last_step"]["flow"] == [[0, 0, 0, 1.0]]


def test_factorised_and_map_attention_give_the_same_distances_on_a_model(tiny_teacher):
    from bert_emd.distill.attention import QUERY_KEY_ATTENTION, SCORES_ATTENTION
    from bert_emd.distill.distances import pairwise_mse, pairwise_score_mse

    torch.manual_seed(6)
    input_ids = torch.randint(1000, 5000, (3, 11))
    token_mask = torch.ones(3, 11, dtype=torch.long)
    token_mask[0, 7:] = 0
    token_mask[1, 9:] = 0

    def forward(implementation):
        model = BertForSequenceClassification.from_pretrained(tiny_teacher, attn_implementation=implementation).eval()
        return model(input_ids=input_ids, attention_mask=token_mask, output_attentions=True)

    maps, factorised = forward(SCORES_ATTENTION), forward(QUERY_KEY_ATTENTION)
    torch.testing.assert_close(factorised.logits, maps.logits, rtol=1e-5, atol=1e-6)  # SDPA computes the same model
    student, teacher = factorised.attentions[:2], factorised.attentions
    query, key, scaling = student[0]  # per layer: [batch, heads, length, head size] twice, and c
    assert query.shape == key.shape == (3, 4, 11, 8) and scaling == 8 ** -0.5
    for count_padding in (False, True):
        pair_mask = None if count_padding else (token_mask[:, None, :, None] * token_mask[:, None, None, :])
        expected = pairwise_mse(torch.stack(maps.attentions[:2]), torch.stack(maps.attentions), pair_mask)
        torch.testing.assert_close(pairwise_score_mse(student, teacher, token_mask, count_padding), expected,
                                   rtol=1e-4, atol=1e-6)


def test_factorised_distillation_follows_the_map_based_one(tiny_teacher, glue_dir, tmp_path):
    # Without attention dropout the two paths compute the same training run (SDPA and eager attention
    # draw their dropout masks differently), so flows, layer weights and student weights must agree.
    teacher = tmp_path / "teacher_no_attention_dropout"
    model = BertForSequenceClassification.from_pretrained(tiny_teacher, attention_probs_dropout_prob=0.0)
    model.save_pretrained(teacher)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_teacher).save_pretrained(teacher)
    states, students = {}, {}
    for distance in ("maps", "factorised"):
        output = tmp_path / distance
        bert_emd.distill(teacher=str(teacher), data_dir=str(glue_dir), output=str(output), attention_distance=distance,
                         **{**QUICK, "max_train_samples": 48})
        states[distance] = json.loads((output / "distill_state.json").read_text())
        students[distance] = BertForSequenceClassification.from_pretrained(output).state_dict()
        assert json.loads((output / "run_config.json").read_text())["config"]["attention_distance"] == distance
    history = {distance: state["history"] for distance, state in states.items()}
    assert len(history["maps"]) == len(history["factorised"]) == 6
    for maps_entry, factorised_entry in zip(history["maps"], history["factorised"]):
        assert maps_entry.keys() == factorised_entry.keys()
        assert (maps_entry["stage"], maps_entry["step"]) == (factorised_entry["stage"], factorised_entry["step"])
        for term in ("attention", "hidden"):
            for side in ("student_weights", "teacher_weights"):
                np.testing.assert_allclose(factorised_entry[term][side], maps_entry[term][side], rtol=1e-4, atol=1e-7)
    for field in ("cost", "flow", "student_weights_after", "teacher_weights_after"):
        np.testing.assert_allclose(states["factorised"]["attention"]["last_step"][field],
                                   states["maps"]["attention"]["last_step"][field], rtol=1e-4, atol=1e-7)
    for name, tensor in students["maps"].items():
        torch.testing.assert_close(students["factorised"][name], tensor, rtol=1e-4, atol=1e-5)


def test_attention_distance_choices_and_refusals(capsys, tiny_teacher, glue_dir, tmp_path):
    from transformers import DebertaV2Config, MPNetConfig

    from bert_emd.distill.attention import QUERY_KEY_ATTENTION, SCORES_ATTENTION, resolve_attention

    bert = BertConfig()
    assert resolve_attention("scores", "auto", True, bert) == (QUERY_KEY_ATTENTION, "factorised")
    assert resolve_attention("scores", "maps", True, bert) == (SCORES_ATTENTION, "maps")
    assert resolve_attention("probs", "auto", True, bert) == ("eager", "maps")
    assert resolve_attention("scores", "auto", False, bert) == (None, "none")
    # maps: eager attention for every mapping, as all runs before the factorised path (records reproduce)
    assert resolve_attention("scores", "maps", False, bert) == (SCORES_ATTENTION, "none")
    assert resolve_attention("off", "maps", True, bert) == ("eager", "none")
    assert resolve_attention("off", "factorised", True, bert) == (None, "none")
    for family in (MPNetConfig(), DebertaV2Config()):  # scores from bert_emd.families.scores, on the map path
        assert resolve_attention("scores", "auto", True, family) == ("eager", "maps")
        with pytest.raises(BertEmdError, match="--attention-distance maps"):
            resolve_attention("scores", "factorised", True, family)
    code, err = _distill_cli(capsys, tiny_teacher, glue_dir, tmp_path, "--student-layers", "2", "--attention",
                             "probs", "--attention-distance", "factorised")
    assert_one_line_error(code, err, "--attention-distance factorised needs --attention scores")


def test_two_stage_gives_each_stage_its_learning_rate_and_schedule(tiny_teacher, glue_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    output = tmp_path / "stages"
    bert_emd.distill(teacher=str(tiny_teacher), data_dir=str(glue_dir), output=str(output), schedule="two-stage",
                     intermediate_epochs=2, prediction_epochs=1, intermediate_learning_rate=1e-3,
                     intermediate_lr_schedule="constant", prediction_learning_rate=5e-5, warmup=0,
                     **{**QUICK, "max_train_samples": 32})

    def learning_rates(folder: Path) -> list[float]:
        values = []
        for events in sorted((folder / "runs").rglob("events.out.tfevents*")):
            accumulator = EventAccumulator(str(events))
            accumulator.Reload()
            if "train/learning_rate" in accumulator.Tags()["scalars"]:
                values += [event.value for event in accumulator.Scalars("train/learning_rate")]
        return values

    layer_stage, prediction_stage = learning_rates(output / "intermediate"), learning_rates(output)
    assert len(layer_stage) == 8 and len(prediction_stage) == 4  # 32 examples / batch 8, per epoch
    np.testing.assert_allclose(layer_stage, 1e-3, rtol=1e-6)  # constant
    assert prediction_stage[0] == pytest.approx(5e-5, rel=1e-6) and prediction_stage[-1] < prediction_stage[0]
    run = json.loads((output / "run_config.json").read_text())["config"]
    assert run["intermediate_lr_schedule"] == "constant" and run["lr_schedule"] == "linear"


def test_eval_steps_evaluates_every_n_steps_and_keeps_the_best(tiny_teacher, glue_dir, tmp_path):
    output = tmp_path / "every"
    results = bert_emd.distill(teacher=str(tiny_teacher), data_dir=str(glue_dir), output=str(output), eval_steps=2,
                               learning_rate=3e-3, **{**QUICK, "max_train_samples": 64})  # 8 steps
    evaluations = results["train"]["joint"]["dev_evaluations"]
    assert [entry["step"] for entry in evaluations] == [2, 4, 6, 8]
    scores = [entry["accuracy"] for entry in evaluations]
    best = scores.index(max(scores))  # the first of equal scores is kept
    assert results["train"]["joint"]["best_step"] == evaluations[best]["step"]
    assert results["splits"]["dev"]["metrics"]["accuracy"] == pytest.approx(scores[best])
    assert not list(output.glob("checkpoint-*"))
    saved = json.loads((output / "run_config.json").read_text())["config"]
    assert saved["eval_steps"] == 2
    # each loss term's mean over the run, against the TensorBoard scalars the Trainer wrote
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = {}
    for events in sorted((output / "runs").rglob("events.out.tfevents*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(event.value for event in accumulator.Scalars(tag))
    terms = results["train"]["joint"]["loss_terms"]
    assert {"loss_prediction", "loss_attention_emd", "loss_hidden_emd", "loss_embedding"} <= set(terms)
    for term, summary in terms.items():
        values = scalars[f"train/{term}"]
        assert len(values) == 8  # logged every step
        assert summary["mean"] == pytest.approx(np.mean(values), rel=1e-5)
        assert summary["last_quarter"] == pytest.approx(np.mean(values[-2:]), rel=1e-5)

    staged = bert_emd.distill(teacher=str(tiny_teacher), data_dir=str(glue_dir), output=str(tmp_path / "staged"),
                              eval_steps=2, schedule="two-stage", intermediate_epochs=1, prediction_epochs=1,
                              **{**QUICK, "max_train_samples": 32})  # 4 steps a stage
    assert "dev_evaluations" not in staged["train"]["intermediate"]  # the layer stage is not scored
    assert [entry["step"] for entry in staged["train"]["prediction"]["dev_evaluations"]] == [2, 4]


def test_resume_from_a_mid_epoch_checkpoint(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    settings = dict(teacher=str(tiny_teacher), data_dir=str(glue_dir), save_steps=3, **QUICK)  # 4 steps, 1 epoch
    straight = bert_emd.distill(output=str(tmp_path / "straight"), **settings)

    checkpoints = []
    resumed = interrupt_at_first_save_then_resume(monkeypatch, settings, tmp_path / "resumed", checkpoints)
    assert checkpoints == ["checkpoint-3"]  # mid-epoch
    assert resumed["train"]["joint"]["resumed_from"].endswith("checkpoint-3")
    assert_same_layer_weights(resumed, straight)


@pytest.mark.parametrize("command, learning_rate", [("distill", "1e4"), ("finetune", "1e30")])
def test_a_diverging_run_stops_with_one_line_and_saves_nothing(capsys, tiny_teacher, glue_dir, tmp_path, command,
                                                               learning_rate):
    output = tmp_path / "diverged"
    model = ["--teacher", str(tiny_teacher), "--student-layers", "2"] if command == "distill" else \
        ["--model", str(tiny_teacher)]
    code, err = run_cli(capsys, command, *model, "--task", "sst2", "--data-dir", str(glue_dir), "--output",
                        str(output), "--learning-rate", learning_rate, "--warmup", "0", "--max-train-samples", "64",
                        "--max-eval-samples", "16", "--epochs", "2", "--batch-size", "8", "--logging-steps", "1",
                        "--save-steps", "1")
    # training had begun, so its progress bars stand above; the error is the last line, alone
    assert code == 2 and "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith(f"bert-emd {command}: error: the training loss became non-finite at step")
    assert "nothing was saved" in last
    assert not (output / "model.safetensors").exists() and not (output / "eval_results.json").exists()
    assert not list(output.glob("checkpoint-*"))  # a re-run must not resume from diverged weights


def test_a_model_with_non_finite_weights_is_refused(capsys, tiny_teacher, glue_dir, tmp_path):
    broken = tmp_path / "nan_model"
    model = BertForSequenceClassification.from_pretrained(tiny_teacher)
    with torch.no_grad():
        model.bert.encoder.layer[1].output.dense.weight[0, 0] = float("nan")
    model.save_pretrained(broken)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_teacher).save_pretrained(broken)
    for argv in (["evaluate", "--model", str(broken), "--task", "sst2", "--data-dir", str(glue_dir)],
                 ["export", "--model", str(broken), "--output", str(tmp_path / "onnx")],
                 ["benchmark", "--model", str(broken), "--output", str(tmp_path / "bench.json")]):
        code, err = run_cli(capsys, *argv)
        assert_one_line_error(code, err, "has non-finite weights", "bert.encoder.layer.1.output.dense.weight")


def test_checkpoints_hold_the_student_not_the_frozen_teacher(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    from safetensors import safe_open

    settings = dict(teacher=str(tiny_teacher), data_dir=str(glue_dir), save_steps=2, **QUICK)
    checkpoints = []
    interrupt_at_first_save_then_resume(monkeypatch, settings, tmp_path / "run", checkpoints)
    # the interrupted run's checkpoint-2 was resumed from and removed at the end: look at one kept on purpose
    bert_emd.distill(output=str(tmp_path / "kept"), keep_checkpoints=True, **settings)
    checkpoint = tmp_path / "kept" / "checkpoint-2" / "model.safetensors"
    with safe_open(checkpoint, "pt") as weights:
        keys = list(weights.keys())
    assert keys and not [key for key in keys if key.startswith("teacher.")]
    assert any(key.startswith("student.") for key in keys)
    teacher_bytes = (tiny_teacher / "model.safetensors").stat().st_size
    student_bytes = (tmp_path / "kept" / "model.safetensors").stat().st_size
    assert checkpoint.stat().st_size < student_bytes + teacher_bytes / 2  # the student (and projection), not both


def test_a_registered_mapping_works_end_to_end(tiny_teacher, glue_dir, tmp_path, capsys):
    """A new mapping is one object and one registration: the option accepts it, the loss uses its flow."""
    from bert_emd.cli import main
    from bert_emd.distill.mappings import MAPPINGS, FixedMapping, register_mapping

    first = register_mapping(FixedMapping("first", "every student layer learns teacher layer 1",
                                          rule=lambda n, m: [1] * n))
    try:
        with pytest.raises(ValueError, match="^a mapping named 'first' is registered already$"):
            register_mapping(first)
        output = tmp_path / "first"
        code = main(["distill", "--teacher", str(tiny_teacher), "--data-dir", str(glue_dir), "--student-layers", "2",
                     "--mapping", "first", "--task", "sst2", "--max-train-samples", "16", "--max-eval-samples", "8",
                     "--epochs", "1", "--batch-size", "8", "--output", str(output)])
        assert code == 0, capsys.readouterr().err[-2000:]
        state = json.loads((output / "distill_state.json").read_text())
        expected = [[0.5, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0]]
        for term in ("attention", "hidden"):
            assert state[term]["last_step"]["flow"] == expected
            assert state[term]["student_weights"] == [0.5, 0.5]  # a fixed mapping learns no weights
    finally:
        MAPPINGS.pop("first")
    with pytest.raises(SystemExit):  # once unregistered, the option refuses it again
        main(["distill", "--teacher", str(tiny_teacher), "--student-layers", "2", "--mapping", "first", "--output",
              str(tmp_path / "gone")])
    assert "invalid choice: 'first'" in capsys.readouterr().err


def test_a_registered_loss_term_works_end_to_end(tiny_teacher, glue_dir, tmp_path, capsys):
    """A new loss term is one class and one registration: --extra-terms switches it on with its weight, the
    Distiller adds it (to the layer terms, under beta) and logs it; bad specifications are one line."""
    import torch.nn.functional as F

    from bert_emd.distill.config import DistillConfig
    from bert_emd.distill.distiller import Distiller
    from bert_emd.distill.student import build_student
    from bert_emd.distill.terms import TERMS, LossTerm, register_term

    class TopHidden(LossTerm):
        def prepare(self, distiller, hidden_states, attentions, attention_mask):
            return hidden_states[-1]

        def loss(self, distiller, batch):
            return F.mse_loss(batch.student[self.name], batch.teacher[self.name])

    term = register_term(TopHidden("top_hidden", "MSE of the top hidden states", uses_hidden_states=True,
                                   projected=True))
    try:
        assert list(TERMS)[-1] == "top_hidden"  # the Distiller adds terms in the order registered
        with pytest.raises(ValueError, match="^a loss term named 'top_hidden' is registered already$"):
            register_term(term)
        teacher = BertForSequenceClassification.from_pretrained(tiny_teacher, attn_implementation="eager")
        batch = {"input_ids": torch.randint(1000, 2000, (3, 7)), "attention_mask": torch.ones(3, 7, dtype=torch.long),
                 "labels": torch.tensor([0, 1, 1])}
        losses = {}
        for extra in ("", "top_hidden:0.5"):
            torch.manual_seed(0)
            student = build_student(teacher, "teacher", 2)
            distiller = Distiller(teacher, student, DistillConfig(mapping="skip", beta=0.01, extra_terms=extra)).train()
            torch.manual_seed(2)
            losses[extra] = float(distiller(**batch)["loss"].detach()), \
                {name: float(values[-1]) for name, values in distiller.running.items()}
            if extra:  # the term against a computation of its own, from the models' outputs
                with torch.no_grad():
                    torch.manual_seed(2)
                    top = student(**{k: v for k, v in batch.items() if k != "labels"}, output_hidden_states=True,
                                  output_attentions=True).hidden_states[-1]
                    target = teacher(**{k: v for k, v in batch.items() if k != "labels"},
                                     output_hidden_states=True).hidden_states[-1]
                assert losses[extra][1]["top_hidden"] == pytest.approx(F.mse_loss(top, target).item(), rel=1e-5)
        (without, _), (with_term, terms) = losses[""], losses["top_hidden:0.5"]
        assert terms["top_hidden"] > 0
        assert with_term == pytest.approx(without + 0.01 * 0.5 * terms["top_hidden"], rel=1e-5)

        output = tmp_path / "extra"
        code = main(["distill", "--teacher", str(tiny_teacher), "--data-dir", str(glue_dir), "--student-layers", "2",
                     "--extra-terms", "top_hidden:0.5", "--task", "sst2", "--max-train-samples", "16",
                     "--max-eval-samples", "8", "--epochs", "1", "--batch-size", "8", "--logging-steps", "1",
                     "--output", str(output)])
        assert code == 0, capsys.readouterr().err[-2000:]
        results = json.loads((output / "eval_results.json").read_text())
        assert results["train"]["joint"]["loss_terms"]["loss_top_hidden"]["mean"] > 0
        for extra, mapping, message in [("nothing", "emd", "'nothing' is not a registered extra loss term"),
                                        ("hidden_emd", "emd", "the built-in terms follow their own options"),
                                        ("top_hidden:x", "emd", "the weight of top_hidden must be a number"),
                                        ("top_hidden:-1", "emd", "must be a finite number >= 0"),
                                        ("top_hidden", "none", "top_hidden is a layer term; --mapping none")]:
            code, err = run_cli(capsys, "distill", "--teacher", str(tiny_teacher), "--student-layers", "2", "--mapping",
                                mapping, "--extra-terms", extra, "--output", str(tmp_path / "bad"))
            assert_one_line_error(code, err, message)
            assert not (tmp_path / "bad").exists()
    finally:
        TERMS.pop("top_hidden")
