"""Checkpoints that are complete or absent, and resuming from the newest complete one.

The Trainer writes ``checkpoint-N/`` file by file; a run stopped (Ctrl-C, a kill) while one is being written
leaves a folder that looks like a checkpoint but lacks files or holds truncated ones. So each checkpoint gets
a marker, written last (after every callback's ``on_save``), that lists the size of every file in it. Resuming
takes the newest checkpoint whose marker matches its files and whose trainer state reads; newer ones that do
not are removed with one line each (an interrupted write, or a damaged file). A folder without a marker is
incomplete. Rotation (``save_total_limit``) runs only after a checkpoint was fully written, so an older complete
checkpoint is still there when the newest write was cut short.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

COMPLETE_MARKER = "checkpoint_complete.json"
_NUMBERED = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def write_marker(folder: Path) -> None:
    """Record every file of a fully written checkpoint with its size; written to a temporary name, then renamed."""
    files = {str(path.relative_to(folder)): path.stat().st_size for path in sorted(folder.rglob("*"))
             if path.is_file() and path.name != COMPLETE_MARKER}
    temporary = folder / f".{COMPLETE_MARKER}.tmp"
    temporary.write_text(json.dumps({"files": files}, indent=1))
    os.replace(temporary, folder / COMPLETE_MARKER)


def why_unusable(folder: Path) -> str | None:
    """None for a complete checkpoint, else what is wrong with it."""
    marker = folder / COMPLETE_MARKER
    if not marker.is_file():
        return "incomplete: its write was interrupted"
    try:
        files = json.loads(marker.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"damaged: {COMPLETE_MARKER} does not read"
    for name, size in files.items():
        path = folder / name
        if not path.is_file():
            return f"damaged: {name} is missing"
        if path.stat().st_size != size:
            return f"damaged: {name} has {path.stat().st_size} bytes, {size} were written"
    try:
        json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "damaged: trainer_state.json does not read"
    return None


def numbered_checkpoints(output: Path) -> list[Path]:
    """``checkpoint-N`` folders, oldest (smallest N) first."""
    if not output.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in output.iterdir()
             if path.is_dir() and (match := _NUMBERED.match(path.name))]
    return [path for _, path in sorted(found)]


def newest_complete_checkpoint(output: Path) -> Path | None:
    """The checkpoint to resume from; unusable newer ones are removed, each with one line on stderr."""
    for folder in reversed(numbered_checkpoints(output)):
        problem = why_unusable(folder)
        if problem is None:
            return folder
        print(f"warning: {folder} is {problem}; removed, resuming from the one before it if there is one",
              file=sys.stderr)
        shutil.rmtree(folder, ignore_errors=True)
    return None


def remove_all(output: Path) -> None:
    for folder in numbered_checkpoints(output):
        shutil.rmtree(folder, ignore_errors=True)


class MarkCompleteCheckpoints(TrainerCallback):
    """Writes the marker of each checkpoint once it is whole. Put it last: other callbacks' ``on_save`` add files."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if folder.is_dir():
                write_marker(folder)
        return control
