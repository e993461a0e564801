"""Time estimates for `bert-emd experiment --dry-run`, from the step rates of the runs already recorded.

A student run's time is its planned optimiser steps (training examples / batch size x epochs, per stage;
augmented rows: the augmented file's size, or the originals used x (1 + N) before it exists) times the median
seconds per step of finished runs of the same task and depth (else the same task at any depth scaled by
depth, else the same depth on any task; an experiment with no finished run yet goes by the other
experiments' records in the same results folder, and says so; only those of experiments with the same teacher
model: a 12-layer MPNet teacher steps several times slower than MiniLM-L6). Only records made on the same kind
of device as this machine's are gone by: a GPU's step rate says nothing of a CPU plan, nor the other way round.
A teacher or general student still to train is estimated from the recorded wall-clock of the same task's teacher
(this experiment's, else another's; scaled by epochs and training examples, once per point of a teacher grid) or
of a general student (the same depth, else any). The estimate holds for the machine and threads the records were
made on; it says how many records it used.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from bert_emd.augment.run import manifest_path
from bert_emd.data.loading import DataOptions, resolve_task
from bert_emd.models import count_training_examples
from bert_emd.runinfo import accelerator, read_json


@dataclass
class Rate:
    task: str
    layers: int
    seconds_per_step: float
    accelerator: str  # run_config.json's: "cpu" or the GPU's name (recorded_accelerator)
    method: str = "distill"  # the command that trained it: distill or theseus (one step costs differently)


def recorded_accelerator(run: dict) -> str:
    """run_config.json's accelerator; records written before it was kept name their machine in "platform" only
    (the lent GPU machines' names carry "gpu")."""
    return run.get("accelerator") or ("gpu" if "gpu" in str(run.get("platform", "")) else "cpu")


def same_device_kind(first: str, second: str) -> bool:
    return (first == "cpu") == (second == "cpu")


def recorded_rates(results: Path) -> list[Rate]:
    """Seconds per optimiser step of every finished student record under ``results/runs`` (a run trained over
    several sittings by its wall-clock over all of them, see clock.py)."""
    rates = []
    for record in sorted((results / "runs").glob("*/*/seed*/eval_results.json")):
        results_file, run = read_json(record), read_json(record.parent / "run_config.json")
        if not results_file or not run:
            continue
        train = results_file.get("train") or {}
        # distill: one entry per stage; theseus: one training, its figures at the top
        stages = [stage for stage in train.values() if isinstance(stage, dict)] or [train]
        seconds = sum(stage.get("runtime_s") or 0 for stage in stages)
        steps = sum(stage.get("steps") or 0 for stage in stages)
        clock = read_json(record.parent / "wall_clock.json") or {}
        if (clock.get("sittings") or 1) > 1:  # resumed: the Trainer's runtime is its last sitting's only
            seconds = clock.get("seconds") or 0
        if seconds > 0 and steps > 0:
            method = "theseus" if run.get("command") == "theseus" else "distill"
            layers = run["config"].get("successor_layers" if method == "theseus" else "student_layers")
            rates.append(Rate(results_file.get("task", record.parts[-4]), layers, seconds / steps,
                              recorded_accelerator(run), method))
    return rates


def seconds_per_step(rates: list[Rate], task: str, layers: int, others: list[Rate] = (),
                     kind: str = "") -> tuple[float | None, str]:
    """The median rate of this experiment's runs of the task and depth, else of the task scaled by depth (its
    sequence lengths matter more than the depth), else the same from the other experiments' records (``others``),
    else runs of that depth on other tasks (this experiment's, then the others')."""
    borrowed = " (records of other experiments)"
    for pool, note in ((rates, ""), (others, borrowed)):
        same = [rate.seconds_per_step for rate in pool if rate.task == task and rate.layers == layers]
        if same:
            return statistics.median(same), f"{len(same)} {task} L{layers}{kind} run(s){note}"
        scaled = [rate.seconds_per_step * layers / rate.layers for rate in pool if rate.task == task]
        if scaled:
            return statistics.median(scaled), f"{len(scaled)} {task} run(s), scaled by depth{note}"
    for pool, note in ((rates, ""), (others, borrowed)):
        depth = [rate.seconds_per_step for rate in pool if rate.layers == layers]
        if depth:
            return statistics.median(depth), f"{len(depth)} L{layers} run(s) of other tasks{note}"
    return None, "no finished run to go by"


class Estimator:
    def __init__(self, experiment):
        self.experiment = experiment
        self.device = accelerator()  # records of another kind of device are not gone by
        self.rates = self.on_this_device(recorded_rates(experiment.results))
        # where this experiment has no record to go by (a new one, or a task or depth it has not run yet):
        # the records of the other experiments in the same results folder that have the same teacher model
        folders = sorted(experiment.results.parent.glob("*/"))
        self.others = [folder for folder in folders if folder != experiment.results
                       and teacher_model_of(folder) == experiment.config.teacher_model]
        self.other_rates = self.on_this_device([rate for other in self.others for rate in recorded_rates(other)])
        self._sizes: dict[str, int] = {}
        self._generals: set[Path] = set()

    def on_this_device(self, rates: list[Rate]) -> list[Rate]:
        return [rate for rate in rates if same_device_kind(rate.accelerator, self.device)]

    def training_examples(self, task: str, row) -> int:
        if row.augment is not None:
            path = self.experiment.augmented_file(task, row)
            manifest = read_json(manifest_path(path))
            if manifest and manifest.get("counts", {}).get("written"):
                return int(manifest["counts"]["written"])
            # made from the first max_train_samples originals (see Experiment.student_options)
            return self._used_originals(task) * (1 + int(dict(row.augment).get("num_augmented") or 0))
        return self._used_originals(task)

    def _used_originals(self, task: str) -> int:
        count, cap = self._original_count(task), self.experiment.config.max_train_samples
        return min(count, cap) if cap else count

    def _original_count(self, task: str) -> int:
        if task not in self._sizes:
            options = DataOptions(task=task, data_dir=self.experiment.config.data_dir)
            # rows, sentences or questions (long QA contexts make more windows: a lower bound there)
            self._sizes[task] = count_training_examples(resolve_task(options), options)
        return self._sizes[task]

    def planned_steps(self, task: str, row, seed: int) -> int:
        options = self.experiment.student_options(task, row, seed)
        batch = int(options.get("batch_size") or 32) * int(options.get("gradient_accumulation") or 1)
        per_epoch = math.ceil(self.training_examples(task, row) / batch)
        if options.get("schedule", "joint") == "joint":
            epochs = [float(options.get("epochs") or 3.0)]
        else:
            default = float(options.get("epochs") or 3.0)
            epochs = [float(options.get("intermediate_epochs") or default),
                      float(options.get("prediction_epochs") or default)]
        return sum(math.ceil(per_epoch * value) for value in epochs)

    def student(self, task: str, row, seed: int) -> tuple[float | None, str]:
        method = "theseus" if row.mapping == "theseus" else "distill"
        own = [rate for rate in self.rates if rate.method == method]
        if any(rate.task == task and rate.layers == row.layers for rate in own):  # the same command, task, depth
            rate, source = seconds_per_step(own, task, row.layers, kind=" theseus" if method == "theseus" else "")
        else:
            rate, source = seconds_per_step(self.rates, task, row.layers, self.other_rates)
        steps = self.planned_steps(task, row, seed)
        if rate is None:
            return None, f"{steps} steps; {source}"
        extra, note = 0.0, ""
        folder = self.experiment.general_dir(row) if row.general is not None else None
        if folder is not None and folder not in self._generals and \
                not (folder / "general_distill_results.json").is_file():
            self._generals.add(folder)  # made once, for the first run that needs it
            extra, note = self.general(row)
            if extra is None:
                return None, f"{steps} steps x {rate:.2f} s from {source} + the general stage ({note})"
            note = f" + the general stage ({note})"
        return rate * steps + extra, f"{steps} steps x {rate:.2f} s from {source}" + note

    def general(self, row) -> tuple[float | None, str]:
        """The recorded wall-clock of general students of the row's depth, else of any depth (unscaled)."""
        for pattern, source in ((f"L{row.layers}-*", f"depth {row.layers}"), ("L*-*", "other depths")):
            paths = (self.experiment.results / "general").glob(f"{pattern}/wall_clock.json")
            records = [read_json(path) for path in paths]
            seconds = [record["seconds"] for record in records if record]
            if seconds:
                return statistics.median(seconds), f"{statistics.median(seconds) / 60:.0f} min from {len(seconds)} " \
                    f"record(s) of {source}"
        return None, "no record"

    def teacher(self, task: str) -> tuple[float | None, str]:
        """The teachers (grid points) of a task still to train, each from a recorded teacher's wall-clock scaled
        by epochs and by the training examples (an experiment that trains on the first max_train_samples only)."""
        left = [(settings, folder) for _, settings, folder in self.experiment.teacher_points_to_train(task)]
        if not left:
            return 0.0, "trained"
        recorded = self.teacher_record(task)
        if recorded is None:
            return None, "no record"
        seconds, epochs, examples, source = recorded
        wanted = [float(self.experiment.teacher_options(task, settings, folder).get("epochs") or 3.0)
                  for settings, folder in left]
        size = self._used_originals(task) / examples if examples else 1.0
        total = sum(seconds * size * value / epochs for value in wanted)
        scaled = [f"{epochs:g} epochs"] if any(value != epochs for value in wanted) else []
        scaled += [f"{examples} examples"] if size != 1.0 else []
        count = f"{len(left)} grid point(s) from " if self.experiment.teacher_grid(task) else ""
        return total, count + source + (f" ({', '.join(scaled)}), scaled" if scaled else "")

    def teacher_record(self, task: str) -> tuple[float, float, int | None, str] | None:
        """(seconds, epochs, training examples, where from) of this experiment's recorded teacher for the task, else
        that of another experiment with the same teacher model; made on the same kind of device as this machine."""
        own = self.experiment.results / "teachers" / task / "wall_clock.json"
        for path in [own] + [other / "teachers" / task / "wall_clock.json" for other in self.others]:
            record, run = read_json(path), read_json(path.parent / "run_config.json") or {}
            if record and same_device_kind(recorded_accelerator(run), self.device):
                epochs = float((run.get("config") or {}).get("epochs") or 3.0)
                train = (read_json(path.parent / "eval_results.json") or {}).get("train") or {}
                return record["seconds"], epochs, train.get("examples"), "its recorded wall-clock" if path == own \
                    else f"the recorded wall-clock of {path.parents[2].name}'s {task} teacher"
        return None


def teacher_model_of(results: Path) -> str | None:
    """The model an experiment's teachers were fine-tuned from: its experiment_config.json, else its teachers'
    run configs (an experiment that has not written its report yet)."""
    model = ((read_json(results / "experiment_config.json") or {}).get("config") or {}).get("teacher_model")
    if model:
        return model
    for path in sorted(results.glob("teachers/*/run_config.json")):
        model = ((read_json(path) or {}).get("config") or {}).get("model")
        if model:
            return model
    return None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
