"""Paired seed comparisons and layer-weight summaries that the README quotes for the GLUE, SST-2 GPU and recipe tables.

    .venv/bin/python results/seed_comparisons.py   # prints them, writes results/seed_comparisons.json

Reads only committed records: each table's ``table.json`` (per-seed scores, same seed = same data order and
initialisation, hence paired t-tests) and the ``distill_state.json`` weight history of the EMD runs.
"""

import json
from pathlib import Path
from statistics import median

from scipy.stats import ttest_rel

RESULTS = Path(__file__).parent
PAIRS = {  # (row, row it is compared with)
    "glue_table": [("emd-L2", "skip-L2"), ("emd-L2", "last-L2"), ("emd-L2", "none-L2"), ("emd-L3", "skip-L3"),
                   ("emd-L2-wsum", "emd-L2")],
    "sst2_gpu": [("emd-L2", "skip-L2"), ("emd-L2", "last-L2"), ("emd-L2", "none-L2"), ("emd-L3", "skip-L3"),
                 ("emd-L2-init12", "emd-L2"), ("skip-L2-init12", "skip-L2"), ("none-L2-init12", "none-L2"),
                 ("emd-L2-T5", "emd-L2")],
    # the recipe table: the authors' joint recipe on augmented data; pairs appear once both rows have 2 seeds of a task
    "recipe_table": [("emd-L2", "skip-L2"), ("emd-L2", "last-L2"), ("emd-L2", "none-L2"), ("emd-L3", "skip-L3"),
                     ("emd-L3", "last-L3"), ("emd-L3", "none-L3"), ("skip-L3", "none-L3"), ("last-L3", "none-L3"),
                     ("emd-L2-wsum", "emd-L2"), ("emd-L3-wsum", "emd-L3"), ("emd-L3-tinybert", "emd-L3"),
                     ("emd-L3-tinybert", "skip-L3-tinybert"), ("emd-L3-tinybert", "last-L3-tinybert"),
                     ("emd-L2-tinybert", "emd-L2"), ("emd-L2-tinybert", "skip-L2-tinybert"),
                     ("emd-L2-tinybert", "last-L2-tinybert"),
                     # BERT-of-Theseus (the grid's chosen setting) against the distilled students of its depth
                     ("theseus-L3", "emd-L3"), ("theseus-L3", "skip-L3"), ("theseus-L2", "emd-L2")],
}
WEIGHT_RUNS = {"sst2_gpu": ["emd-L2", "emd-L3", "emd-L2-init12", "emd-L2-T5"]}



def _p_value(p: float) -> float:
    """Three decimals, or two significant digits below 0.001 (where three decimals would print 0.0)."""
    return round(float(p), 3) if p >= 0.001 else float(f"{p:.1e}")

def teacher_scores(runs: Path, task: str, row: str, seed) -> dict | None:
    """The dev scores of the teacher a run learned from, as its record states them (None without a record)."""
    record = runs / task / row / f"seed{seed}" / "eval_results.json"
    if not record.is_file():
        return None
    return json.loads(record.read_text()).get("splits", {}).get("dev", {}).get("teacher_metrics")


def paired(table: dict, row: str, other: str, runs: Path | None = None) -> dict:
    """Per task and metric: per-seed differences x 100 on the seeds both rows ran, their mean and paired t p.

    With the table's run records (``runs``), seeds on which the two rows learned from different teachers (a
    teacher re-trained between them) are listed under ``teacher_differs_on_seeds``: there the pair shares data
    order and initialisation but not the teacher, so its difference mixes both.
    """
    rows = {entry["name"]: entry for entry in table["rows"]}
    out = {}
    for task, cell in rows[row]["tasks"].items():
        other_cell = rows[other]["tasks"].get(task)
        if not other_cell:
            continue
        seeds = [seed for seed in cell["seeds"] if seed in other_cell["seeds"]]
        if len(seeds) < 2:
            continue
        differ = [seed for seed in seeds if runs and (runs / task).is_dir()
                  and teacher_scores(runs, task, row, seed) != teacher_scores(runs, task, other, seed)]
        for metric, values in cell["metrics"].items():
            mine = [values["values"][cell["seeds"].index(seed)] for seed in seeds]
            theirs = [other_cell["metrics"][metric]["values"][other_cell["seeds"].index(seed)] for seed in seeds]
            differences = [round(100 * (a - b), 2) for a, b in zip(mine, theirs)]
            out[metric] = {"seeds": seeds, "differences": differences,
                           "mean": round(sum(differences) / len(differences), 2),
                           "p": None if len(set(differences)) == 1 else _p_value(ttest_rel(mine, theirs).pvalue)}
            if differ:
                out[metric]["teacher_differs_on_seeds"] = differ
    return out


