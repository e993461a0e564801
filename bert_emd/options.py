"""One definition of every command's options.

Each command's options are a dataclass whose fields carry a default and a help text. The same
class feeds the CLI (``add_options``), a ``--config FILE.yaml|.json`` file (``load_config_file``)
and the Python API (keyword arguments). Precedence: dataclass default < config file < CLI flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from bert_emd.errors import BertEmdError

T = TypeVar("T")


def option(default: Any, help: str, choices: tuple | None = None, cli: bool = True, at_least: float | None = None,
           above: float | None = None, at_most: float | None = None, any_value: bool = False) -> Any:
    """A dataclass field with help text, and what values it takes: choices, or for a number its range
    (``at_least``/``above``/``at_most``; ``any_value=True`` says on purpose that any number goes, e.g. a seed).
    Every source of options (CLI, config file, Python API) is checked against it in ``build_config``."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "cli": cli,
                                                         "range": (at_least, above, at_most), "any_value": any_value})


def _describe_range(at_least, above, at_most) -> str:
    low = f">= {at_least:g}" if at_least is not None else (f"> {above:g}" if above is not None else None)
    high = f"<= {at_most:g}" if at_most is not None else None
    return " and ".join(part for part in (low, high) if part)


def check_value(field: dataclasses.Field, kind: Any, value: Any, optional: bool) -> None:
    """A one-line error when ``value`` is not of the field's type, not among its choices or out of its range."""
    flag = "--" + field.name.replace("_", "-")
    if value is None:
        if optional or field.default is None:
            return
        raise BertEmdError(f"{flag} needs a value")
    if kind is bool:
        if not isinstance(value, bool):
            raise BertEmdError(f"{flag} must be true or false (got {value!r})")
        return
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise BertEmdError(f"{flag} must be a whole number (got {value!r})")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BertEmdError(f"{flag} must be a number (got {value!r})")
        if not math.isfinite(value):
            raise BertEmdError(f"{flag} must be a finite number (got {value!r})")
    if kind is str and not isinstance(value, str):
        raise BertEmdError(f"{flag} must be a string (got {value!r})")
    choices = field.metadata.get("choices")
    if choices and value not in choices:
        raise BertEmdError(f"{flag} must be one of {', '.join(map(str, choices))} (got {value!r})")
    at_least, above, at_most = field.metadata.get("range", (None, None, None))
    if kind in (int, float) and ((at_least is not None and value < at_least) or
                                 (above is not None and value <= above) or (at_most is not None and value > at_most)):
        raise BertEmdError(f"{flag} must be {_describe_range(at_least, above, at_most)} (got {value!r})")


def check_config(config: Any) -> None:
    """Check every field of a built config (type, choices, range)."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        annotation = hints[field.name]
        is_union = isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
        optional = is_union and type(None) in typing.get_args(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)] if is_union else [annotation]
        if len(args) != 1:  # e.g. `str | list`: checked where it is parsed
            continue
        check_value(field, _base_type(annotation), getattr(config, field.name), optional)


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
        limits = _describe_range(*field.metadata.get("range", (None, None, None)))
        if "default:" in help_text or "(default" in help_text:  # the help already says it in words: once only
            help_text = f"{help_text}{' (' + limits + ')' if limits else ''}"
        else:
            help_text = f"{help_text} (default: {default}{'; ' + limits if limits else ''})"
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
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise BertEmdError(f"{path}: a config file must be YAML or JSON text (not UTF-8: {error.reason} at byte "
                           f"{error.start})") from None
    if "\x00" in text:
        raise BertEmdError(f"{path}: a config file must be YAML or JSON text (it holds binary data)")
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
    config = config_class(**values)
    check_config(config)
    return config


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
