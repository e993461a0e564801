"""A user's text files read in one way: UTF-8 (a byte-order mark dropped) and JSON lines, each fault one error that
names the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from bert_emd.errors import BertEmdError


def read_text(path: str | Path) -> str:
    """The text of an existing file; one that is not UTF-8 is an error naming the byte."""
    path = Path(path)
    if not path.is_file():
        raise BertEmdError(f"file not found: {path}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise BertEmdError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def json_objects(path: str | Path, text: str, expected: str = "a JSON object") -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of ``text``; a line that is not valid JSON, or not an object,
    is an error naming it (``expected`` says what such a line should hold)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise BertEmdError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise BertEmdError(f"{path}, line {number}: expected {expected} per line")
        yield number, record
