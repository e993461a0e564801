"""The one exception type that the CLI turns into a single readable line."""


class BertEmdError(Exception):
    """A problem with the user's input (file, column, label, task, model path, option).

    The message names what is wrong and where (file, line, column) and is printed by the
    CLI as one line with a non-zero exit, without a traceback. ``keep_output=True``: the error
    points at a file the command wrote (e.g. a report), so its output directory is not removed.
    """

    def __init__(self, message: str, keep_output: bool = False):
        super().__init__(message)
        self.keep_output = keep_output
