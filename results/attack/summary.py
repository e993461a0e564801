"""The robustness table: each task's teacher and compressed models under the TextFooler-style attack.

    .venv/bin/python results/attack/summary.py   # from the repository root: prints it, writes results/attack/table.md

Reads the records experiments/attack_table.sh keeps here: TASK/NAME/attack_results.json (`bert-emd attack`; for a
student, with its teacher beside it on the same examples: the transfer both ways). Every figure is on the attacked
examples: clean accuracy on them, accuracy after the attack, success rate (flipped / correctly classified), mean
share of words changed (successful attacks), mean model calls per attacked example. A model whose training record
says it answers one class for every dev example (``constant_prediction``) is marked: it cannot be flipped, so its
attack success says nothing about robustness. For MRPC (F1 and accuracy recorded) a line gives how many dev pairs each
model labels a paraphrase, derived from its record's dev F1 and accuracy and the dev file's gold labels (a model
near one class is hard to flip for that reason, not for robustness).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).parent
GLUE = Path("../shared/glue")  # the GLUE TSVs beside the repository (run from its root), read in place
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


def dev_metrics(folder: Path) -> dict | None:
    """The dev metrics of a model's training record (eval_results.json; quantize's: the int8 model's;
    hybrid_results.json)."""
    for name in ("eval_results.json", "hybrid_results.json"):
        if (folder / name).is_file():
            dev = json.loads((folder / name).read_text()).get("splits", {}).get("dev", {})
            return dev.get("metrics") or dev.get("int8")
    return None


def predicted_positives(metrics: dict, examples: int, positives: int) -> int:
    """Examples labelled positive, from F1 = 2 TP / (PP + P) and accuracy = (2 TP + N - P - PP) / N."""
    f1, accuracy = metrics["f1"], metrics["accuracy"]
    return round((f1 * positives + examples - positives - accuracy * examples) / (1 - f1))


def mrpc_answers(names) -> str | None:
    """How many of MRPC's dev pairs each model labels a paraphrase (label 1)."""
    path = GLUE / "MRPC" / "dev.tsv"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8-sig") as handle:
        labels = [row["Quality"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    counts = []
    for name in names:
        metrics = dev_metrics(HERE / "mrpc" / name)
        if metrics and {"f1", "accuracy"} <= set(metrics):
            counts.append(f"{MODELS[name]} {predicted_positives(metrics, len(labels), labels.count('1'))}")
    return (f"Dev pairs labelled paraphrase, of {len(labels)} ({labels.count('1')} are): " + "; ".join(counts)
            + " (from each training record's dev F1 and accuracy).") if counts else None


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
    answers = mrpc_answers(found) if task == "mrpc" else None
    if answers:
        lines += ["", answers]
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
