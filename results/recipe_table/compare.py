"""The recipe table's rows side by side per task, with what decides whether a layer mapping can matter.

    .venv/bin/python results/recipe_table/compare.py [--work-dir /work/bert-emd-runs] [--readme README.md]
    # prints the comparison, writes results/recipe_table/compare.md and compare.json; with --readme, also
    # copies the overview's rows (all but the beta-scaled TinyBERT-shape rows) over the table in that file that
    # starts with the same header line
    .venv/bin/python results/recipe_table/compare.py --results results/recipe_mpnet --work-dir WORK
    # the same for another experiment's records (the MPNet-12 rows): compare.md and compare.json in that folder

First an overview: each row family (emd, skip, ...) against each task and depth. Then, per task, from the
committed records (runs/TASK/ROW/seed*/): the dev score x 100 (MRPC: F1 / accuracy, STS-B: Pearson /
Spearman; with more than one seed their mean and each seed's) and its share of the teacher's record and of the
teacher the runs learned from as they measured it (`teacher_metrics`, at the students' max length); for seed 1: the
optimiser steps, the step of the kept (best) evaluation, and for the joint recipe the share of the
layer terms in the loss: beta * (theta * (attention + hidden) + embedding) against alpha * prediction, each term
averaged over the last quarter of the logs (`train.joint.loss_terms`), and that prediction loss itself. Runs
recorded before loss terms were kept take them from their TensorBoard logs under --work-dir, else from the terms
read there before and kept beside their records (loss_terms_from_tensorboard.json; said so in the table). After
that, every run seed by seed (kept score, share of its own teacher, minutes, lowest / last dev evaluation, the
kept one's step, for EMD rows the student and teacher layer weights of the attention term at the kept
checkpoint and after the last step), how far apart
the rows' dev scores are over their evaluations (every 50 steps) and at how many each row is the higher one, the teacher
each run learned from (Theseus successors included) as the run measured it (a grid point trained again on another
machine may differ from its record), and every teacher grid point with its metrics after each epoch.
"""

import argparse
import json
import re
import statistics
from pathlib import Path

from bert_emd.experiment.table import percent_rounded_down

HERE = Path(__file__).parent
METRICS = {"cola": ["matthews_correlation"], "mrpc": ["f1", "accuracy"], "rte": ["accuracy"],
           "stsb": ["pearson", "spearman"], "sst2": ["accuracy"]}


# a run recorded before distill kept its loss terms: the terms read from its TensorBoard logs, kept beside its
# records since the logs stay in the work folder of the machine that ran it
SAVED_TERMS = "loss_terms_from_tensorboard.json"


