"""Safe outputs: one writer per output directory, no silent overwrite of another command's finished output.

``@writes_output(command, ConfigClass)`` wraps a command's Python function (and so its CLI):

- ``--output`` that is a file, or lies under a file: one-line error;
- a lock file ``.bert-emd.lock`` (process id, command) while the command runs; a second writer is refused
  while the first is alive (a lock left by a killed process is taken over);
- an output holding a finished run (``run_config.json``) of another command, or of the same command on
  another task, is refused unless ``--overwrite`` (which empties it first); the same command and task
  resumes from its checkpoints as before;
- when the command fails with a one-line error in a directory it created, the directory is removed, so
  nothing half-made is left that looks like an output.

Under torchrun only rank 0 takes the lock.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from bert_emd.errors import BertEmdError
from bert_emd.options import resolve_config

LOCK_FILE = ".bert-emd.lock"


def check_not_under_file(path: Path) -> None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                where = "is a file" if candidate == path else f"lies under {candidate}, which is a file"
                raise BertEmdError(f"--output {path} {where}; give a directory")
            return


def make_directory(path: Path, flag: str = "--output") -> None:
    """``mkdir -p``, with a place that cannot hold a directory (read-only, /proc, no permission) in one line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BertEmdError(f"cannot create {flag} {path}: {error.strerror or error}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise BertEmdError(f"cannot write to {flag} {path}: permission denied")


def check_output_file(output: str | Path, flag: str = "--output") -> None:
    """A results file to be written after a long measurement: refuse now what would fail then (its folder is
    made now)."""
    path = Path(output)
    if path.is_dir():
        raise BertEmdError(f"{flag} {path} is a directory; give a file name (e.g. {path / 'results.json'})")
    check_not_under_file(path.parent)
    make_directory(path.parent, flag)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _take_lock(path: Path, command: str) -> Path:
    lock = path / LOCK_FILE
    try:
        handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            holder = json.loads(lock.read_text())
        except (OSError, ValueError):
            holder = {}
        pid = holder.get("pid")
        if isinstance(pid, int) and pid != os.getpid() and _alive(pid):
            raise BertEmdError(f"--output {path} is being written by another bert-emd command ({holder.get('command')}"
                               f", process {pid}); wait for it or choose another --output") from None
        handle = os.open(lock, os.O_WRONLY | os.O_TRUNC)  # left by a process that is gone: take it over
    with os.fdopen(handle, "w") as file:
        json.dump({"pid": os.getpid(), "command": command}, file)
    return lock


def _task_key(task: str) -> str:
    return str(task).lower().replace("-", "")


def _check_finished(path: Path, command: str, task: str | None, overwrite: bool) -> None:
    record = path / "run_config.json"
    if not record.is_file():
        return
    try:
        previous = json.loads(record.read_text())
    except (OSError, ValueError):
        previous = {}
    other_command = previous.get("command") != command
    other_task = bool(task and previous.get("task") and _task_key(previous["task"]) != _task_key(task))
    if not (other_command or other_task):
        return
    if not overwrite:
        what = f"`{previous.get('command', 'unknown')}`" + (f" output for task {previous['task']}"
                                                             if previous.get("task") else " output")
        raise BertEmdError(f"--output {path} holds a finished {what}; choose another --output or pass --overwrite "
                           "to replace it")
    for entry in path.iterdir():
        if entry.name != LOCK_FILE:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


@contextmanager
def claimed_output(output: str | Path | None, command: str, task: str | None = None, overwrite: bool = False):
    if output is None or int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    path = Path(output)
    check_not_under_file(path)
    created = not path.exists()
    make_directory(path)
    lock = _take_lock(path, command)
    try:
        _check_finished(path, command, task, overwrite)
        yield
    except BertEmdError as error:
        if created and not error.keep_output:
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        lock.unlink(missing_ok=True)


def writes_output(command: str, config_class: type):
    """Decorator of a command function ``fn(config=None, **overrides)`` that writes ``config.output``."""
    def wrap(function):
        @functools.wraps(function)
        def run(config=None, **overrides):
            resolved = resolve_config(config_class, config, overrides)
            with claimed_output(getattr(resolved, "output", None), command, getattr(resolved, "task", None),
                                getattr(resolved, "overwrite", False)):
                return function(resolved)
        return run
    return wrap
