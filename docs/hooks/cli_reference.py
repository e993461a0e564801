"""mkdocs hook: the CLI reference page written from the one options definition (the commands' config dataclasses),
so that no option is described twice. The page's placeholder ``<!-- cli-reference -->`` is replaced at build time."""

from __future__ import annotations

import dataclasses
import typing

PLACEHOLDER = "<!-- cli-reference -->"


def _type_name(annotation) -> str:
    from bert_emd.options import _base_type

    kind = _base_type(annotation)
    if typing.get_origin(kind) is list:
        return f"{typing.get_args(kind)[0].__name__} (repeat the flag)"
    return getattr(kind, "__name__", str(kind)).replace("NoneType", "")


def _values(field) -> str:
    from bert_emd.options import _describe_range

    choices = field.metadata.get("choices")
    if choices:
        return ", ".join(f"`{choice}`" for choice in choices)
    return _describe_range(*field.metadata.get("range", (None, None, None)))


def reference() -> str:
    from bert_emd.cli import _commands

    lines = []
    for name, (config_class, _, help_text) in _commands().items():
        hints = typing.get_type_hints(config_class)
        lines += [f"## `bert-emd {name}`", "", help_text[0].upper() + help_text[1:] + ".", "",
                  "| option | type | default | values | what it does |", "|---|---|---|---|---|"]
        for field in dataclasses.fields(config_class):
            if not field.metadata.get("cli", True):
                continue
            default = field.default if field.default is not dataclasses.MISSING else None
            kind = _type_name(hints[field.name])
            flag = f"`--{field.name.replace('_', '-')}`" + (" / `--no-...`" if kind == "bool" else "")
            help_cell = field.metadata.get("help", "").replace("|", "\\|")
            lines.append(f"| {flag} | {kind} | `{default}` | {_values(field)} | {help_cell} |")
        lines.append("")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if PLACEHOLDER in markdown:
        return markdown.replace(PLACEHOLDER, reference())
    return markdown
