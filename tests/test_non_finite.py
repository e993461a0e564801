"""No command exits 0 with a non-finite model: the divergence stop at the first bad step whatever the logging
interval, the check of the trained weights, the guard in front of every save, and resume from complete
checkpoints only (a write cut short by Ctrl-C, a truncated file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import Trainer, TrainerCallback

from bert_emd.training import GuardedTrainer
from tests.test_bad_input import run_cli

TRAINING = ["--max-train-samples", "32", "--batch-size", "4", "--epochs", "1"]  # 8 optimiser steps
GLUE = ["--task", "sst2", "--data-dir", "{glue}", "--max-eval-samples", "8"]
COMMANDS = {
    "finetune": ["finetune", "--model", "{teacher}", *GLUE],
    "distill": ["distill", "--teacher", "{teacher}", "--student-layers", "2", *GLUE],
    "distill-two-stage": ["distill", "--teacher", "{teacher}", "--student-layers", "2", *GLUE, "--schedule",
                          "two-stage", "--intermediate-epochs", "1", "--prediction-epochs", "1"],
    "general-distill": ["general-distill", "--teacher", "{encoder}", "--corpus", "{corpus}", "--student-layers", "2",
                        "--max-length", "16"],
    "early-exit": ["early-exit", "train", "--teacher", "{teacher}", *GLUE],
    "hybrid": ["hybrid", "--teacher", "{teacher}", *GLUE, "--target-ratio", "2", "--steps", "1"],
}


@pytest.fixture(scope="module")
def places(tmp_path_factory, tiny_teacher, tiny_bert, glue_dir):
    root = tmp_path_factory.mktemp("non_finite")
    corpus = root / "corpus.txt"
    corpus.write_text("A line of plain text for the general stage, long enough to pack.\n" * 12)
    return {"teacher": str(tiny_teacher), "encoder": str(tiny_bert), "glue": str(glue_dir), "corpus": str(corpus)}


def argv(command: str, places: dict, output: Path, *extra: str) -> list[str]:
    return [part.format(**places) for part in COMMANDS[command]] + [*TRAINING, "--output", str(output), *extra]


def with_callbacks(monkeypatch, *extra: TrainerCallback) -> None:
    """Every Trainer a command makes gets ``extra`` after its own callbacks (as a user's callback would be)."""
    original = GuardedTrainer.__init__

    def init(self, *args, **kwargs):
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), *extra]
        original(self, *args, **kwargs)

    monkeypatch.setattr(GuardedTrainer, "__init__", init)


def first_trained_parameter(model) -> torch.nn.Parameter:
    return next(parameter for parameter in model.parameters() if parameter.requires_grad)


class PoisonAtStep(TrainerCallback):
    """Makes a trained weight infinite before optimiser step ``step`` (its loss is then NaN)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step + 1 == self.step:
            with torch.no_grad():
                first_trained_parameter(model).fill_(float("inf"))


class PoisonAtTheEnd(TrainerCallback):
    """A NaN in a trained weight after the last step, after the best model was restored: just before saving."""

    def on_train_end(self, args, state, control, model=None, **kwargs):
        with torch.no_grad():
            first_trained_parameter(model).view(-1)[0] = float("nan")


def assert_stopped(code: int, err: str, command: str, *fragments: str) -> str:
    assert code == 2, err[-2000:]
    assert "Traceback" not in err and "result_code_string" not in err  # no solver noise before the line
    last = err.splitlines()[-1]
    assert last.startswith(f"bert-emd {command.split('-two')[0].replace('early-exit', 'early-exit train')}: error: ")
    for fragment in fragments:
        assert fragment in last, last
    return last


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_short_diverging_run_stops_below_the_logging_interval(capsys, places, tmp_path, command):
    """The case that once exited 0: 8 steps, a learning rate of 1e4, logging every 50 steps."""
    output = tmp_path / "out"
    code, err = run_cli(capsys, *argv(command, places, output, "--learning-rate", "10000", "--warmup", "0"))
    assert_stopped(code, err, command, "the training loss became non-finite at step", "nothing was saved")
    assert not output.exists()  # no model, no results, no checkpoints, no finished-run record


@pytest.mark.parametrize("command", ["finetune", "distill", "early-exit", "hybrid"])
def test_a_nan_after_the_last_logging_step_is_caught(capsys, places, tmp_path, monkeypatch, command):
    with_callbacks(monkeypatch, PoisonAtStep(7))
    output = tmp_path / "out"
    code, err = run_cli(capsys, *argv(command, places, output, "--logging-steps", "3", "--save-steps", "3"))
    assert_stopped(code, err, command, "the training loss became non-finite at step 7", "nothing was saved")
    assert not output.exists()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_nan_in_the_weights_before_saving_is_caught(capsys, places, tmp_path, monkeypatch, command):
    with_callbacks(monkeypatch, PoisonAtTheEnd())
    output = tmp_path / "out"
    code, err = run_cli(capsys, *argv(command, places, output))
    assert_stopped(code, err, command, "the trained weights are non-finite after step", "nothing was saved")
    assert not output.exists()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_save_guard_alone_refuses_a_non_finite_model(capsys, places, tmp_path, monkeypatch, command):
    """With the check after training switched off, each command's own save still refuses the poisoned model."""
    import bert_emd.training

    monkeypatch.setattr(bert_emd.training, "diverged", lambda trainer, result: None)
    with_callbacks(monkeypatch, PoisonAtTheEnd())
    output = tmp_path / "out"
    parts = argv(command, places, output)
    if command in ("early-exit", "hybrid"):  # they score the model before saving it: no dev set here, so the save
        train = tmp_path / "train.csv"        # is what meets the NaN
        train.write_text("text,label\n" + "".join(f"a fine film {i},1\na dull film {i},0\n" for i in range(16)))
        own = {"early-exit": ["early-exit", "train"], "hybrid": ["hybrid", "--target-ratio", "2", "--steps", "1"]}
        parts = [*own[command], "--teacher", places["teacher"], "--train-file", str(train), *TRAINING, "--output",
                 str(output)]
    code, err = run_cli(capsys, *parts)
    assert_stopped(code, err, command, "refusing to save", "NaN or inf in 1 of", "nothing was saved")
    assert not output.exists()


