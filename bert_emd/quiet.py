"""Drop two start-up messages that are noise on a CPU machine, and only those.

Once torchao is installed (the ``deploy`` extra), transformers' quantizers import it at start-up;
torchao then logs that its CUDA extensions do not load, and torch logs that torchao registers enum
constants the deprecated way. Both would stand before every command's output and before its one-line
errors. Filters on those two loggers drop these messages; every other warning still shows.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager


class DropMessages(logging.Filter):
    def __init__(self, *fragments: str):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


def install() -> None:
    logging.getLogger("torchao").addFilter(DropMessages("Failed to load"))
    logging.getLogger("torch.utils._pytree").addFilter(DropMessages("is an Enum subclass"))


@contextmanager
def expected_new_head():
    """Load a pre-trained encoder into a classifier without transformers' load report: its new task head is
    what is asked for (the report would stand in the middle of a command's own output)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
