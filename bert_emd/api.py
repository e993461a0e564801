"""The Python API: each command as a function of its options. Errors raised through it name the keyword argument
(``student_init=``) where the command line's say the flag (``--student-init``)."""

from __future__ import annotations

import dataclasses
import functools
import re

from bert_emd.errors import BertEmdError

# a flag, and the space before a value that follows it: a number, quote, path, placeholder (S, MS) or a word with
# punctuation inside (teacher:5,9)
FLAG = re.compile(r"--(no-)?([a-z][a-z0-9]*(?:-[a-z0-9]+)*)( (?=[0-9'\"/.~A-Z]|[a-z][\w-]*[:,=/.]\S))?")


def in_python_terms(message: str, names: set[str], switches: set[str] = frozenset()) -> str:
    """``--max-length 1000`` -> ``max_length=1000``, ``--output is required`` -> ``output is required``,
    ``--no-resume`` -> ``resume=False``, ``--overwrite`` (a switch) -> ``overwrite=True``, for the config's fields;
    other text is left as it is."""
    def replace(match: re.Match) -> str:
        name = match.group(2).replace("-", "_")
        if name not in names:
            return match.group(0)
        if match.group(1):
            return f"{name}=False"
        if name in switches:
            return f"{name}=True" + (" " if match.group(3) else "")
        return f"{name}=" if match.group(3) else name

    return FLAG.sub(replace, message)


def python_api(function, config_class: type):
    import typing

    hints = typing.get_type_hints(config_class)
    names = {field.name for field in dataclasses.fields(config_class)}
    switches = {name for name in names if hints[name] is bool}

    @functools.wraps(function)
    def call(config=None, **overrides):
        try:
            return function(config, **overrides)
        except BertEmdError as error:
            message = in_python_terms(str(error), names, switches)
            if message == str(error):
                raise
            raise type(error)(message, keep_output=error.keep_output) from None

    return call
