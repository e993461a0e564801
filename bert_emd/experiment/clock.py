"""The wall-clock of a run that may take several sittings (a job killed at the end of a session resumes from
its last checkpoint in the next one).

Each sitting's start and end are kept in ``sittings.json`` in the run's folder. A sitting that did not
finish counts up to its newest checkpoint: the steps after that checkpoint are trained again, and counted, in the
next sitting. The time between sittings does not count. So the recorded seconds are those that made the model,
one sitting or several, and seconds per step stay comparable between runs.
"""

from __future__ import annotations

import time
from pathlib import Path

from bert_emd.runinfo import read_json, write_json


def sittings_file(folder: Path) -> Path:
    return folder / "sittings.json"


def _newest_checkpoint(folder: Path) -> float | None:
    times = [path.stat().st_mtime for path in folder.rglob("checkpoint-*") if path.is_dir()] if folder.is_dir() else []
    return max(times, default=None)


def timed(folder: Path, train) -> dict:
    """Run ``train()`` for the run in ``folder`` and return its wall-clock record over every sitting so far."""
    folder = Path(folder)
    path = sittings_file(folder)
    sittings = (read_json(path) or {}).get("sittings", [])
    if sittings and sittings[-1]["end"] is None:  # killed: its work is what its newest checkpoint kept
        start, kept = sittings[-1]["start"], _newest_checkpoint(folder)
        sittings[-1]["end"] = kept if kept is not None and kept > start else start
    sittings.append({"start": time.time(), "end": None})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"sittings": sittings})
    train()
    sittings[-1]["end"] = time.time()
    write_json(path, {"sittings": sittings})
    record = {"seconds": sum(sitting["end"] - sitting["start"] for sitting in sittings)}
    if len(sittings) > 1:
        record.update(sittings=len(sittings), note="summed over sittings; a killed sitting counts up to its last "
                                                   "checkpoint, the time between sittings does not count")
    return record
