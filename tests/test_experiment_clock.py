"""The wall-clock of a run over sittings: a killed sitting counts up to its newest checkpoint, the time between
sittings does not count."""

from __future__ import annotations

import json
import os

import pytest

from bert_emd.experiment import clock


class FakeTime:
    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


def test_one_sitting_is_its_duration(tmp_path, monkeypatch):
    fake = FakeTime(1000.0)
    monkeypatch.setattr(clock.time, "time", fake.time)

    def train():
        fake.now += 42.0

    assert clock.timed(tmp_path / "run", train) == {"seconds": 42.0}


def test_a_killed_sitting_counts_up_to_its_last_checkpoint(tmp_path, monkeypatch):
    fake = FakeTime(1000.0)
    monkeypatch.setattr(clock.time, "time", fake.time)
    run = tmp_path / "run"

    def killed():
        (run / "checkpoint-500").mkdir(parents=True)
        os.utime(run / "checkpoint-500", (1300.0, 1300.0))  # saved 300 s in
        fake.now = 1400.0  # killed 100 s after the checkpoint: those steps are trained again
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        clock.timed(run, killed)
    fake.now = 5000.0  # the next session

    def rest():
        fake.now += 200.0

    record = clock.timed(run, rest)
    assert record["seconds"] == pytest.approx(300.0 + 200.0) and record["sittings"] == 2
    sittings = json.loads(clock.sittings_file(run).read_text())["sittings"]
    assert sittings == [{"start": 1000.0, "end": 1300.0}, {"start": 5000.0, "end": 5200.0}]


def test_a_killed_sitting_without_a_new_checkpoint_counts_nothing(tmp_path, monkeypatch):
    fake = FakeTime(1000.0)
    monkeypatch.setattr(clock.time, "time", fake.time)
    run = tmp_path / "run"
    (run / "checkpoint-100").mkdir(parents=True)
    os.utime(run / "checkpoint-100", (900.0, 900.0))  # from an earlier sitting that has no record

    def killed():
        fake.now = 1500.0
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        clock.timed(run, killed)
    fake.now = 2000.0

    def rest():
        fake.now += 10.0

    assert clock.timed(run, rest)["seconds"] == pytest.approx(10.0)
