"""The results table: mean and standard deviation over seeds of each task's GLUE metric(s)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from bert_emd.data.tasks import get_task

# The metric(s) GLUE reports per task; a task's score is their mean (as the GLUE average does).
TABLE_METRICS = {"cola": ("matthews_correlation",), "sst2": ("accuracy",), "mrpc": ("f1", "accuracy"),
                 "stsb": ("pearson", "spearman"), "qqp": ("f1", "accuracy"), "mnli": ("accuracy",),
                 "qnli": ("accuracy",), "rte": ("accuracy",), "wnli": ("accuracy",),
                 # entity F1 for taggers; SQuAD's exact match and F1 for readers
                 "conll2003": ("f1",), "squad": ("exact_match", "f1"), "squad_v2": ("exact_match", "f1")}
ATTACK_RESULTS = "attack_results.json"  # `bert-emd attack` run on the record's model (experiment `attack`)
ATTACK_KEYS = {"accuracy_under_attack": "under attack", "attack_success_rate": "attack success"}
SHORT = {"matthews_correlation": "mcc", "accuracy": "acc", "f1": "f1", "pearson": "pearson", "spearman": "spearman",
         "exact_match": "em"}


def percent_rounded_down(share: float) -> float:
    """A share of the teacher (0.9486) in percent rounded down to 0.1 (94.8), so a student that misses a 95% goal
    by a little never reads as meeting it; rounded to 6 decimals first, so a share that is 75% in decimal but
    0.7499999999999999 in binary (accuracies 3/277 against 4/277) stays 75.0."""
    return math.floor(round(share * 1000, 6)) / 10


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation (0 for one value) and the values themselves."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values), "values": values}


def columns(task: str, splits: dict) -> list[tuple[str, str]]:
    """(split, metric) pairs of a task, e.g. MNLI's matched and mismatched accuracy."""
    return [(split, metric) for split in splits for metric in TABLE_METRICS.get(task, ("accuracy",))]


def column_name(task: str, split: str, metric: str) -> str:
    suffix = "" if split == "dev" else "-" + split.replace("dev_", "")
    return f"{get_task(task).display_name}{suffix} {SHORT.get(metric, metric)}"


def task_cell(results: list[dict], task: str) -> dict:
    """One table cell from the eval_results.json of each seed."""
    splits = results[0]["splits"]
    cell: dict = {"metrics": {}}
    per_seed_scores = []
    for result in results:
        values = [result["splits"][split]["metrics"][metric] for split, metric in columns(task, splits)]
        per_seed_scores.append(statistics.fmean(values))
    for split, metric in columns(task, splits):
        cell["metrics"][column_name(task, split, metric)] = spread(
            [result["splits"][split]["metrics"][metric] for result in results])
    cell["score"] = spread(per_seed_scores)
    # seeds whose model answered one class (or value) for every example of a scored split: a constant guess's score
    cell["constant_seeds"] = sum(any("constant_prediction" in entry for entry in result["splits"].values())
                                 for result in results)
    return cell


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def build_table(results_dir: Path, tasks: list[str], rows, latency: dict) -> dict:
    table: dict = {"tasks": tasks, "rows": [], "latency": {key: value for key, value in latency.items()
                                                           if key != "models"},
                   "compute_seconds": {"teachers": 0.0, "students": 0.0}}
    models = latency.get("models", {})
    teacher = models.get("teacher", {})
    teacher_row: dict = {"name": "teacher", "mapping": None, "layers": teacher.get("layers"), "tasks": {},
                         "parameters": teacher.get("parameters")}
    for task in tasks:
        folder = results_dir / "teachers" / task
        if (folder / "eval_results.json").is_file():
            teacher_row["tasks"][task] = task_cell([_read(folder / "eval_results.json")], task)
            teacher_row["tasks"][task].update(attack_cell([folder / ATTACK_RESULTS]))
            # every grid point, and each re-training of the chosen point on another machine
            clocks = sorted(folder.glob("grid/*/wall_clock.json")) + \
                sorted(folder.glob("retrained/*/*/wall_clock.json"))
            clocks = clocks or [folder / "wall_clock.json"]
            table["compute_seconds"]["teachers"] += sum(_read(path)["seconds"] for path in clocks if path.is_file())
    table["rows"].append(teacher_row | _speed(teacher or None))
    for row in rows:
        entry = {"name": row.name, "mapping": row.mapping, "layers": row.layers, "tasks": {}, "parameters": None}
        for task in row.tasks:
            folders = sorted((results_dir / "runs" / task / row.name).glob("seed*/eval_results.json"))
            if not folders:
                continue
            results = [_read(path) for path in folders]
            entry["tasks"][task] = task_cell(results, task)
            entry["tasks"][task]["seeds"] = [path.parent.name.removeprefix("seed") for path in folders]
            entry["tasks"][task].update(attack_cell([path.parent / ATTACK_RESULTS for path in folders]))
            entry["parameters"] = results[0]["parameters"]["student"]
            for path in folders:
                clock = path.parent / "wall_clock.json"
                if clock.is_file():
                    table["compute_seconds"]["students"] += _read(clock)["seconds"]
        table["rows"].append(entry | _speed(models.get(f"L{row.layers}")))
    for entry in table["rows"]:
        scores = [entry["tasks"][task]["score"]["mean"] for task in tasks if task in entry["tasks"]]
        entry["average"] = statistics.fmean(scores) if len(scores) == len(tasks) else None
    return table


