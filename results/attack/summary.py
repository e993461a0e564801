"""The robustness table: each task's teacher and compressed models under the TextFooler-style attack.

    .venv/bin/python results/attack/summary.py   # prints it and writes results/attack/table.md

Reads the records experiments/attack_table.sh keeps here: TASK/NAME/attack_results.json (`bert-emd attack`; for a
student, with its teacher beside it on the same examples: the transfer both ways). Every figure is on the attacked
examples: clean accuracy on them, accuracy after the attack, success rate (flipped / correctly classified), mean
share of words changed (successful attacks), mean model calls per attacked example. A model whose training record
says it answers one class for every dev example (``constant_prediction``) is marked: it cannot be flipped, so its
attack success says nothing about robustness.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
TASKS = {"sst2": "SST-2 (teacher and students trained on its first 4,000 sentences)", "mrpc": "MRPC", "rte": "RTE"}
MODELS = {"teacher": "teacher (MiniLM-L6, 6 layers)", "int8": "teacher, int8 (dynamic quantisation)",
          "L3-emd": "BERT-EMD, 3 layers", "L3-skip": "skip mapping, 3 layers", "L2-emd": "BERT-EMD, 2 layers",
          "L2-skip": "skip mapping, 2 layers", "theseus-L3": "BERT-of-Theseus, 3 layers",
          "hybrid-2x": "hybrid (pruning + low rank), 2x encoder"}


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _transfer(entry: dict | None) -> str:
    if not entry or not entry["adversarial_examples"]:
        return "-"
    return f"{100 * entry['share']:.1f} ({entry['also_fooled']} / {entry['adversarial_examples']})"


def _constant(value) -> bool:
    """Whether a training record holds a ``constant_prediction`` entry anywhere."""
    if isinstance(value, dict):
        return bool(value.get("constant_prediction")) or any(_constant(item) for item in value.values())
    return isinstance(value, list) and any(_constant(item) for item in value)


def answers_one_class(folder: Path) -> bool:
    return any(_constant(json.loads(path.read_text())) for path in sorted(folder.glob("*_results.json"))
               if not path.name.startswith("attack"))


def task_table(task: str) -> list[str] | None:
    found = {name: json.loads((HERE / task / name / "attack_results.json").read_text()) for name in MODELS
             if (HERE / task / name / "attack_results.json").is_file()}
    if not found:
        return None
    name, first = next(iter(found.items()))
    settings = json.loads((HERE / task / name / "attack_run_config.json").read_text())["config"]
    lines = [f"### {TASKS[task]}", "",
             f"{len(first['examples'])} {settings['split']} examples (subset seed {settings['seed']}); perturbed: "
             f"{first['perturbed_text']}.", "",
             "| model | clean accuracy | under attack | attack success | words changed | queries | "
             "teacher's adversarial examples that fool it | its adversarial examples that fool the teacher |",
             "|---|---|---|---|---|---|---|---|"]
    constant = [name for name in found if answers_one_class(HERE / task / name)]
    for name, results in found.items():
        summary = results["models"]["model"]
        transfer = results.get("transfer", {})
        queries = "-" if summary["mean_queries"] is None else f"{summary['mean_queries']:.0f}"
        mark = " *" if name in constant else ""
        lines.append(f"| {MODELS[name]}{mark} | {_percent(summary['clean_accuracy'])} | "
                     f"{_percent(summary['accuracy_under_attack'])} | {_percent(summary['attack_success_rate'])} | "
                     f"{_percent(summary['mean_changed_share'])} | {queries} | "
                     f"{_transfer(transfer.get('teacher_to_model'))} | {_transfer(transfer.get('model_to_teacher'))} |")
    if constant:
        lines += ["", "\\* answers one class for every dev example (its training record's constant_prediction): a "
                  "constant model is never flipped, so its attack success says nothing about robustness."]
    return lines + [""]


def main() -> str:
    parts = []
    for task in TASKS:
        lines = task_table(task)
        if lines:
            parts += lines
    attack = next((json.loads(path.read_text())["attack"] for path in sorted(HERE.glob("*/*/attack_results.json"))),
                  "")
    text = "\n".join([f"Attack: {attack}.", "", *parts]).rstrip() + "\n"
    (HERE / "table.md").write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    print(main())
