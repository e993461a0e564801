"""The attack columns of a results table: with ``attack`` options in the experiment config, the teacher and every
student of a classification task are attacked (`bert-emd attack`, the teacher beside each student) on the same
seeded dev examples; the table gets the accuracy under attack and the attack success rate.

The teacher is attacked once per task; each student's attack reads the teacher's adversarial examples from that
run instead of attacking the teacher again (the attack resumes from them), so transfer both ways costs nothing more.
Regression tasks (STS-B) have no label to flip and get no attack columns.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bert_emd.data.tasks import get_task
from bert_emd.experiment.clock import timed
from bert_emd.experiment.table import ATTACK_RESULTS as RESULTS
from bert_emd.runinfo import write_json


def check_attack_options(options) -> None:
    """The experiment's ``attack`` options must be `bert-emd attack` options the runner does not set."""
    from bert_emd.attack.config import check_attack_overrides

    check_attack_overrides(options, "attack", "the experiment runner")


def attacked(task: str) -> bool:
    return not get_task(task).is_regression


class Robustness:
    """Attacks for one experiment (``experiment`` is the runner's Experiment)."""

    def __init__(self, experiment):
        self.experiment = experiment
        self.options = experiment.config.attack

    @property
    def enabled(self) -> bool:
        return self.options is not None

    def teacher_record(self, task: str) -> Path:
        return self.experiment.results / "teachers" / task / RESULTS

    def pending(self, runs: list) -> list:
        """The (task, row, seed) runs of classification tasks whose record has no attack results yet."""
        if not self.enabled:
            return []
        return [run for run in runs if attacked(run[0])
                and not (self.experiment.record_dir(*run) / RESULTS).is_file()]

    def _attack(self, task: str, model: Path, output: Path, teacher: Path | None = None) -> None:
        from bert_emd.attack import attack

        settings = {**self.options, **self.experiment.shared_data_options(), "task": task, "model": str(model),
                    "teacher": str(teacher) if teacher else None, "output": str(output)}
        clock = timed(output, lambda: attack(**settings))
        write_json(output / "wall_clock.json", clock)

    def ensure_teacher(self, task: str) -> Path:
        """The teacher's own attack (once per task); its results also go to the teacher's records."""
        output = self.experiment.work / "attack" / task / "teacher"
        if not (output / RESULTS).is_file():
            print(f"attacking the {task} teacher -> {output}", flush=True)
            self._attack(task, self.experiment.teacher_dir(task), output)
        record = self.teacher_record(task)
        record.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(output / RESULTS, record)
        shutil.copy2(output / "wall_clock.json", record.with_name("attack_wall_clock.json"))
        return output

    def attack_student(self, task: str, row, seed: int) -> None:
        """Attack one finished student with its teacher beside it; the results go to the run's records."""
        model = self.experiment.run_dir(task, row, seed)
        if not (model / "config.json").is_file():
            print(f"  {task} {row.name} seed {seed}: no model in {model} (trained on another machine?); "
                  "not attacked", flush=True)
            return
        teacher_attack = self.ensure_teacher(task)
        output = model / "attack"
        output.mkdir(parents=True, exist_ok=True)
        reused = output / "adversarial_teacher.jsonl"
        if not reused.is_file():  # the teacher's examples: the attack resumes from them instead of repeating them
            shutil.copy2(teacher_attack / "adversarial_model.jsonl", reused)
        print(f"attacking {task} {row.name} seed {seed} -> {output}", flush=True)
        self._attack(task, model, output, teacher=self.experiment.teacher_dir(task))
        record = self.experiment.record_dir(task, row, seed)
        record.mkdir(parents=True, exist_ok=True)
        shutil.copy2(output / RESULTS, record / RESULTS)
        shutil.copy2(output / "wall_clock.json", record / "attack_wall_clock.json")
