"""One definition of every command's options.

Each command's options are a dataclass whose fields carry a default and a help text. The same
class feeds the CLI (``add_options``), a ``--config FILE.yaml|.json`` file (``load_config_file``)
and the Python API (keyword arguments). Precedence: dataclass default < config file < CLI flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from bert_emd.errors import BertEmdError

T = TypeVar("T")


def option(default: Any, help: str, choices: tuple | None = None, cli: bool = True) -> Any:
    """A dataclass field with help text (and optional choices) for the CLI and docs."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "cli": cli})


def _base_type(annotation: Any) -> Any:
    """`int | None` -> int; `bool` -> bool."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def add_options(parser: argparse.ArgumentParser, config_class: type) -> None:
    """Add one ``--flag`` per dataclass field; unset flags stay absent from the namespace."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if not field.metadata.get("cli", True):
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = _base_type(hints[field.name])
        help_text = field.metadata.get("help", "")
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = f"{help_text} (default: {default})"
        kwargs: dict[str, Any] = {"dest": field.name, "default": argparse.SUPPRESS, "help": help_text}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is list:  # a repeatable flag: --model a --model b
            kwargs.update(action="append", type=typing.get_args(kind)[0])
        else:
            kwargs["type"] = kind
            if field.metadata.get("choices"):
                kwargs["choices"] = field.metadata["choices"]
        parser.add_argument(flag, **kwargs)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON mapping of option names (dashes or underscores) to values."""
    path = Path(path)
    if not path.is_file():
        raise BertEmdError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise BertEmdError(f"{path}: config file must end in .yaml, .yml or .json")
    except (json.JSONDecodeError, ValueError) as error:
        raise BertEmdError(f"{path}: not valid {path.suffix[1:].upper()}: {error}".splitlines()[0]) from None
    except Exception as error:  # yaml.YAMLError and friends
        if isinstance(error, BertEmdError):
            raise
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BertEmdError(f"{path}: not valid YAML: {first_line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BertEmdError(f"{path}: config file must hold a mapping of option names to values")
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def build_config(config_class: type[T], values: dict[str, Any] | None = None, source: str = "options") -> T:
    """Make a config from a mapping, naming any unknown option instead of failing in Python."""
    values = dict(values or {})
    known = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise BertEmdError(f"{source}: unknown option(s) {', '.join(unknown)} for {config_class.__name__}")
    return config_class(**values)


def resolve_config(config_class: type[T], config: T | str | Path | dict | None, overrides: dict[str, Any]) -> T:
    """Python API helper: a config object, a config file or a dict, then keyword overrides on top."""
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, config_class):
        base = dataclasses.asdict(config)
    elif isinstance(config, dict):
        base = {key.replace("-", "_"): value for key, value in config.items()}
    else:
        base = load_config_file(config)
    base.update(overrides)
    return build_config(config_class, base, source=str(config) if isinstance(config, (str, Path)) else "options")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