def attack_cell(paths: list[Path]) -> dict:
    """Accuracy under attack and attack success rate of the attacked model over the seeds whose record holds an
    attack (none: {}); a figure the attack could not give (no example classified correctly) is left out."""
    found = [_read(path)["models"]["model"] for path in paths if path.is_file()]
    cell = {}
    for key in ATTACK_KEYS:
        values = [result[key] for result in found if result[key] is not None]
        if values:
            cell[key] = spread(values)
    return {"attack": cell} if cell else {}


def attack_columns(table: dict) -> list[tuple[str, str, str]]:
    """(task, key, column name) of every task some row has attack results for."""
    return [(task, key, f"{get_task(task).display_name} {short}") for task in table["tasks"]
            for key, short in ATTACK_KEYS.items()
            if any(key in entry["tasks"].get(task, {}).get("attack", {}) for entry in table["rows"])]


def _speed(measured: dict | None) -> dict:
    if not measured:
        return {"latency_ms": None, "speedup": None}
    return {"latency_ms": measured["p50_ms"], "speedup": measured["speedup"]}


def format_table(table: dict) -> str:
    """Markdown: scores x 100 as mean ± std (n seeds), average of task scores, size and speed."""
    names = []
    for task in table["tasks"]:
        for entry in table["rows"]:
            if task in entry["tasks"]:
                names += [name for name in entry["tasks"][task]["metrics"] if name not in names]
                break
    attacks = attack_columns(table)
    header = ["model", "layers"] + names + [name for _, _, name in attacks] + ["average", "params", "latency ms",
                                                                               "speedup"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    constant = False
    for entry in table["rows"]:
        cells = [entry["name"], str(entry["layers"] or "-")]
        for name in names:
            cell = next((cell for cell in entry["tasks"].values() if name in cell["metrics"]), None)
            found = None if cell is None else cell["metrics"][name]
            mark = "*" if cell is not None and cell.get("constant_seeds") else ""
            constant |= bool(mark)
            if found is None:
                cells.append("-")
            elif found["n"] > 1:
                cells.append(f"{100 * found['mean']:.1f} ± {100 * found['std']:.1f} ({found['n']}){mark}")
            else:
                cells.append(f"{100 * found['mean']:.1f}{mark}")
        for task, key, _ in attacks:
            found = entry["tasks"].get(task, {}).get("attack", {}).get(key)
            cells.append("-" if found is None else f"{100 * found['mean']:.1f}" + (
                f" ± {100 * found['std']:.1f} ({found['n']})" if found["n"] > 1 else ""))
        cells.append(f"{100 * entry['average']:.1f}" if entry.get("average") is not None else "-")
        cells.append(f"{entry['parameters'] / 1e6:.1f}M" if entry.get("parameters") else "-")
        cells.append(f"{entry['latency_ms']:.0f}" if entry.get("latency_ms") else "-")
        cells.append(f"{entry['speedup']:.2f}x" if entry.get("speedup") else "-")
        lines.append("| " + " | ".join(cells) + " |")
    latency = table.get("latency", {})
    if latency:
        lines.append("")
        lines.append(f"Scores x 100 on the dev sets: mean ± standard deviation over seeds (number of seeds); a single "
                     f"number is one run. Latency: p50 of {latency.get('repeats')} PyTorch fp32 forward passes at "
                     f"batch {latency.get('batch_size')} x length {latency.get('length')} with "
                     f"{latency.get('threads')} CPU threads, all models measured in turn in one run.")
    if constant:
        lines.append("")
        lines.append("\\* At least one seed's model answered one class (or one value) for every dev example: the cell "
                     "holds a constant guess's score, not the method's.")
    if attacks:
        lines.append("")
        lines.append("Under attack: accuracy x 100 of the attacked dev examples after the TextFooler-style attack "
                     "(`bert-emd attack`); attack success: the share of the correctly classified ones it flips. "
                     "Every model is attacked on the same seeded examples.")
    return "\n".join(lines)
