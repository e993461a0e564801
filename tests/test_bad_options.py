"""One table of bad inputs across every command: each ends with exit code 2, one line naming the culprit, no
traceback, and no output left behind. Plus: every numeric option declares its range, two writers on one output,
a finished output of another command, and --overwrite."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import typing

import pytest

import bert_emd
from bert_emd.cli import _commands, main
from bert_emd.errors import BertEmdError
from bert_emd.options import _base_type
from bert_emd.outputs import LOCK_FILE

GLUE = "{glue}"
TEACHER = "{teacher}"
DATA = ["--task", "sst2", "--data-dir", GLUE]
QUICK = [*DATA, "--max-train-samples", "8", "--max-eval-samples", "8", "--epochs", "1"]
FT = ["finetune", "--model", TEACHER, *QUICK, "--output", "{out}"]
DI = ["distill", "--teacher", TEACHER, "--student-layers", "2", *QUICK, "--output", "{out}"]
GD = ["general-distill", "--teacher", "{encoder}", "--corpus", "{corpus}", "--student-layers", "2", "--output", "{out}"]
EE = ["early-exit", "train", "--teacher", TEACHER, *QUICK, "--output", "{out}"]
HY = ["hybrid", "--teacher", TEACHER, *QUICK, "--target-ratio", "2", "--output", "{out}"]
EX = ["export", "--model", TEACHER, *DATA, "--output", "{out}"]
QU = ["quantize", "--model", TEACHER, *DATA, "--max-eval-samples", "8", "--output", "{out}"]
BE = ["benchmark", "--model", TEACHER, "--output", "{out}/bench.json"]
AU = ["augment", *DATA, "--max-train-samples", "4", "--output", "{out}/aug.jsonl"]
EV = ["evaluate", "--model", TEACHER, *DATA, "--max-eval-samples", "8"]
PR = ["predict", "--model", TEACHER, *DATA, "--max-eval-samples", "8", "--output", "{out}/p.tsv"]
CU = ["early-exit", "evaluate", "--model", TEACHER, *DATA, "--max-eval-samples", "8"]
AT = ["attack", "--model", TEACHER, *DATA, "--output", "{out}"]
TH = ["theseus", "--teacher", TEACHER, "--successor-layers", "2", *QUICK, "--output", "{out}"]
CO = ["compress", "--teacher", TEACHER, *DATA, "--output", "{out}"]
XP = ["experiment", "--teacher-model", TEACHER, "--data-dir", GLUE, "--work-dir", "{out}/w", "--results-dir",
      "{out}/r", "--tasks", "rte", "--dry-run"]

CASES = [
    # ranges of the shared training options, on several commands
    (FT + ["--epochs", "0"], "--epochs must be > 0 (got 0.0)"),
    (FT + ["--epochs", "-1"], "--epochs must be > 0"),
    (FT + ["--learning-rate", "0"], "--learning-rate must be > 0"),
    (FT + ["--batch-size", "0"], "--batch-size must be >= 1 (got 0)"),
    (FT + ["--eval-batch-size", "0"], "--eval-batch-size must be >= 1"),
    (FT + ["--warmup", "-1"], "--warmup must be >= 0"),
    (FT + ["--weight-decay", "-0.1"], "--weight-decay must be >= 0"),
    (FT + ["--seed", "-1"], "--seed must be >= 0"),
    (FT + ["--gradient-accumulation", "0"], "--gradient-accumulation must be >= 1"),
    (FT + ["--early-stopping-patience", "0"], "--early-stopping-patience must be >= 1"),
    (FT + ["--logging-steps", "0"], "--logging-steps must be >= 1"),
    (FT + ["--save-steps", "0"], "--save-steps must be >= 1"),
    (FT + ["--eval-steps", "0"], "--eval-steps must be >= 1"),
    # options that need evaluation during training, on a run or command without it
    (GD + ["--eval-steps", "50"], "--eval-steps needs evaluation during training"),
    (HY + ["--eval-steps", "50"], "--eval-steps needs evaluation during training"),
    (EE + ["--early-stopping-patience", "2"], "--early-stopping-patience needs evaluation during training"),
    (["finetune", "--model", TEACHER, "--train-file", "{two_class}", "--eval-steps", "5", "--output", "{out}"],
     "--eval-steps needs evaluation during training"),
    (FT + ["--trainer-arg", "max_grad_nrom=1"], "--trainer-arg max_grad_nrom: not a field of transformers'"),
    (FT + ["--trainer-arg", "learning_rate=1"], "--trainer-arg learning_rate: set it with --learning-rate"),
    (FT + ["--trainer-arg", "save_strategy=no"], "--trainer-arg save_strategy: this command sets it itself"),
    (FT + ["--trainer-arg", "max_grad_norm"], "give KEY=VALUE"),
    (FT + ["--trainer-arg", "optim=bogus_optimiser"], "the Trainer refused these settings"),
    (FT + ["--max-length", "0"], "--max-length must be >= 1"),
    (FT + ["--max-length", "1000"], "--max-length 1000 is more than"),
    (FT + ["--max-train-samples", "0"], "--max-train-samples must be >= 1"),
    (FT + ["--max-eval-samples", "-3"], "--max-eval-samples must be >= 1"),
    (FT + ["--learning-rate", "nan"], "--learning-rate must be a finite number"),
    (FT + ["--lr-schedule", "cosine"], "invalid choice: 'cosine'"),
    (FT + ["--epochs", "lots"], "invalid float value: 'lots'"),
    # conflicting options, tasks and files
    (FT + ["--regression"], "--regression conflicts with --task sst2"),
    (FT + ["--labels", "neg,pos"], "--labels conflicts with --task sst2"),
    (["finetune", "--model", TEACHER, "--task", "sst3", "--data-dir", GLUE, "--output", "{out}"],
     "unknown task 'sst3'"),
    (["finetune", "--model", "{no_tokenizer}", *QUICK, "--output", "{out}"], "has no tokenizer files"),
    (["finetune", "--model", "{corrupt}", *QUICK, "--output", "{out}"], "invalid header length"),
    (["finetune", "--model", "{out}/absent/model", *QUICK, "--output", "{out}"], "model path does not exist"),
    (["finetune", "--model", TEACHER, "--train-file", "{one_class}", "--output", "{out}"], "holds only label"),
    (["finetune", "--config", "{yaml_lots}", "--model", TEACHER, *DATA, "--output", "{out}"],
     "--epochs must be a number (got 'lots')"),
    (["finetune", "--config", "{yaml_half_batch}", "--model", TEACHER, *DATA, "--output", "{out}"],
     "--batch-size must be a whole number (got 2.5)"),
    (["finetune", "--config", "{yaml_unknown}", "--model", TEACHER, *DATA, "--output", "{out}"],
     "unknown option(s) epochz"),
    (["finetune", "--model", TEACHER, *QUICK, "--output", "{a_file}"], "is a file; give a directory"),
    (["finetune", "--model", TEACHER, *QUICK, "--output", "{a_file}/below"], "which is a file"),
    # distillation
    (DI[:4] + ["0"] + DI[5:], "--student-layers must be >= 1"),
    (DI[:4] + ["4"] + DI[5:], "fewer layers than the teacher"),
    (DI + ["--alpha", "1.5"], "--alpha must be >= 0 and <= 1 (got 1.5)"),
    (DI + ["--beta", "-1"], "--beta must be >= 0"),
    (DI + ["--theta", "-1"], "--theta must be >= 0"),
    (DI + ["--kd-temperature", "0"], "--kd-temperature must be > 0"),
    (DI + ["--emd-temperature", "0"], "--emd-temperature must be > 0"),
    (DI + ["--history-every", "0"], "--history-every must be >= 1"),
    (DI + ["--student-heads", "0"], "--student-heads must be >= 1"),
    (DI + ["--student-hidden", "30"], "not a multiple of its 4 attention heads"),
    (DI + ["--student-heads", "2", "--attention", "scores"], "attention matching needs equal head counts"),
    (DI + ["--schedule", "two-stage", "--intermediate-epochs", "0"], "--intermediate-epochs must be > 0"),
    (DI + ["--prediction-learning-rate", "0"], "--prediction-learning-rate must be > 0"),
    (DI + ["--student-init", "teacher:5,9"], "teacher layers are numbered 1..4"),
    (DI + ["--mapping", "diagonal"], "invalid choice: 'diagonal'"),
    (DI + ["--attention", "probs", "--attention-distance", "factorised"], "needs --attention scores"),
    (["distill", "--teacher", "{encoder}", "--student-layers", "2", *QUICK, "--output", "{out}"],
     "has no sequence-classification head"),
    # general distillation
    (GD[:6] + ["0"] + GD[7:], "--student-layers must be >= 1"),
    (GD + ["--epochs", "0"], "--epochs must be > 0"),
    (["general-distill", "--teacher", "{encoder}", "--corpus", "{out}/none.txt", "--student-layers", "2", "--output",
      "{out}"], "none.txt"),
    # early exit
    (EE + ["--student-heads", "0"], "--student-heads must be >= 1"),
    (EE + ["--kd-temperature", "0"], "--kd-temperature must be > 0"),
    (CU + ["--threads", "0"], "--threads must be >= 1"),
    (CU + ["--eval-batch-size", "0"], "--eval-batch-size must be >= 1"),
    # hybrid
    (HY[:-4] + ["--target-ratio", "1", "--output", "{out}"], "--target-ratio must be > 1 (got 1.0)"),
    (HY + ["--prune-share", "1.5"], "--prune-share must be >= 0 and <= 1"),
    (HY + ["--energy", "0"], "--energy must be > 0 and <= 1"),
    (HY + ["--steps", "0"], "--steps must be >= 1"),
    (HY + ["--hidden-weight", "-1"], "--hidden-weight must be >= 0"),
    # deployment
    (EX + ["--opset", "3"], "--opset must be >= 18 (got 3)"),
    (EX + ["--check-samples", "0"], "--check-samples must be >= 1"),
    (EX + ["--tolerance", "0"], "--tolerance must be > 0"),
    (QU + ["--batch-size", "0"], "--batch-size must be >= 1"),
    (BE + ["--threads", "0"], "--threads must be >= 1"),
    (BE + ["--repeats", "0"], "--repeats must be >= 1"),
    (BE + ["--warmup", "-1"], "--warmup must be >= 0"),
    (BE + ["--lengths", "1000"], "--lengths 1000 is more than"),
    (BE + ["--lengths", "0"], "--batch-sizes and --lengths must be at least 1"),
    (["benchmark", "--model", TEACHER, "--output", "{a_dir}"], "is a directory; give a file name"),
    (["benchmark", "--model", "{nan_model}"], "has non-finite weights"),
    # evaluation and prediction
    (EV + ["--batch-size", "0"], "--batch-size must be >= 1"),
    (EV[:2] + ["{no_tokenizer}"] + EV[3:], "has no tokenizer files"),
    (EV[:2] + ["{nan_model}"] + EV[3:], "has non-finite weights"),
    (PR + ["--batch-size", "0"], "--batch-size must be >= 1"),
    # augmentation
    (AU + ["--replace-prob", "0"], "--replace-prob must be > 0 and <= 1"),
    (AU + ["--candidates", "0"], "--candidates must be >= 1"),
    (AU + ["--num-augmented", "0"], "--num-augmented must be >= 1"),
    (AU + ["--vocabulary-size", "0"], "--vocabulary-size must be >= 1"),
    # attack
    (AT + ["--min-word-similarity", "2"], "--min-word-similarity must be >= 0 and <= 1"),
    (AT + ["--max-queries", "0"], "--max-queries must be >= 1"),
    (AT + ["--vectors", "{binary}"], "not a GloVe / word2vec text file"),
    (AT + ["--max-candidates", "0"], "--max-candidates must be >= 1"),
    # theseus
    (TH[:4] + ["3"] + TH[5:], "does not divide the teacher's 4 layers"),
    (TH + ["--replacing-rate", "-0.5"], "--replacing-rate must be >= 0 and <= 1"),
    (TH + ["--replacing-rate-schedule", "linear", "--replacing-rate-slope", "0"], "--replacing-rate-slope must be > 0"),
    (TH + ["--replacing-rate-schedule", "linear", "--replacing-steps-to-one", "0"],
     "--replacing-steps-to-one must be >= 1"),
    (TH + ["--eval-steps", "0"], "--eval-steps must be >= 1"),
    # compress
    (CO + ["--target-speedup", "1"], "--target-speedup must be > 1 (got 1.0)"),
    (CO + ["--target-latency-ms", "0"], "--target-latency-ms must be > 0"),
    (CO, "give the speed target"),
    (CO + ["--target-speedup", "2", "--accuracy-budget", "-0.5"], "--accuracy-budget must be >= 0"),
    (CO + ["--target-speedup", "2", "--batch-size-deploy", "0"], "--batch-size-deploy must be >= 1"),
    (CO + ["--target-speedup", "2", "--num-augmented", "0"], "--num-augmented must be >= 1"),
    (["compress", "--teacher", "{encoder}", *DATA, "--target-speedup", "2", "--output", "{out}"],
     "has no sequence-classification head"),
    (["compress", "--teacher", TEACHER, "--train-file", "{two_class}", "--target-speedup", "2", "--output", "{out}"],
     "give a dev set"),
    # experiment
    (XP + ["--threads", "0"], "--threads must be >= 1"),
    (XP + ["--latency-repeats", "0"], "--latency-repeats must be >= 1"),
    (XP + ["--latency-length", "0"], "--latency-length must be >= 1"),
    (XP + ["--methods", "emd,bogus"], "unknown method 'bogus'"),
    (XP[:-1] + ["--seeds", "a,b", "--dry-run"], "--seeds: cannot read 'a,b' as a comma-separated list of whole"),
    # files that are not what they claim, and places that cannot be written
    (AU + ["--mlm", "{encoder}"], "has no trained masked-LM head"),
    (AU + ["--vectors", "{nan_vectors}"], "line 2: the vector of 'film' holds NaN or inf"),
    (AU + ["--vectors", "{binary}"], "not a GloVe / word2vec text file"),
    (["augment", "--train-file", "{empty_text}", "--output", "{out}/aug.jsonl"], "line 3: the text ('text') is empty"),
    (["finetune", "--model", TEACHER, "--train-file", "{empty_text}", "--output", "{out}"],
     "empty_text.csv, line 3: the text ('text') is empty"),
    (["evaluate", "--model", TEACHER, "--validation-file", "{empty_text}"], "line 3: the text ('text') is empty"),
    (EV[:2] + ["{small_vocabulary}"] + EV[3:], "embedding table has 1000 rows"),
    (DI[:2] + ["{small_vocabulary}"] + DI[3:], "embedding table has 1000 rows"),
    (GD[:4] + ["{empty_corpus}"] + GD[5:], "is empty"),
    (GD[:4] + ["{binary}"] + GD[5:], "is not text (it holds binary data)"),
    (["finetune", "--config", "{binary}", "--model", TEACHER, *DATA, "--output", "{out}"],
     "a config file must be YAML or JSON text"),
    (FT[:-1] + ["/proc/bert-emd-test/out"], "cannot create --output /proc/bert-emd-test/out"),
    (EV + ["--output", "/proc/bert-emd-test/dev.json"], "cannot create --output /proc/bert-emd-test"),
    (PR + ["--split", "nosuch"], "unknown split 'nosuch' for SST-2; use one of train, dev, test"),
    (["predict", "--model", TEACHER, "--task", "sst2", "--test-file", "{out}/missing.csv", "--output", "{out}/p"],
     "file not found"),
    (EX[:2] + ["{nan_model}"] + EX[3:], "has non-finite weights"),
    (QU[:2] + ["{nan_model}"] + QU[3:], "has non-finite weights"),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory, tiny_teacher, tiny_bert, glue_dir):
    import torch
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("bad_inputs")
    no_tokenizer = root / "no_tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        (no_tokenizer / name).write_bytes((tiny_teacher / name).read_bytes())
    corrupt = root / "corrupt"
    corrupt.mkdir()
    for file in tiny_teacher.iterdir():
        (corrupt / file.name).write_bytes(file.read_bytes())
    (corrupt / "model.safetensors").write_bytes((tiny_teacher / "model.safetensors").read_bytes()[:1000])
    nan_model = root / "nan_model"
    nan_model.mkdir()
    for file in tiny_teacher.iterdir():
        (nan_model / file.name).write_bytes(file.read_bytes())
    weights = load_file(nan_model / "model.safetensors")
    first = next(iter(weights))
    weights[first] = torch.full_like(weights[first], float("nan"))
    save_file(weights, nan_model / "model.safetensors", metadata={"format": "pt"})
    one_class = root / "one_class.csv"
    one_class.write_text("text,label\ngood film,1\nfine acting,1\nlovely,1\n")
    two_class = root / "two_class.csv"
    two_class.write_text("text,label\ngood film,1\ndull acting,0\nlovely,1\n")
    yamls = {"yaml_lots": "epochs: lots\n", "yaml_half_batch": "batch_size: 2.5\n", "yaml_unknown": "epochz: 3\n"}
    for name, text in yamls.items():
        (root / f"{name}.yaml").write_text(text)
    a_file = root / "a_file"
    a_file.write_text("not a directory")
    (root / "a_dir").mkdir()
    nan_vectors = root / "nan_vectors.txt"
    nan_vectors.write_text("good 0.1 0.2 0.3\nfilm nan 0.2 0.3\nfine 0.1 0.25 0.3\n")
    binary = root / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    empty_text = root / "empty_text.csv"
    empty_text.write_text("text,label\ngood film,1\n  ,0\nfine acting,1\n")
    empty_corpus = root / "empty_corpus.txt"
    empty_corpus.write_text("")
    small_vocabulary = root / "small_vocabulary"  # the MiniLM tokenizer (30,522 ids) beside 1,000 embeddings
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    small = BertConfig(vocab_size=1000, num_hidden_layers=4, hidden_size=32, num_attention_heads=4,
                       intermediate_size=64,
                       num_labels=2)
    BertForSequenceClassification(small).save_pretrained(small_vocabulary)
    AutoTokenizer.from_pretrained(tiny_teacher).save_pretrained(small_vocabulary)
    corpus = root / "corpus.txt"
    corpus.write_text("A small corpus line for the general stage.\n" * 4)
    return {"glue": str(glue_dir), "teacher": str(tiny_teacher), "encoder": str(tiny_bert), "corpus": str(corpus),
            "no_tokenizer": str(no_tokenizer), "corrupt": str(corrupt), "nan_model": str(nan_model),
            "one_class": str(one_class), "two_class": str(two_class), "a_file": str(a_file),
            "a_dir": str(root / "a_dir"), "nan_vectors": str(nan_vectors), "binary": str(binary),
            "empty_text": str(empty_text), "empty_corpus": str(empty_corpus), "small_vocabulary": str(small_vocabulary),
            **{name: str(root / f"{name}.yaml") for name in yamls}}


@pytest.mark.parametrize("argv, fragment", CASES, ids=[f"{i:02d}-{c[0][0]}" for i, c in enumerate(CASES)])
def test_bad_input_table(capsys, places, tmp_path, argv, fragment):
    output = tmp_path / "out"
    output.mkdir()  # some outputs are files inside it; a command's own output directory is {out} itself
    filled = [part.format(out=output, **places) for part in argv]
    writes_directory = "--output" in filled and filled[filled.index("--output") + 1] == str(output)
    if writes_directory:
        output.rmdir()  # a command that writes this directory must not leave it behind
    capsys.readouterr()
    try:
        code = main(filled)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert fragment in lines[0], lines[0]
    if writes_directory:
        assert not output.exists(), sorted(p.name for p in output.iterdir())
    else:
        assert not any(output.iterdir()), "something was left in the output"


def test_the_list_of_splits_names_each_once():
    from bert_emd.data.loading import expand_split
    from bert_emd.data.tasks import get_task

    with pytest.raises(BertEmdError) as raised:
        expand_split(get_task("sst2"), "nosuch")
    assert str(raised.value).endswith("use one of train, dev, test")
    with pytest.raises(BertEmdError) as raised:
        expand_split(get_task("mnli"), "nosuch")
    assert str(raised.value).endswith("use one of train, dev, test, dev_matched, dev_mismatched, test_matched, "
                                      "test_mismatched")


def test_the_table_covers_every_command():
    covered = {" ".join(argv[:2]) if argv[0] == "early-exit" else argv[0] for argv, _ in CASES}
    assert set(_commands()) <= covered
    assert len(CASES) >= 60


def test_every_number_option_declares_its_range():
    """A new numeric option cannot be added without its check: a range, or any_value=True on purpose."""
    missing = []
    for name, (config_class, _, _) in _commands().items():
        hints = typing.get_type_hints(config_class)
        for field in dataclasses.fields(config_class):
            if _base_type(hints[field.name]) in (int, float):
                declared = any(bound is not None for bound in field.metadata.get("range", (None,) * 3))
                if not declared and not field.metadata.get("any_value"):
                    missing.append(f"{name} --{field.name}")
    assert not missing, missing


def test_a_second_writer_is_refused(capsys, places, tmp_path):
    output = tmp_path / "busy"
    output.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (output / LOCK_FILE).write_text(json.dumps({"pid": writer.pid, "command": "distill"}))
        code = main(["finetune", "--model", places["teacher"], "--task", "sst2", "--data-dir", places["glue"],
                     "--max-train-samples", "8", "--epochs", "1", "--output", str(output)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1
        assert f"is being written by another bert-emd command (distill, process {writer.pid})" in err
        assert sorted(p.name for p in output.iterdir()) == [LOCK_FILE]  # the other writer's lock stays
    finally:
        writer.kill()
        writer.wait()
    # the writer is gone: its lock is stale and taken over; the run finishes and removes it
    bert_emd.finetune(model=places["teacher"], task="sst2", data_dir=places["glue"], max_train_samples=8,
                      max_eval_samples=8, epochs=1, batch_size=8, output=str(output))
    assert (output / "run_config.json").is_file() and not (output / LOCK_FILE).exists()


def test_a_finished_output_of_another_command_needs_overwrite(places, tmp_path):
    output = tmp_path / "shared"
    quick = dict(task="sst2", data_dir=places["glue"], max_train_samples=8, max_eval_samples=8, epochs=1,
                 batch_size=8)
    bert_emd.finetune(model=places["teacher"], output=str(output), **quick)
    model_bytes = (output / "model.safetensors").read_bytes()
    with pytest.raises(BertEmdError, match="holds a finished `finetune` output for task sst2; choose another "
                                           "output or pass overwrite=True"):  # the Python API's terms
        bert_emd.distill(teacher=places["teacher"], student_layers=2, output=str(output), **quick)
    assert (output / "model.safetensors").read_bytes() == model_bytes  # untouched
    with pytest.raises(BertEmdError, match="output for task sst2"):
        bert_emd.finetune(model=places["teacher"], output=str(output), **{**quick, "task": "rte"})
    bert_emd.distill(teacher=places["teacher"], student_layers=2, output=str(output), overwrite=True, **quick)
    record = json.loads((output / "run_config.json").read_text())
    assert record["command"] == "distill"
    assert (output / "distill_state.json").is_file() and not (output / LOCK_FILE).exists()
    assert os.listdir(output)


def test_a_failed_command_removes_only_the_output_it_created(tmp_path):
    from bert_emd.outputs import claimed_output

    new = tmp_path / "new"
    with pytest.raises(BertEmdError):
        with claimed_output(new, "export"):
            (new / "half.onnx").write_text("partial")
            raise BertEmdError("failed halfway")
    assert not new.exists()
    kept = tmp_path / "kept"
    with pytest.raises(BertEmdError):
        with claimed_output(kept, "export"):
            (kept / "export_report.json").write_text("{}")
            raise BertEmdError("logits differ (report in export_report.json)", keep_output=True)
    assert sorted(p.name for p in kept.iterdir()) == ["export_report.json"]  # the report stays, the lock goes
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(BertEmdError):
        with claimed_output(existing, "finetune"):
            raise BertEmdError("bad label")
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]  # not created here: left as it was
