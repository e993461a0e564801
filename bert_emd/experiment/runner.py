"""`bert-emd experiment`: teachers, then every student row x seed, then latency, table and plots.

Everything finished is kept and skipped on the next call: a teacher whose folder holds
``eval_results.json`` (trained with the same settings), a student run whose record folder holds one.
An interrupted run resumes from its last checkpoint. Models stay under WORK_DIR/NAME; only the small
records (eval_results.json, distill_state.json, run_config.json, wall_clock.json) go to RESULTS_DIR/NAME.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path

from bert_emd.data.tasks import get_task
from bert_emd.errors import BertEmdError
from bert_emd.experiment.clock import timed
from bert_emd.experiment.config import ExperimentConfig, Row, as_list, check_experiment, select_rows, task_setting
from bert_emd.experiment.robustness import Robustness
from bert_emd.experiment.table import build_table, format_table
from bert_emd.experiment.teacher_grid import choose, dev_score, format_grid, grid_points, point_dir
from bert_emd.options import resolve_config, to_dict
from bert_emd.runinfo import package_versions, read_json, write_json

RECORD_FILES = ("eval_results.json", "distill_state.json", "run_config.json")
TEACHER_RECORDS = ("eval_results.json", "run_config.json", "wall_clock.json")  # a teacher's records (no weights)
# Teacher settings that must match for a finished teacher to be reused.
TEACHER_KEYS = ("model", "task", "learning_rate", "epochs", "batch_size", "seed", "max_length", "max_train_samples",
                "warmup", "weight_decay")


class Experiment:
    def __init__(self, config: ExperimentConfig):
        self.config = config
        self.rows = check_experiment(config)
        self.tasks = [get_task(name).name for name in as_list(config.tasks, str, "--tasks")]
        self.selected = select_rows(self.rows, config.only)  # the rows to train this time
        self.work = Path(config.work_dir) / config.name
        self.results = Path(config.results_dir) / config.name
        self.robustness = Robustness(self)

    # ----- the plan
    def seeds(self, task: str, row: Row | None = None) -> list[int]:
        own = dict(row.task_seeds) if row is not None else {}
        if task in own:
            return list(own[task])
        if row is not None and row.seeds:
            return list(row.seeds)
        return as_list(task_setting(self.config, task, "seeds") or self.config.seeds, int, "--seeds")

    def student_runs(self) -> list[tuple[str, Row, int]]:
        """Every (task, row, seed) of the selected rows, first seeds first: a partial run still gives a whole
        one-seed table."""
        runs = [(task, row, seed) for task in self.tasks for row in self.selected if task in row.tasks
                for seed in self.seeds(task, row)]
        rank = {run: self.seeds(run[0], run[1]).index(run[2]) for run in runs}
        return sorted(runs, key=lambda run: rank[run])  # stable: task and row order kept within a seed rank

    def teacher_grid(self, task: str) -> dict | None:
        """The task's own grid where task_settings name one (null or {}: none), else the experiment's."""
        if "teacher_grid" in ((self.config.task_settings or {}).get(task) or {}):
            return task_setting(self.config, task, "teacher_grid") or None
        return self.config.teacher_grid or None

    def teacher_points(self, task: str) -> list[tuple[str, dict, Path]]:
        """(name, finetune option overrides, folder) of each teacher to train for a task: one without a grid."""
        return [(name, settings, point_dir(self.work / "teachers", task, name))
                for name, settings in grid_points(self.teacher_grid(task))]

    def teacher_dir(self, task: str) -> Path:
        """The task's teacher: with a grid, the best point once every point is trained (before that, the task's
        teacher folder, which holds no model)."""
        summary = self.grid_summary(task)
        return point_dir(self.work / "teachers", task, summary["chosen"]) if summary else self.work / "teachers" / task

    def grid_summary(self, task: str) -> dict | None:
        """Every grid point's settings and dev score and the chosen one; None without a grid or before every point
        has a score (see point_record)."""
        if not self.teacher_grid(task):
            return None
        scored = []
        for name, settings, folder in self.teacher_points(task):
            found = self.point_record(task, name, settings, folder)
            if found is None:
                return None
            scored.append((name, settings, read_json(found / "eval_results.json")))
        return choose(task, scored)

    def point_record(self, task: str, name: str, settings: dict, folder: Path) -> Path | None:
        """The folder whose eval_results.json scores a grid point: its record in this experiment's results (the
        grid's evidence: it stays when the model is trained again on another machine), else its model folder,
        else a teacher record of another experiment in the results folder trained with the same settings. Only
        records whose run_config.json holds the point's settings count. None: the point is still to train."""
        from bert_emd.finetune import FinetuneConfig

        wanted = to_dict(resolve_config(FinetuneConfig, None, self.teacher_options(task, settings, folder)))
        others = [path for path in sorted(self.results.parent.glob(f"*/teachers/{task}"))
                  if path.parent.parent != self.results]
        others += [path for other in others for path in sorted(other.glob("grid/*"))]
        for place in [self.results / "teachers" / task / "grid" / name, folder] + others:
            run = read_json(place / "run_config.json")
            if read_json(place / "eval_results.json") and run and not _different(run.get("config") or {}, wanted):
                return place
        return None

    def teacher_points_to_train(self, task: str) -> list[tuple[str, dict, Path]]:
        """What ensure_teacher will train: the points without a score, or with a grid whose every point is scored,
        the chosen one when its model is not in the work folder; without a grid, the teacher if not trained."""
        points = self.teacher_points(task)
        if not self.teacher_grid(task):
            return [point for point in points if not (point[2] / "eval_results.json").is_file()]
        left = [point for point in points if self.point_record(task, *point) is None]
        summary = None if left else self.grid_summary(task)
        return left + [point for point in points if summary and point[0] == summary["chosen"]
                       and not (point[2] / "eval_results.json").is_file()]

    def run_dir(self, task: str, row: Row, seed: int) -> Path:
        return self.work / task / row.name / f"seed{seed}"

    def record_dir(self, task: str, row: Row, seed: int) -> Path:
        return self.results / "runs" / task / row.name / f"seed{seed}"

    def is_done(self, task: str, row: Row, seed: int) -> bool:
        return (self.record_dir(task, row, seed) / "eval_results.json").is_file()

    # ----- the options of each run
    def shared_data_options(self) -> dict:
        return {"data_dir": self.config.data_dir, "max_train_samples": self.config.max_train_samples,
                "max_eval_samples": self.config.max_eval_samples}

    def teacher_options(self, task: str, settings: dict | None = None, folder: Path | None = None) -> dict:
        return {**(self.config.teacher or {}), **task_setting(self.config, task, "teacher", {}), **(settings or {}),
                **self.shared_data_options(), "model": self.config.teacher_model, "task": task,
                "output": str(folder or self.teacher_dir(task))}

    def student_options(self, task: str, row: Row, seed: int) -> dict:
        options = {**(self.config.distill or {}), **task_setting(self.config, task, "distill", {}), **dict(row.distill),
                   **self.shared_data_options(), "task": task, "teacher": str(self.teacher_dir(task)),
                   "student_layers": row.layers, "mapping": row.mapping, "seed": seed,
                   "output": str(self.run_dir(task, row, seed))}
        if row.augment is not None:  # the augmented file was made from the first max_train_samples originals
            options.update(augmented_train=str(self.augmented_file(task, row)), max_train_samples=None)
        if row.general is not None:
            options["student_init"] = str(self.general_dir(row))
        return options

    def theseus_options(self, task: str, row: Row, seed: int) -> dict:
        """A theseus row: the experiment's training settings (the same budget in optimiser steps as the distilled
        rows), the row's own theseus options, the successor as deep as the row's students."""
        from bert_emd.theseus import TheseusConfig

        known = {field.name for field in dataclasses.fields(TheseusConfig)}
        shared = {key: value for key, value in {**(self.config.distill or {}),
                                                **task_setting(self.config, task, "distill", {})}.items()
                  if key in known}
        options = {**self.student_options(task, row, seed), **shared, **dict(row.distill)}
        for distill_only in ("student_layers", "mapping", *(key for key in list(options) if key not in known)):
            options.pop(distill_only, None)
        return {**options, "successor_layers": row.layers}

    def general_dir(self, row: Row) -> Path:
        """One general student per depth and general-distill settings, shared by every row that asks for it."""
        settings = json.dumps({"general": dict(row.general or ()), "layers": row.layers,
                               "teacher_model": self.config.teacher_model, **self.shared_data_options()},
                              sort_keys=True, default=list)
        return self.work / "general" / f"L{row.layers}-{hashlib.sha1(settings.encode()).hexdigest()[:10]}"

    def ensure_general(self, row: Row) -> None:
        from bert_emd.general_distill import general_distill

        folder = self.general_dir(row)
        if not (folder / "general_distill_results.json").is_file():
            print(f"general distillation of a {row.layers}-layer student -> {folder}", flush=True)
            settings = {key: list(value) if isinstance(value, tuple) else value for key, value in row.general or ()}
            clock = timed(folder, lambda: general_distill(**settings, **self.shared_data_options(),
                                                          teacher=self.config.teacher_model,
                                                          student_layers=row.layers, output=str(folder)))
            write_json(folder / "wall_clock.json", clock)
        record = self.results / "general" / folder.name  # the records, not the weights, go to git
        _copy_records(folder, record, ("general_distill_results.json", "distill_state.json", "run_config.json",
                                       "wall_clock.json"))

    def augmented_file(self, task: str, row: Row) -> Path:
        """One augmented file per task and augmentation settings, shared by every row that asks for them."""
        settings = json.dumps({"augment": dict(row.augment or ()), **self.shared_data_options()}, sort_keys=True)
        return self.work / "augmented" / f"{task}-{hashlib.sha1(settings.encode()).hexdigest()[:10]}.jsonl"

    def ensure_augmented(self, task: str, row: Row) -> None:
        from bert_emd.augment import augment
        from bert_emd.augment.run import manifest_path

        path = self.augmented_file(task, row)
        record = self.results / "augmented" / manifest_path(path).name  # the manifest, not the data, goes to git
        made = not (path.is_file() and manifest_path(path).is_file())
        if made:
            print(f"augmenting {task} -> {path}", flush=True)
            augment(**dict(row.augment or ()), **self.shared_data_options(), task=task, output=str(path),
                    overwrite=True)
        if made or not record.is_file():  # reusing the file keeps the committed manifest of its first making
            record.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(manifest_path(path), record)

    # ----- running
    def ensure_teacher(self, task: str) -> None:
        """Train the task's teacher, or every point of its grid not yet scored and pick the best on the dev set.
        A point scored by a committed record is not trained again, except the chosen one when its model is not in
        the work folder (a new machine): then it is trained again and teaches, its grid record stays as it was."""
        record = self.results / "teachers" / task
        points = self.teacher_points(task)
        if not self.teacher_grid(task):
            self.train_teacher(task, *points[0])
            return
        trained = False
        for name, settings, folder in points:
            found = self.point_record(task, name, settings, folder)
            if found is None or (folder / "eval_results.json").is_file():
                trained |= self.train_teacher(task, name, settings, folder)  # trains it, or reuses the model
            elif found == record / "grid" / name:
                print(f"teacher {task} ({name}): scored by its record {found}", flush=True)
            else:  # another experiment's teacher with the same settings: its records become this point's
                _copy_records(found, record / "grid" / name)
                write_json(record / "grid" / name / "record_of.json", {"record_of": str(found)})
                print(f"teacher {task} ({name}): scored by {found}, trained with the same settings", flush=True)
        summary = self.grid_summary(task)
        name, settings, folder = next(point for point in points if point[0] == summary["chosen"])
        if not (folder / "eval_results.json").is_file():
            print(f"teacher {task}: the chosen point {name} has no model in {folder}; training it again (its grid "
                  "record stays, the table's teacher row is the new model's)", flush=True)
            trained = self.train_teacher(task, name, settings, folder)
            # each re-training (one per new machine) keeps its own record, counted in the teacher compute
            retrained = record / "retrained" / name
            _copy_records(folder, retrained / str(1 + sum(1 for path in retrained.glob("*") if path.is_dir())))
            recorded = next(point["score"] for point in summary["points"] if point["name"] == name)
            print(_against_record(task, dev_score(task, read_json(folder / "eval_results.json")), recorded),
                  flush=True)
        write_json(record / "grid.json", summary)
        (record / "grid.md").write_text(format_grid(summary) + "\n", encoding="utf-8")
        if trained or not (record / "eval_results.json").is_file():
            _copy_records(folder, record)  # the table's teacher row: the model that teaches, as first trained here
        print(f"teacher {task}: grid of {len(points)}, chosen {summary['chosen']}\n{format_grid(summary)}", flush=True)

    def train_teacher(self, task: str, name: str, settings: dict, folder: Path) -> bool:
        """Fine-tune the teacher into ``folder`` unless a model with these settings is there; True if it trained.
        Its records go to git when it trained or has none: reusing a model does not rewrite them."""
        from bert_emd.finetune import FinetuneConfig, finetune

        config = resolve_config(FinetuneConfig, None, self.teacher_options(task, settings, folder))
        label = f"teacher {task}" + (f" ({name})" if name else "")
        reused = (folder / "eval_results.json").is_file()
        if reused:
            self._check_teacher_settings(folder, config)
            print(f"{label}: reusing {folder}", flush=True)
        else:
            print(f"{label}: fine-tuning {config.model} -> {folder}", flush=True)
            write_json(folder / "wall_clock.json", timed(folder, lambda: finetune(config)))
        record = self.results / "teachers" / task / ("grid/" + name if name else "")
        if (reused or name) and (record / "eval_results.json").is_file():
            return not reused  # a grid point's record is the first training's: a model trained again keeps it
        _copy_records(folder, record)
        return not reused

    @staticmethod
    def _check_teacher_settings(folder: Path, config) -> None:
        try:
            recorded = json.loads((folder / "run_config.json").read_text())["config"]
        except (OSError, ValueError, KeyError):
            raise BertEmdError(f"{folder} holds a teacher without a readable run_config.json; remove the folder "
                               "to train it again") from None
        different = _different(recorded, to_dict(config))
        if different:
            raise BertEmdError(f"the teacher in {folder} was trained with other settings: {'; '.join(different)}; "
                               "remove the folder or use another --name / --work-dir")

    def run_student(self, task: str, row: Row, seed: int) -> None:
        from bert_emd.distill import DistillConfig, distill

        if row.augment is not None:
            self.ensure_augmented(task, row)
        if row.general is not None:
            self.ensure_general(row)
        if row.mapping == "theseus":
            from bert_emd.theseus import TheseusConfig, theseus

            config, train = resolve_config(TheseusConfig, None, self.theseus_options(task, row, seed)), theseus
        else:
            config, train = resolve_config(DistillConfig, None, self.student_options(task, row, seed)), distill
        output, record = Path(config.output), self.record_dir(task, row, seed)
        write_json(output / "wall_clock.json", timed(output, lambda: train(config)))
        _copy_records(output, record, RECORD_FILES + ("wall_clock.json",))

    def measure_latency(self) -> dict:
        """Teacher and one finished student per depth, measured in turn in one benchmark run."""
        from bert_emd.deploy.benchmark import benchmark

        models: dict[str, str] = {}
        for task in self.tasks:
            if (self.teacher_dir(task) / "config.json").is_file():
                models["teacher"] = str(self.teacher_dir(task))
                break
        for row in sorted(self.rows, key=lambda row: row.layers):
            key = f"L{row.layers}"
            folders = [self.run_dir(task, row, seed) for task in row.tasks for seed in self.seeds(task, row)]
            for folder in folders:
                if key not in models and (folder / "config.json").is_file():
                    models[key] = str(folder)
        if "teacher" not in models or len(models) < 2:
            return {}
        report = benchmark(model=list(models.values()), backends="torch-fp32",
                           batch_sizes=str(self.config.latency_batch_size), lengths=str(self.config.latency_length),
                           threads=self.config.threads, repeats=self.config.latency_repeats, warmup=3)
        setting = f"batch{self.config.latency_batch_size}_len{self.config.latency_length}"
        latency = {"batch_size": self.config.latency_batch_size, "length": self.config.latency_length,
                   "threads": self.config.threads, "repeats": self.config.latency_repeats, "backend": "torch-fp32",
                   "versions": report["versions"], "models": {}}
        for key, entry in zip(models, report["models"]):
            measured = entry["backends"]["torch-fp32"]["settings"][setting]
            latency["models"][key] = {"model": entry["model"], "layers": entry["layers"],
                                      "parameters": entry["parameters"],
                                      "parameters_without_embeddings": entry["parameters_without_embeddings"],
                                      "p50_ms": measured["p50_ms"], "p90_ms": measured["p90_ms"],
                                      "speedup": measured["speedup_vs_first_model"]}
        return latency

    def run(self) -> dict:
        runs = self.student_runs()
        done = [run for run in runs if self.is_done(*run)]
        print(f"experiment {self.config.name}: {len(self.tasks)} task(s), {len(self.rows)} row(s), {len(runs)} student "
              f"run(s), {len(done)} already finished", flush=True)
        if self.config.dry_run:
            return self.dry_run(runs, done)
        if self.config.report_only:
            return self.finish()
        started = time.time()
        remaining = [run for run in runs if run not in done]
        # attacks need the teacher too: those of runs to train, and of finished runs whose model is here
        to_attack = [run for run in self.robustness.pending(runs)
                     if run in remaining or (self.run_dir(*run) / "config.json").is_file()]
        # teachers first, so that a fault shows early; --teachers-only: those of every task chosen, e.g. to use a
        # finished table's teacher elsewhere
        for task in self.tasks if self.config.teachers_only else self.teacher_tasks(remaining + to_attack):
            self.ensure_teacher(task)
        if self.config.teachers_only:
            ready = ", ".join(f"{task} in {self.teacher_dir(task)}" for task in self.tasks)
            print(f"\nteachers ready: {ready}; {len(remaining)} student run(s) left (--teachers-only)")
            return {"runs": len(runs), "done": len(done)}
        for number, (task, row, seed) in enumerate(remaining, start=1):
            print(f"\n[{number}/{len(remaining)}] {task} {row.name} seed {seed} "
                  f"({(time.time() - started) / 60:.0f} min so far)", flush=True)
            self.run_student(task, row, seed)
        for run in self.robustness.pending(runs):  # the runs just trained, and finished ones not yet attacked
            self.robustness.attack_student(*run)
        if not self.config.report:
            print(f"\n{len(remaining)} run(s) trained; no report (--no-report): build it with --report-only")
            return {"runs": len(runs), "done": len(runs)}
        return self.finish()

    def teacher_tasks(self, remaining: list) -> list[str]:
        """The tasks whose teacher is needed: those with a student run left (a finished task's teacher record
        is what the table shows, so its model need not be there)."""
        needed = {task for task, _, _ in remaining}
        return [task for task in self.tasks if task in needed]

    def dry_run(self, runs: list, done: list) -> dict:
        """List every run, and for those left an estimate of their time from the recorded step rates."""
        from bert_emd.experiment.estimate import Estimator, format_duration

        estimator = Estimator(self)
        total, unknown = 0.0, 0
        for task in self.teacher_tasks([run for run in runs if run not in done]):
            seconds, how = estimator.teacher(task)
            if seconds:
                print(f"  to do  {task:6s} teacher              ~{format_duration(seconds)} ({how})")
            total += seconds or 0.0
            unknown += seconds is None
        for task, row, seed in runs:
            if (task, row, seed) in done:
                print(f"  done   {task:6s} {row.name:20s} seed {seed}")
                continue
            seconds, how = estimator.student(task, row, seed)
            print(f"  to do  {task:6s} {row.name:20s} seed {seed}  ~{format_duration(seconds)} ({how})")
            total += seconds or 0.0
            unknown += seconds is None
        left = len(runs) - len(done)
        if self.robustness.enabled:
            print(f"  attacks: {len(self.robustness.pending(runs))} student run(s) of classification tasks not yet "
                  "attacked (each attack's time is not estimated)")
        note = f"; {unknown} run(s) without an estimate" if unknown else ""
        print(f"estimated time left: {format_duration(total)} for {left} student run(s) and the teachers to train, "
              f"one job at a time at the recorded runs' threads{note}")
        return {"runs": len(runs), "done": len(done), "estimated_seconds": total, "without_estimate": unknown}

    def finish(self) -> dict:
        """Latency, table and plots from every record there is (also after a partial run)."""
        from bert_emd.experiment.plots import plot_all

        write_json(self.results / "experiment_config.json",  # the config this report is built with
                   {"config": to_dict(self.config), "rows": [row.name for row in self.rows],
                    "versions": package_versions()})
        latency = self.measure_latency() if self.config.measure_latency else {}
        if latency:
            write_json(self.results / "latency.json", latency)
        elif (self.results / "latency.json").is_file():
            latency = json.loads((self.results / "latency.json").read_text())
        table = build_table(self.results, self.tasks, self.rows, latency)
        write_json(self.results / "table.json", table)
        markdown = format_table(table)
        (self.results / "table.md").write_text(markdown + "\n", encoding="utf-8")
        print("\n" + markdown)
        plots = plot_all(self.results, table)
        print(f"\nrecords, table.md, table.json and {len(plots)} plot(s) written to {self.results}")
        return table


