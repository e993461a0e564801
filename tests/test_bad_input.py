"""Every bad input ends the command with exit code 2 and one readable line naming the problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from bert_emd.cli import main


def run_cli(capsys, *argv):
    capsys.readouterr()  # drop what the test's own set-up printed
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err.strip()


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _sst2_dir(tmp_path, train_text):
    folder = tmp_path / "glue" / "SST-2"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text(train_text, encoding="utf-8")
    (folder / "dev.tsv").write_text("sentence\tlabel\nfine\t1\n", encoding="utf-8")
    return tmp_path / "glue"


def test_unknown_task(capsys, tmp_path):
    code, err = run_cli(capsys, "finetune", "--task", "sst3", "--data-dir", str(tmp_path), "--output", str(tmp_path))
    assert_one_line_error(code, err, "unknown task 'sst3'", "SST-2")


def test_missing_train_file(capsys, tmp_path):
    missing = tmp_path / "nope.csv"
    code, err = run_cli(capsys, "finetune", "--train-file", str(missing), "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, "file not found", str(missing))


def test_empty_file(capsys, tmp_path):
    empty = tmp_path / "train.csv"
    empty.write_text("")
    code, err = run_cli(capsys, "finetune", "--train-file", str(empty), "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, str(empty), "empty")


def test_missing_column(capsys, tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\ngood,1\n")
    code, err = run_cli(capsys, "finetune", "--train-file", str(path), "--text-columns", "review",
                        "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, str(path), "'review' not found", "'text'")


def test_label_not_in_task_label_set(capsys, tmp_path):
    data = _sst2_dir(tmp_path, "sentence\tlabel\ngood\t1\nbad\t0\nodd\t2\n")
    code, err = run_cli(capsys, "finetune", "--task", "sst2", "--data-dir", str(data), "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, "train.tsv", "line 4", "label '2'", "(0, 1)")


def test_wrong_delimiter(capsys, tmp_path):
    data = _sst2_dir(tmp_path, "sentence,label\ngood,1\nbad,0\n")
    code, err = run_cli(capsys, "finetune", "--task", "sst2", "--data-dir", str(data), "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, "train.tsv", "delimiter")


def test_row_with_wrong_field_count(capsys, tmp_path):
    data = _sst2_dir(tmp_path, "sentence\tlabel\ngood\t1\nbad\t0\textra\n")
    code, err = run_cli(capsys, "finetune", "--task", "sst2", "--data-dir", str(data), "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, "train.tsv", "line 3", "expected 2 fields", "found 3")


def test_bad_json_line(capsys, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": \n')
    code, err = run_cli(capsys, "finetune", "--train-file", str(path), "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, str(path), "line 2", "not valid JSON")


def test_model_path_does_not_exist(capsys, glue_dir, tmp_path):
    code, err = run_cli(capsys, "evaluate", "--model", "./no/such/model", "--task", "sst2", "--data-dir", str(glue_dir))
    assert_one_line_error(code, err, "model path does not exist", "./no/such/model")


def test_model_without_task_head(capsys, glue_dir, tiny_bert):
    code, err = run_cli(capsys, "evaluate", "--model", str(tiny_bert), "--task", "sst2", "--data-dir", str(glue_dir))
    assert_one_line_error(code, err, "no sequence-classification head", "BertModel")


def test_model_with_other_labels(capsys, glue_dir, tiny_bert, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    three = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=3, id2label={0: "entailment", 1: "neutral", 2: "contradiction"},
        label2id={"entailment": 0, "neutral": 1, "contradiction": 2})
    three.save_pretrained(tmp_path / "mnli_model")
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(tmp_path / "mnli_model")
    code, err = run_cli(capsys, "evaluate", "--model", str(tmp_path / "mnli_model"), "--task", "rte",
                        "--data-dir", str(glue_dir))
    assert_one_line_error(code, err, "predicts 3 label(s)", "RTE has 2")


def test_unknown_option_in_config_file(capsys, tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"task": "sst2", "learnin_rate": 1e-4}))
    code, err = run_cli(capsys, "finetune", "--config", str(config))
    assert_one_line_error(code, err, str(config), "unknown option(s) learnin_rate")


def test_missing_output(capsys, glue_dir):
    code, err = run_cli(capsys, "finetune", "--task", "sst2", "--data-dir", str(glue_dir))
    assert_one_line_error(code, err, "--output is required")


def test_console_entry_point_prints_no_traceback(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "bert_emd", "finetune", "--task", "nope", "--output", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("bert-emd finetune: error: unknown task 'nope'; known GLUE tasks: CoLA, SST-2, "
                                     "MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI (or give your own files with "
                                     "--train-file)")


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU, fp16 is allowed")
def test_fp16_on_cpu(capsys, glue_dir, tmp_path):
    code, err = run_cli(capsys, "finetune", "--task", "sst2", "--data-dir", str(glue_dir), "--output",
                        str(tmp_path), "--precision", "fp16")
    assert_one_line_error(code, err, "fp16 needs a CUDA GPU")


def test_python_api_errors_name_the_argument(tiny_teacher, glue_dir, tmp_path):
    """The same check as the command line's, in the caller's terms: keyword arguments, not flags."""
    import bert_emd
    from bert_emd.errors import BertEmdError

    with pytest.raises(BertEmdError) as raised:
        bert_emd.distill(teacher=str(tiny_teacher), task="sst2", data_dir=str(glue_dir), student_layers=2,
                         student_init="teacher:5,9", output=str(tmp_path / "a"))
    assert "student_init=teacher:5,9" in str(raised.value) and "--" not in str(raised.value)
    with pytest.raises(BertEmdError, match=r"^student_layers must be >= 1 \(got 0\)$"):
        bert_emd.distill(teacher=str(tiny_teacher), student_layers=0, output=str(tmp_path / "b"))
    with pytest.raises(BertEmdError, match="^output is required"):
        bert_emd.finetune(task="sst2", data_dir=str(glue_dir))
    with pytest.raises(BertEmdError, match="max_length=1000 is more than"):
        bert_emd.finetune(model=str(tiny_teacher), task="sst2", data_dir=str(glue_dir), max_length=1000,
                          output=str(tmp_path / "c"))
    from bert_emd.api import in_python_terms

    assert in_python_terms("use --no-resume or --data-dir ../x (see --bogus)", {"resume", "data_dir"}) == \
        "use resume=False or data_dir=../x (see --bogus)"