def interrupt_checkpoint_write(step: int):
    """Ctrl-C while ``checkpoint-N`` is being written: after its weights and optimiser, before its trainer state."""
    original = Trainer._save_rng_state

    def save_rng_state(trainer, output_dir):
        if output_dir.endswith(f"checkpoint-{step}"):
            raise KeyboardInterrupt
        return original(trainer, output_dir)

    return save_rng_state


class InterruptAfterSave(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def student_weights(output: Path) -> dict:
    return load_file(output / "model.safetensors")


@pytest.mark.parametrize("command", ["distill", "finetune"])
def test_ctrl_c_during_a_checkpoint_write_resumes_from_the_previous_one(capsys, places, tmp_path, monkeypatch,
                                                                       command):
    extra = ("--save-steps", "3", "--eval-batch-size", "8")
    assert run_cli(capsys, *argv(command, places, tmp_path / "straight", *extra))[0] == 0

    output = tmp_path / "resumed"
    monkeypatch.setattr(Trainer, "_save_rng_state", interrupt_checkpoint_write(6))
    code, err = run_cli(capsys, *argv(command, places, output, *extra))
    assert code == 130, err[-2000:]
    assert (output / "checkpoint-6").is_dir() and not (output / "checkpoint-6" / "trainer_state.json").exists()
    monkeypatch.undo()

    code, err = run_cli(capsys, *argv(command, places, output, *extra))
    assert code == 0, err[-2000:]
    assert "checkpoint-6 is incomplete: its write was interrupted; removed" in err
    straight, resumed = student_weights(tmp_path / "straight"), student_weights(output)
    assert straight.keys() == resumed.keys()
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("damaged", ["model.safetensors", "trainer_state.json", "optimizer.pt"])
def test_a_truncated_checkpoint_is_skipped_for_the_previous_complete_one(capsys, places, tmp_path, monkeypatch,
                                                                         damaged):
    extra = ("--save-steps", "3", "--eval-batch-size", "8")
    assert run_cli(capsys, *argv("distill", places, tmp_path / "straight", *extra))[0] == 0

    output = tmp_path / "resumed"
    with_callbacks(monkeypatch, InterruptAfterSave(6))
    assert run_cli(capsys, *argv("distill", places, output, *extra))[0] == 130
    monkeypatch.undo()
    target = output / "checkpoint-6" / damaged
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])

    code, err = run_cli(capsys, *argv("distill", places, output, *extra))
    assert code == 0, err[-2000:]
    assert f"checkpoint-6 is damaged: {damaged} has" in err
    results = json.loads((output / "eval_results.json").read_text())
    assert results["train"]["joint"]["resumed_from"].endswith("checkpoint-3")
    straight, resumed = student_weights(tmp_path / "straight"), student_weights(output)
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], rtol=1e-5, atol=1e-6)