def _against_record(task: str, again: float | None, recorded: float) -> str:
    """One line: a chosen grid point trained again (a new machine) against its grid record, by the grid's own dev
    score. Training need not repeat bit for bit on another CPU; its students then learn from a teacher the grid did
    not score."""
    shown = "-" if again is None else f"{100 * again:.2f}"
    if again is not None and round(100 * again, 2) == round(100 * recorded, 2):
        return f"teacher {task}: trained again, dev score {shown} as its grid record"
    return (f"teacher {task}: WARNING: trained again, dev score {shown} against its grid record's "
            f"{100 * recorded:.2f}; its students learn from the model trained again (compare each run's "
            "teacher_metrics)")


def _copy_records(source: Path, target: Path, names=TEACHER_RECORDS) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)


def _different(recorded: dict, wanted: dict) -> list[str]:
    """The teacher settings in which a recorded run_config differs from the wanted ones."""
    return [f"{key} {recorded.get(key)!r} (wanted {wanted[key]!r})" for key in TEACHER_KEYS
            if recorded.get(key) != wanted[key]]


def experiment(config: ExperimentConfig | str | dict | None = None, **overrides) -> dict:
    """Build a results table; see ``ExperimentConfig`` and the module docstring."""
    return Experiment(resolve_config(ExperimentConfig, config, overrides)).run()
