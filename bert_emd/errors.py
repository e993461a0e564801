"""The one exception type that the CLI turns into a single readable line."""


class BertEmdError(Exception):
    """A problem with the user's input (file, column, label, task, model path, option).

    The message names what is wrong and where (file, line, column) and is printed by the
    CLI as one line with a non-zero exit, without a traceback.
    """