def _spread(values: list[float]) -> dict:
    return {"min": round(min(values), 2), "median": round(median(values), 2), "max": round(max(values), 2)}


def weight_summary(state: dict, from_step: int = 200) -> dict:
    """Where the cost-attention weights of the attention terms sit over training (every logged step)."""
    history = [entry for entry in state["history"] if "attention" in entry]
    late = [entry for entry in history if entry["step"] >= from_step]
    after_100 = [entry["attention"]["student_weights"][0] for entry in history if entry["step"] > 100]
    teacher_first = [entry["attention"]["teacher_weights"][0] for entry in history]

    def largest(weights):
        return max(range(len(weights)), key=weights.__getitem__) + 1

    settled = next((entry["step"] for i, entry in enumerate(history)
                    if all(later >= 0.9995 for later in teacher_first[i:])), None)
    return {
        "logged_steps": len(history),
        "student_layer1_min_after_step_100": round(min(after_100), 4),
        f"student_layer1_from_{from_step}": _spread([e["attention"]["student_weights"][0] for e in late]),
        f"teacher_layer1_from_{from_step}": _spread([e["attention"]["teacher_weights"][0] for e in late]),
        "teacher_layer1_at_least_0.9995_from_step": settled,
        f"steps_from_{from_step}": len(late),
        "student_largest_on_layer1": sum(largest(e["attention"]["student_weights"]) == 1 for e in late),
        "student_layer1_at_least_0.99": sum(e["attention"]["student_weights"][0] >= 0.99 for e in late),
        "teacher_largest_layer_counts": {str(layer): sum(largest(e["attention"]["teacher_weights"]) == layer
                                                         for e in late)
                                         for layer in sorted({largest(e["attention"]["teacher_weights"])
                                                              for e in late})},
    }


def main() -> None:
    out: dict = {}
    for name, pairs in PAIRS.items():
        if not (RESULTS / name / "table.json").is_file():  # a table whose report is not built yet (--report-only)
            print(f"{name:10} no table.json yet: build it with `bert-emd experiment --config ... --report-only`")
            continue
        table = json.loads((RESULTS / name / "table.json").read_text())
        names = {entry["name"] for entry in table["rows"]}  # a row the table does not hold yet has no pairs
        out[name] = {"paired": {f"{row} - {other}": paired(table, row, other, RESULTS / name / "runs")
                                   for row, other in pairs if {row, other} <= names}}
        for row in WEIGHT_RUNS.get(name, []):
            for state in sorted((RESULTS / name / "runs").glob(f"*/{row}/seed*/distill_state.json")):
                summary = weight_summary(json.loads(state.read_text()))
                out[name].setdefault("weights", {})[f"{row}/{state.parent.name}"] = summary
    target = RESULTS / "seed_comparisons.json"
    target.write_text(json.dumps(out, indent=1) + "\n")
    for name, found in out.items():
        for pair, metrics in found["paired"].items():
            for metric, result in metrics.items():
                print(f"{name:10} {pair:30} {metric:18} {result['differences']} mean {result['mean']:+.2f} "
                      f"p {result['p']}"
                      + (f" (teachers differ on seeds {result['teacher_differs_on_seeds']})"
                         if "teacher_differs_on_seeds" in result else ""))
        for run, summary in found.get("weights", {}).items():
            print(f"{name:10} {run:22} {json.dumps(summary)}")
    print(f"written to {target}")


if __name__ == "__main__":
    main()
