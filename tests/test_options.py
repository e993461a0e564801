"""One definition of options: dataclass defaults < config file < CLI flags, and the Python API."""

from __future__ import annotations

import json

import pytest

from bert_emd import FinetuneConfig
from bert_emd.cli import _commands, build_parser
from bert_emd.errors import BertEmdError
from bert_emd.options import build_config, load_config_file, resolve_config


def _parse(argv):
    commands = _commands()
    args = vars(build_parser(commands).parse_args(argv))
    args.pop("command")
    return args


def test_cli_flags_override_config_file(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("task: rte\nlearning-rate: 1.0e-4\nepochs: 7\nresume: false\n")
    args = _parse(["finetune", "--config", str(config_file), "--epochs", "2", "--resume"])
    values = load_config_file(args.pop("config"))
    values.update(args)
    config = build_config(FinetuneConfig, values)
    assert config.task == "rte"  # from the file
    assert config.learning_rate == 1e-4  # from the file
    assert config.epochs == 2.0  # the flag beats the file
    assert config.resume is True  # --resume beats resume: false
    assert config.batch_size == FinetuneConfig().batch_size  # default untouched


def test_unset_flags_do_not_hide_file_values():
    args = _parse(["finetune"])
    assert args == {"config": None}


def test_json_config_and_python_overrides(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"task": "cola", "batch_size": 8}))
    config = resolve_config(FinetuneConfig, str(path), {"batch_size": 16})
    assert (config.task, config.batch_size) == ("cola", 16)


def test_bad_config_files(tmp_path):
    broken = tmp_path / "run.yaml"
    broken.write_text("task: [unclosed\n")
    with pytest.raises(BertEmdError, match="not valid YAML"):
        load_config_file(broken)
    with pytest.raises(BertEmdError, match="must end in"):
        (tmp_path / "run.txt").write_text("x")
        load_config_file(tmp_path / "run.txt")
    with pytest.raises(BertEmdError, match="config file not found"):
        load_config_file(tmp_path / "missing.yaml")


def test_every_field_has_help_text():
    import dataclasses

    from bert_emd.evaluation import EvaluateConfig, PredictConfig

    for config_class in (FinetuneConfig, EvaluateConfig, PredictConfig):
        for field in dataclasses.fields(config_class):
            assert field.metadata.get("help"), f"{config_class.__name__}.{field.name} has no help text"