def _read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def loss_terms_from_events(folder: Path) -> dict | None:
    """The joint stage's loss terms over the last quarter of logs, from a run's TensorBoard event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values: dict = {}
    for events in sorted((folder / "runs").rglob("events.out.tfevents*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            if tag.startswith("train/loss_"):
                values.setdefault(tag.removeprefix("train/"), {}).update(
                    {event.step: event.value for event in accumulator.Scalars(tag)})
    if not values:
        return None
    out = {}
    for term, by_step in values.items():
        steps = sorted(by_step)
        late = steps[len(steps) - max(1, len(steps) // 4):]
        out[term] = {"last_quarter": statistics.fmean(by_step[step] for step in late)}
    return out


def _late(terms: dict, *names: str) -> float | None:
    """The first of the named loss terms that was logged: its mean over the last quarter of logs."""
    return next((terms[name]["last_quarter"] for name in names if name in terms), None)


def layer_share(terms: dict, config: dict) -> float | None:
    layer = (_late(terms, "loss_attention_emd", "loss_attention") or 0.0) + \
        (_late(terms, "loss_hidden_emd", "loss_hidden") or 0.0)
    weighted = config["beta"] * (config["theta"] * layer + (_late(terms, "loss_embedding") or 0.0))
    prediction = config["alpha"] * (_late(terms, "loss_prediction") or 0.0)
    return weighted / (weighted + prediction) if weighted + prediction > 0 else None


def own_teacher_metrics(task: str, results: dict) -> list[float] | None:
    """The teacher as a run measured it (its eval_results.json: ``results``) on the dev set, at the students' max
    length: the model it learned from (x 100, the task's metrics)."""
    measured = results["splits"]["dev"].get("teacher_metrics")
    return [100 * measured[name] for name in METRICS[task]] if measured else None


def run_entry(task: str, folder: Path, teacher_score: float, work: Path | None) -> dict:
    results, config = _read(folder / "eval_results.json"), _read(folder / "run_config.json")["config"]
    metrics = [100 * results["splits"]["dev"]["metrics"][name] for name in METRICS[task]]
    own_teacher = own_teacher_metrics(task, results)
    stages = results["train"]
    entry = {"seed": int(folder.name.removeprefix("seed")), "metrics": metrics,
             "share_of_teacher": statistics.fmean(metrics) / teacher_score, "teacher_metrics": own_teacher,
             "share_of_own_teacher": statistics.fmean(metrics) / statistics.fmean(own_teacher) if own_teacher else None,
             "schedule": config.get("schedule", "joint"), "layers": config["student_layers"],
             "steps": sum(stage.get("steps") or 0 for stage in stages.values()),
             # counted from the run's start (a two-stage row's prediction stage counts its steps from its own start)
             "best_step": next((stage["best_step"] + (stages["intermediate"]["steps"] if name == "prediction" else 0)
                                for name, stage in stages.items() if stage.get("best_step")), None),
             "minutes": (_read(folder / "wall_clock.json") or {}).get("seconds", 0) / 60}
    if "joint" in stages:
        terms, source = stages["joint"].get("loss_terms"), "record"
        if terms is None and work is not None:
            terms, source = loss_terms_from_events(work / task / folder.parent.name / folder.name), "TensorBoard"
        if terms is None and (folder / SAVED_TERMS).is_file():  # read from TensorBoard on the machine that ran it
            terms, source = _read(folder / SAVED_TERMS)["loss_terms"], "TensorBoard"
        if terms:
            entry.update(loss_terms=terms, loss_terms_from=source,
                         prediction_loss=terms.get("loss_prediction", {}).get("last_quarter"),
                         layer_share=layer_share(terms, config) if config["mapping"] != "none" else None)
    if "intermediate" in stages:  # TinyBERT's shape: layer terms only, then the prediction loss only
        entry["layer_stage_terms"] = stages["intermediate"].get("loss_terms")
        terms = stages.get("prediction", {}).get("loss_terms") or {}
        entry["prediction_loss"] = _late(terms, "loss_prediction")
    evaluations = next((stage["dev_evaluations"] for stage in stages.values() if "dev_evaluations" in stage), [])
    entry["dev_evaluations"] = [100 * evaluation[METRICS[task][0]] for evaluation in evaluations]
    state = _read(folder / "distill_state.json") or {}
    if state.get("mapping") == "emd" and "attention" in state:
        entry["weights"] = {side: [round(value, 3) for value in state["attention"][side]]
                            for side in ("student_weights", "teacher_weights")}
        kept = state["attention"].get("saved_model_weights")  # those of the checkpoint the run kept
        if kept:
            entry["kept_weights"] = {side: [round(value, 3) for value in kept[side]]
                                     for side in ("student_weights", "teacher_weights")}
    return entry


def evaluation_differences(rows: dict, metric: str) -> list[str]:
    """Every two rows of one schedule and depth, on each seed both ran: how far apart their dev scores are over the
    evaluations both made (a two-stage row evaluates in its prediction stage only, whose steps count from its own
    start)."""
    named = {name: {entry["seed"]: entry["dev_evaluations"] for entry in entries if entry["dev_evaluations"]}
             for name, entries in rows.items()}
    kind = {name: (entries[0]["schedule"], entries[0]["layers"]) for name, entries in rows.items()}
    lines = [f"\n{metric} x 100 at every evaluation, between two rows of one schedule and depth on one seed: mean and "
             "largest absolute difference, and at how many evaluations each of the two is higher\n",
             "| rows | seed | evaluations | mean | largest | first higher | second higher |", "|---" * 7 + "|"]
    names = sorted(name for name in named if named[name])
    pairs = [(first, second) for index, first in enumerate(names) for second in names[index + 1:]
             if kind[first] == kind[second]]
    for first, second in pairs:
        for seed in sorted(set(named[first]) & set(named[second])):
            pairs_of_scores = list(zip(named[first][seed], named[second][seed]))
            gaps = [abs(a - b) for a, b in pairs_of_scores]
            lines.append(f"| {first} / {second} | {seed} | {len(gaps)} | {statistics.fmean(gaps):.2f} "
                         f"| {max(gaps):.2f} | {sum(a > b for a, b in pairs_of_scores)} "
                         f"| {sum(b > a for a, b in pairs_of_scores)} |")
    return lines if pairs else []


def runs_by_seed(rows: dict, task: str) -> list[str]:
    """Every run of each row, seed by seed (the row table shows seed 1's details only): its kept dev score to two
    decimals (the best of its dev evaluations), its share of the teacher it learned from, wall clock, its lowest and
    last evaluation of the first metric and the step of the kept one (a kept score far above the run's other
    evaluations is selection on the dev set more than learning, on small dev sets such as RTE's), and for EMD rows
    the layer weights (attention term) of the kept checkpoint and after the last step (a last step can move them
    far: the update follows one batch's costs)."""
    lines = [f"\neach run: dev x 100 kept ({' / '.join(METRICS[task])}; the best evaluation), % of own teacher, "
             f"minutes, {METRICS[task][0]} x 100 over its dev evaluations (lowest, last), the step of the kept one, "
             "EMD weights: student / teacher (attention) of the kept checkpoint and after the last step\n",
             "| row | seed | kept | % of own teacher | min | evaluations | lowest | last | kept at step "
             "| EMD weights, kept | EMD weights, last step |", "|---" * 11 + "|"]
    for name in sorted(rows):
        for entry in rows[name]:
            scores = entry["dev_evaluations"]
            low, last = (f"{min(scores):.2f}", f"{scores[-1]:.2f}") if scores else ("-", "-")
            own = "-" if entry["share_of_own_teacher"] is None else f"{100 * entry['share_of_own_teacher']:.2f}%"
            weights = [f"{found['student_weights']} / {found['teacher_weights']}" if found else "-"
                       for found in (entry.get("kept_weights"), entry.get("weights"))]
            lines.append(f"| {name} | {entry['seed']} | {' / '.join(f'{value:.2f}' for value in entry['metrics'])} "
                         f"| {own} | {entry['minutes']:.0f} | {len(scores)} | {low} | {last} "
                         f"| {entry['best_step']} | {weights[0]} | {weights[1]} |")
    return lines


def layer_stages(rows: dict) -> list[str]:
    """Two-stage rows, seed 1: the layer stage's terms over its last quarter of logs (how closely the student's
    layers follow the teacher's under the row's own mapping; EMD's terms are transport-weighted costs, so they
    compare across mappings only loosely) and the prediction loss over the last quarter of the prediction stage."""
    named = {name: entries[0] for name, entries in rows.items() if entries[0].get("layer_stage_terms")}
    if not named:
        return []
    lines = ["\nTwo-stage rows, seed 1: layer stage terms (last quarter, unweighted) and the prediction stage's "
             "prediction loss (last quarter)\n",
             "| row | attention | hidden | embedding | prediction loss |", "|---" * 5 + "|"]
    for name in sorted(named):
        terms = named[name]["layer_stage_terms"]
        cells = [_late(terms, "loss_attention_emd", "loss_attention"), _late(terms, "loss_hidden_emd", "loss_hidden"),
                 _late(terms, "loss_embedding"), named[name].get("prediction_loss")]
        lines.append(f"| {name} | " + " | ".join("-" if cell is None else f"{cell:.4f}" for cell in cells) + " |")
    return lines


ROW_NAME = re.compile(r"^(?P<mapping>[a-z]+)-L(?P<layers>\d+)(?P<variant>-.+)?$")
FAMILY_ORDER = ["emd", "skip", "last", "none", "emd-wsum"]


def overview(summary: dict) -> list[str]:
    """Every row family (mapping and variant) against every task and depth: the mean of the task's first dev metric
    over the seeds run, the mean share of the teacher and the number of seeds."""
    cells, columns = {}, []
    for task, block in summary.items():
        for row, entries in block["rows"].items():
            match = ROW_NAME.match(row)
            if not match:
                continue
            family, column = match["mapping"] + (match["variant"] or ""), f"{task} L{match['layers']}"
            if column not in columns:
                columns.append(column)
            mean = statistics.fmean(entry["metrics"][0] for entry in entries)
            share = percent_rounded_down(statistics.fmean(entry["share_of_teacher"] for entry in entries))
            cells[family, column] = f"{mean:.1f} ({share:.1f}%) x{len(entries)}"
    families = sorted({family for family, _ in cells},
                      key=lambda name: (FAMILY_ORDER.index(name) if name in FAMILY_ORDER else len(FAMILY_ORDER), name))
    columns.sort(key=lambda column: (column.split()[0], int(column.split()[1][1:])))
    teachers = ", ".join(f"{task} {block['teacher']:.1f}" for task, block in summary.items())
    lines = ["Overview: dev score x 100 (the task's first metric: MCC, F1, accuracy, Pearson), mean over the seeds "
             f"run (share of the teacher's mean metric, rounded down) x seeds; teachers: {teachers}\n",
             "| row | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for family in families:
        lines.append(f"| {family} | " + " | ".join(cells.get((family, column), "-") for column in columns) + " |")
    return lines


def copy_overview(overview_lines: list[str], readme: Path) -> None:
    """Replace the table in `readme` whose header is the overview's header with the overview's rows, leaving out
    the beta-scaled variants (README points to compare.md for them)."""
    header = next(line for line in overview_lines if line.startswith("| row |"))
    rows = [line for line in overview_lines[overview_lines.index(header):]
            if line.startswith("|") and "beta-scaled" not in line]
    text = readme.read_text(encoding="utf-8").splitlines()
    if header not in text:
        raise SystemExit(f"{readme} has no table starting with {header!r}")
    start = end = text.index(header)
    while end < len(text) and text[end].startswith("|"):
        end += 1
    text[start:end] = rows
    readme.write_text("\n".join(text) + "\n", encoding="utf-8")


def teachers_in_runs(task: str, rows: dict) -> list[str]:
    """The teacher each run learned from (distilled rows and Theseus successors), as the run measured it
    (`teacher_metrics`): a chosen grid point trained again on a new machine need not reproduce its record, and rows
    that learned from different teachers are not compared on equal terms."""
    found: dict[str, list[str]] = {}
    for row, entries in sorted(rows.items()):
        for entry in entries:
            key = " / ".join(f"{value:.2f}" for value in entry["teacher_metrics"]) if entry["teacher_metrics"] \
                else "not recorded"
            found.setdefault(key, []).append(f"{row} seed{entry['seed']}")
    metrics = f"{' / '.join(METRICS[task])} x 100 on the dev set at the students' max length"
    if len(found) == 1:
        return [f"\nEvery {task} run learned from the same teacher: {next(iter(found))} ({metrics})"]
    lines = [f"\n{task} runs learned from {len(found)} different teachers ({metrics}):\n",
             "| teacher | runs |", "|---|---|"]
    return lines + [f"| {key} | {', '.join(runs)} |" for key, runs in found.items()]


def grids(results: Path) -> list[str]:
    """Every teacher grid point: its dev metrics (best epoch), the main metric after each epoch, its minutes; then
    each training of the chosen point again on a new machine (`retrained/POINT/N`), which need not match."""
    lines = []
    for grid in sorted((results / "teachers").glob("*/grid")):
        task = grid.parent.name
        lines += [f"\n{task} teacher grid (dev x 100, best epoch; {METRICS[task][0]} after each epoch)\n",
                  "| point | " + " / ".join(METRICS[task]) + " | after each epoch | min | note |", "|---" * 5 + "|"]
        again = sorted(grid.parent.glob("retrained/*/*"), key=lambda path: (path.parent.name, int(path.name)))
        for point in sorted(grid.iterdir()) + again:
            results = _read(point / "eval_results.json")
            metrics = " / ".join(f"{100 * results['splits']['dev']['metrics'][name]:.1f}" for name in METRICS[task])
            epochs = ", ".join(f"{100 * entry[METRICS[task][0]]:.1f}"
                               for entry in results["train"].get("dev_per_epoch") or [])
            clock = _read(point / "wall_clock.json") or {}
            source = _read(point / "record_of.json")
            note = f"record of {source['record_of']}" if source else (
                f"{clock['sittings']} sittings" if clock.get("sittings") else "")
            label = point.name
            if point.parent.parent.name == "retrained":
                label, note = point.parent.name, f"trained again ({point.name})"
            lines.append(f"| {label} | {metrics} | {epochs or '-'} | {clock.get('seconds', 0) / 60:.0f} "
                         f"| {note} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, help="the experiment work folder (for TensorBoard logs)")
    parser.add_argument("--readme", type=Path, help="also copy the overview's rows over this file's overview table")
    parser.add_argument("--results", type=Path, default=HERE,
                        help="the experiment's results folder (runs/, teachers/; its name is the experiment's)")
    arguments = parser.parse_args()
    results = arguments.results
    work = arguments.work_dir / results.name if arguments.work_dir else None
    summary, lines = {}, []
    for task_folder in sorted((results / "runs").iterdir()):
        task = task_folder.name
        teacher = _read(results / "teachers" / task / "eval_results.json")
        teacher_score = statistics.fmean(100 * teacher["splits"]["dev"]["metrics"][name] for name in METRICS[task])
        lines += [f"\n{task} (teacher {teacher_score:.1f})\n",
                  "| row | seeds | dev x 100: mean (each seed) | % of teacher (mean) | % of own teacher (mean) "
                  "| seed 1: steps (best) | layer terms in loss | prediction loss |", "|---" * 8 + "|"]
        summary[task] = {"teacher": teacher_score, "rows": {}}
        successors = {}  # the Theseus rows: no layer terms to weigh (their scores are in table.md), only a teacher
        for row in sorted(task_folder.iterdir()):
            if row.name.startswith("theseus"):
                records = {seed: seed / "eval_results.json" for seed in sorted(row.glob("seed*"))}
                successors[row.name] = [{"seed": int(seed.name.removeprefix("seed")),
                                         "teacher_metrics": own_teacher_metrics(task, _read(record))}
                                        for seed, record in records.items() if record.is_file()]
                continue
            entries = [run_entry(task, seed, teacher_score, work) for seed in sorted(row.glob("seed*"))
                       if (seed / "eval_results.json").is_file()]
            if not entries:
                continue
            summary[task]["rows"][row.name] = entries
            first = entries[0]
            scores = " / ".join(f"{statistics.fmean(e['metrics'][i] for e in entries):.1f}"
                                for i in range(len(first["metrics"])))
            if len(entries) > 1:  # the mean, then each seed's own score
                scores += " (" + ", ".join(" / ".join(f"{value:.1f}" for value in e["metrics"]) for e in entries) + ")"
            share = "-" if first.get("layer_share") is None else f"{100 * first['layer_share']:.1f}%"
            if first.get("layer_stage_terms"):
                share = "layer stage only"
            if first.get("loss_terms_from") == "TensorBoard":
                share += " (TensorBoard)"
            kept = 100 * statistics.fmean(entry["share_of_teacher"] for entry in entries)
            own = [entry["share_of_own_teacher"] for entry in entries]
            kept_own = "-" if None in own else f"{100 * statistics.fmean(own):.2f}%"
            prediction = "-" if first.get("prediction_loss") is None else f"{first['prediction_loss']:.4f}"
            lines.append(f"| {row.name} | {len(entries)} | {scores} | {kept:.2f}% | {kept_own} | {first['steps']} "
                         f"({first['best_step']}) | {share} | {prediction} |")
        lines += runs_by_seed(summary[task]["rows"], task)
        lines += evaluation_differences(summary[task]["rows"], METRICS[task][0])
        lines += layer_stages(summary[task]["rows"])
        lines += teachers_in_runs(task, {**summary[task]["rows"], **successors})
    table = overview(summary)
    lines = table + lines + grids(results)
    text = "\n".join(lines).strip() + "\n"
    print(text)
    (results / "compare.md").write_text(text, encoding="utf-8")
    (results / "compare.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if arguments.readme:
        copy_overview(table, arguments.readme)


if __name__ == "__main__":
    main()
