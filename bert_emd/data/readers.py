"""Read TSV / CSV / JSONL files into columns, with errors that name the file, line and column.

GLUE TSVs contain quote characters inside sentences and MRPC starts with a UTF-8 BOM, so TSV is
read with ``csv.QUOTE_NONE`` and ``utf-8-sig``.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

from bert_emd.data.text_files import json_objects, read_text
from bert_emd.errors import BertEmdError

csv.field_size_limit(sys.maxsize)


@dataclass
class Table:
    """Rows of one file as named columns, with the file line of every row for error messages."""

    path: Path
    columns: dict[str, list]
    line_numbers: list[int]

    def __len__(self) -> int:
        return len(self.line_numbers)

    def column(self, name: str, purpose: str = "column") -> list:
        if name not in self.columns:
            found = ", ".join(repr(c) for c in self.columns)
            hint = _delimiter_hint(self)
            raise BertEmdError(f"{self.path}: {purpose} '{name}' not found (columns: {found}){hint}")
        return self.columns[name]


def _delimiter_hint(table: Table) -> str:
    if len(table.columns) == 1:
        (only,) = table.columns
        for name, char in (("tab", "\t"), ("comma", ","), ("semicolon", ";")):
            if char in only:
                return f"; the header has one column containing a {name}: is the file's delimiter right?"
    return ""


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    raise BertEmdError(f"{path}: unsupported file type '{suffix}' (use .tsv, .csv or .jsonl)")


def read_table(path: str | Path, header_names: tuple[str, ...] | None = None) -> Table:
    """Read a whole file. ``header_names`` is given for files without a header row (CoLA)."""
    path = Path(path)
    if not path.is_file():
        raise BertEmdError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise BertEmdError(f"{path}: file is empty")
    kind = file_format(path)
    if kind == "jsonl":
        return _read_jsonl(path)
    return _read_delimited(path, "\t" if kind == "tsv" else ",", header_names)


def _read_delimited(path: Path, delimiter: str, header_names: tuple[str, ...] | None) -> Table:
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
            header = list(header_names) if header_names else next(reader, None)
            if not header:
                raise BertEmdError(f"{path}: file is empty")
            header = [name.strip() for name in header]
            rows, lines = [], []
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                if len(row) != len(header):
                    raise BertEmdError(
                        f"{path}, line {reader.line_num}: expected {len(header)} fields "
                        f"({'tab' if delimiter == chr(9) else 'comma'}-separated), found {len(row)}"
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as error:
        raise BertEmdError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except csv.Error as error:
        raise BertEmdError(f"{path}: cannot parse as {'TSV' if delimiter == chr(9) else 'CSV'}: {error}") from None
    if not rows:
        raise BertEmdError(f"{path}: no data rows (only a header)")
    columns = {name: [row[i] for row in rows] for i, name in enumerate(header)}
    return Table(path, columns, lines)


def _read_jsonl(path: Path) -> Table:
    records, lines = [], []
    for number, record in json_objects(path, read_text(path)):
        records.append(record)
        lines.append(number)
    if not records:
        raise BertEmdError(f"{path}: file is empty")
    names: list[str] = []
    for record in records:
        names.extend(key for key in record if key not in names)
    columns: dict[str, list] = {name: [] for name in names}
    for record in records:
        for name in names:
            columns[name].append(record.get(name))
    return Table(path, columns, lines)


def check_present(table: Table, name: str) -> list:
    """The column's values; a row where it is missing (JSONL) is an error naming the line."""
    values = table.column(name)
    for value, number in zip(values, table.line_numbers):
        if value is None:
            raise BertEmdError(f"{table.path}, line {number}: field '{name}' is missing")
    return values