def test_on_accelerators_the_flag_is_read_only_where_the_trainer_syncs_anyway():
    """The deferred path (a device flag, no host sync per step), driven step by step: a NaN at step 3 is found at
    the next logging step, and training stops there with nothing saved or evaluated."""
    from transformers import TrainerControl, TrainerState

    from bert_emd.training.guard import NonFiniteGuard

    guard, state = NonFiniteGuard(deferred=True), TrainerState(max_steps=20)
    reads = []
    original = guard._read
    guard._read = lambda state, model: (reads.append(state.global_step), original(state, model))
    for step in range(1, 9):
        control = TrainerControl(should_log=step % 5 == 0, should_save=step % 5 == 0)
        guard.observe(torch.tensor(float("nan") if step == 3 else 0.5), step)
        state.global_step = step
        guard.on_step_end(None, state, control)
        if guard.failure:
            break
    assert reads == [5] and step == 5
    assert guard.failure == "the training loss became non-finite between steps 1 and 5"
    assert control.should_training_stop and not control.should_save and not control.should_log


def test_on_a_cpu_every_step_is_checked_at_once():
    from transformers import TrainerControl, TrainerState

    from bert_emd.training.guard import NonFiniteGuard

    guard, state = NonFiniteGuard(), TrainerState(max_steps=20)
    for step in range(1, 5):
        control = TrainerControl()
        guard.observe(torch.tensor(float("inf") if step == 3 else 0.5), step)
        state.global_step = step
        guard.on_step_end(None, state, control)
        if guard.failure:
            break
    assert step == 3 and guard.failure == "the training loss became non-finite at step 3"
    assert control.should_training_stop


NEWER = {
    "theseus": ["theseus", "--teacher", "{teacher}", "--successor-layers", "2", *GLUE],
    "finetune-tagger": ["finetune", "--model", "{encoder}", "--task", "conll2003", "--data-dir", "{conll}",
                        "--max-eval-samples", "8"],
    "finetune-reader": ["finetune", "--model", "{encoder}", "--task", "squad", "--data-dir", "{squad}",
                        "--max-eval-samples", "8"],
    "distill-tagger": ["distill", "--teacher", "{tagger}", "--task", "conll2003", "--data-dir", "{conll}",
                       "--student-layers", "2", "--max-eval-samples", "8"],
    "distill-reader": ["distill", "--teacher", "{reader}", "--task", "squad", "--data-dir", "{squad}",
                       "--student-layers", "2", "--mapping", "none", "--max-eval-samples", "8"],
}


@pytest.fixture(scope="module")
def heads(places, tmp_path_factory):
    """CoNLL and SQuAD files, and a tagger and a reader fine-tuned on them for a few steps."""
    import bert_emd
    from tests.test_spans import write_squad
    from tests.test_tokens import _conll_file

    root = tmp_path_factory.mktemp("heads")
    (root / "conll").mkdir()
    (root / "squad").mkdir()
    for split in ("train", "dev", "test"):
        _conll_file(root / "conll" / f"{split}.txt", 24 if split == "train" else 8)
    write_squad(root / "squad" / "train-v1.1.json", 24, seed=0)
    write_squad(root / "squad" / "dev-v1.1.json", 8, seed=1)
    found = {**places, "conll": str(root / "conll"), "squad": str(root / "squad")}
    for name, task in (("tagger", "conll2003"), ("reader", "squad")):
        bert_emd.finetune(model=places["encoder"], task=task, data_dir=found["conll" if name == "tagger" else "squad"],
                          max_train_samples=8, max_eval_samples=8, batch_size=4, epochs=1, output=str(root / name))
        found[name] = str(root / name)
    return found


@pytest.mark.parametrize("command", list(NEWER))
def test_a_short_diverging_run_of_theseus_taggers_and_readers_stops(capsys, heads, tmp_path, command):
    output = tmp_path / "out"
    parts = [part.format(**heads) for part in NEWER[command]]
    code, err = run_cli(capsys, *parts, *TRAINING, "--learning-rate", "10000", "--warmup", "0", "--output",
                        str(output))
    assert code == 2, err[-2000:]
    last = err.splitlines()[-1]
    assert last.startswith(f"bert-emd {parts[0]}: error: the training loss became non-finite at step"), last
    assert "nothing was saved" in last and "Traceback" not in err
    assert not output.exists()
