"""The short summary on top of the README's results: the best student per teacher, depth and task, and the
score-against-speed front of every method (distilled students, LadaBERT hybrid, MS-BERT early exit).

    .venv/bin/python results/summary.py [--readme README.md]
    # prints the table; writes summary.md, summary.json, front.png; with --readme, also puts the table in place of
    # that file's table with the same header

Reads only committed records: each results table's ``table.json`` (dev scores per row, mean over its seeds;
a task's score is the mean of its metrics, e.g. MRPC F1 and accuracy) and the latency records: the
glue_table's ``deploy_speed.json`` (``glue_table/deploy_speed.sh``: teacher and one student per depth in
turn in one run, PyTorch fp32 and ONNX Runtime int8, batch 32 x 128, 2 threads; without it ``latency.json``,
fp32 only) for MiniLM, and ``mpnet_table/benchmark.json`` (batch 8 x 128) for MPNet. "Best" is the highest
mean among every row of that depth, so a one-seed row can win by luck: the cell names the row and its number of seeds,
and how many other rows reach exactly the same score.

A block may join several tables (the recipe table and its SST-2 slice, each task with its own teacher). The recipe
tables' students have the architecture of the glue_table / mpnet_table students of the same depth, so their speedups
are those measurements (latency depends on the architecture, not on the weights; the recipe table's own fp32
measurement, ``recipe_table/latency.json``, gives 2.89x / 2.01x for its 2- / 3-layer students against
glue_table's 2.69x / 1.98x).
"""

import argparse
import json
import statistics
from pathlib import Path

from bert_emd.experiment.table import percent_rounded_down

RESULTS = Path(__file__).parent
TASK_NAMES = {"sst2": "SST-2", "cola": "CoLA", "mrpc": "MRPC", "rte": "RTE", "stsb": "STS-B"}
BLOCKS = {  # teacher -> (results folders, folder whose speed measurement applies)
    "MiniLM-L6 (6 layers, 22.7M), GLUE table": (["glue_table"], "glue_table"),
    "MiniLM-L6, recipe table (SST-2: its first 4,000 sentences)":
        (["recipe_table", "recipe_sst2_cpu"], "glue_table"),
    "MPNet-12 (12 layers, 109.5M), MPNet table": (["mpnet_table"], "mpnet_table"),
    "MPNet-12, recipe table": (["recipe_mpnet"], "mpnet_table"),
}
SPEED = {  # results folder -> (`bert-emd benchmark` record, setting): first model the teacher
    "glue_table": ("deploy_speed.json", "batch32_len128"),
    "mpnet_table": ("benchmark.json", "batch8_len128"),
}


def read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def speedups(folder: str) -> dict:
    """Per depth ('teacher', 'L2', ...): fp32 and int8 (ONNX Runtime) speedups against the fp32 teacher."""
    source, setting = SPEED[folder]
    bench = read(RESULTS / folder / source)
    out: dict = {}
    if bench:
        first = bench["models"][0]["backends"]["torch-fp32"]["settings"][setting]["p50_ms"]
        for index, entry in enumerate(bench["models"]):
            key = "teacher" if index == 0 else f"L{entry['layers']}"
            int8 = entry["backends"].get("ort-int8", {}).get("settings", {}).get(setting)
            out.setdefault(key, {"fp32": first / entry["backends"]["torch-fp32"]["settings"][setting]["p50_ms"],
                                 "int8": first / int8["p50_ms"] if int8 else None})
        return out
    latency = read(RESULTS / folder / "latency.json") or {}  # fp32 only
    for key, entry in (latency.get("models") or {}).items():
        out[key] = {"fp32": entry["speedup"], "int8": None}
    return out


def summarise(name: str, folders: list[str], speed_folder: str) -> dict | None:
    tables = [table for table in (read(RESULTS / folder / "table.json") for folder in folders) if table]
    if not tables:
        return None
    rows = [row for table in tables for row in table["rows"]]
    tasks = list(dict.fromkeys(task for table in tables for task in table["tasks"]))
    speed = speedups(speed_folder)
    depths = sorted({row["layers"] for row in rows if row["name"] != "teacher"})
    out = {"teacher": name, "folders": folders, "speed_from": speed_folder, "tasks": tasks,
           "teacher_scores": {task: cell["score"]["mean"] for row in rows if row["name"] == "teacher"
                              for task, cell in row["tasks"].items()},
           "teacher_speed": speed.get("teacher"), "depths": []}
    for layers in depths:
        best = {}
        for task in tasks:
            cells = [(row["tasks"][task]["score"]["mean"], row["name"], row["tasks"][task]["score"]["n"])
                     for row in rows if row["layers"] == layers and task in row["tasks"]]
            if cells and task in out["teacher_scores"]:
                score = max(cell[0] for cell in cells)
                tied = [cell for cell in cells if cell[0] == score]  # in table order: the first is named
                best[task] = {"row": tied[0][1], "score": score, "seeds": tied[0][2], "tied": len(tied) - 1,
                              "of_teacher": score / out["teacher_scores"][task]}
        shares = [cell["of_teacher"] for cell in best.values()]
        out["depths"].append({"layers": layers, "best": best, "speed": speed.get(f"L{layers}"),
                              "mean_of_teacher": statistics.fmean(shares) if shares else None,
                              "tasks_with_a_row": len(best)})
    return out


def percent(share: float) -> str:
    """A share of the teacher as a percentage rounded down to 0.1, as compare.py writes it."""
    return f"{percent_rounded_down(share):.1f}%"


def markdown(summaries: list[dict]) -> str:
    tasks = [task for task in TASK_NAMES if any(task in summary["tasks"] for summary in summaries)]
    header = ["teacher / student"] + [TASK_NAMES[task] for task in tasks] + \
        ["mean % of teacher", "speedup fp32", "speedup int8"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for summary in summaries:
        speed = summary["teacher_speed"]
        lines.append("| " + " | ".join(
            [f"**{summary['teacher']}** teacher"]
            + [f"{summary['teacher_scores'][task] * 100:.1f}" if task in summary["teacher_scores"] else "-"
               for task in tasks]
            + ["100%", "1.00x", f"{speed['int8']:.2f}x" if speed and speed.get("int8") else "-"]) + " |")
        for depth in summary["depths"]:
            cells = []
            for task in tasks:
                cell = depth["best"].get(task)
                cells.append("-" if cell is None else
                             f"{cell['score'] * 100:.1f} ({percent(cell['of_teacher'])}) "
                             f"`{cell['row']}`" + ("" if cell["seeds"] == 1 else f" ({cell['seeds']} seeds)")
                             + (f" (= {cell['tied']} other row{'s' * (cell['tied'] > 1)})" if cell["tied"] else ""))
            share = depth["mean_of_teacher"]
            counted = depth["tasks_with_a_row"]
            share_text = "-" if share is None else percent(share) + \
                ("" if counted == len(summary["teacher_scores"]) else f" ({counted} tasks)")
            speed = depth["speed"] or {}
            lines.append("| " + " | ".join(
                [f"{depth['layers']} layers"] + cells + [
                    share_text, f"{speed['fp32']:.2f}x" if speed.get("fp32") else "-",
                    f"{speed['int8']:.2f}x" if speed.get("int8") else "-"]) + " |")
    return "\n".join(lines) + "\n"


FRONT_TASKS = {"sst2": ("SST-2 acc", "acc"), "mrpc": ("MRPC f1", "f1"), "rte": ("RTE acc", "acc")}


def front(path: Path) -> None:
    """Per task: dev score against measured speedup over the fp32 teacher (PyTorch fp32, batch 32 x 128)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, speed = read(RESULTS / "glue_table" / "table.json"), speedups("glue_table")  # as in the summary table
    hybrid, exits = read(RESULTS / "hybrid" / "summary.json"), read(RESULTS / "early_exit" / "summary.json")
    figure, axes = plt.subplots(1, len(FRONT_TASKS), figsize=(5 * len(FRONT_TASKS), 4.2))
    for axis, (task, (metric, short)) in zip(axes, FRONT_TASKS.items()):
        teacher = next(row for row in table["rows"] if row["name"] == "teacher")["tasks"][task]["metrics"][metric]
        axis.scatter([1.0], [teacher["mean"] * 100], marker="*", s=160, color="black", label="teacher", zorder=3)
        styles = {"emd": ("o", "tab:red", "BERT-EMD students"), "skip": ("s", "tab:blue", "fixed mappings / KD only"),
                  "last": ("s", "tab:blue", None), "none": ("s", "tab:blue", None)}
        shown = set()
        for row in table["rows"]:
            if row["name"] == "teacher" or task not in row["tasks"]:
                continue
            fp32 = speed.get(f"L{row['layers']}", {}).get("fp32")
            marker, color, label = styles[row["mapping"]]
            if fp32 is None:
                continue
            axis.scatter([fp32], [row["tasks"][task]["metrics"][metric]["mean"] * 100], marker=marker, color=color,
                         alpha=0.6, label=None if (label in shown or label is None) else label)
            shown.add(label)
        if hybrid and task in hybrid["tasks"]:
            points = [(entry["latency"]["batch32_len128"]["speedup"], entry["metric"] * 100)
                      for entry in hybrid["tasks"][task]["hybrid"]]
            axis.plot(*zip(*points), "^-", color="tab:green", label="LadaBERT hybrid 2x / 5x / 10x")
        if exits and task in exits["tasks"]:
            points = sorted((point["speedup_batch32"], point["metric"] * 100)
                            for point in exits["tasks"][task]["fastbert-final"]["measures"]["entropy"]["points"])
            axis.plot(*zip(*points), ".-", color="tab:purple", label="MS-BERT early exit (fastbert-final)")
        axis.set_title(f"{TASK_NAMES[task]} (MiniLM-L6 teacher)")
        axis.set_xlabel("speedup over the fp32 teacher, batch 32 x 128")
        axis.set_ylabel(f"dev {short} x 100")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def copy_table(text: str, readme: Path) -> None:
    """Replace the table in ``readme`` that starts with ``text``'s header line by ``text``'s table."""
    rows = text.rstrip("\n").splitlines()
    lines = readme.read_text(encoding="utf-8").splitlines()
    if rows[0] not in lines:
        raise SystemExit(f"{readme} has no table starting with {rows[0]!r}")
    start = end = lines.index(rows[0])
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    lines[start:end] = rows
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, help="also put the table in place of this file's summary table")
    arguments = parser.parse_args()
    summaries = [summary for name, (folders, speed) in BLOCKS.items() if (summary := summarise(name, folders, speed))]
    text = markdown(summaries)
    (RESULTS / "summary.md").write_text(text)
    (RESULTS / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n")
    front(RESULTS / "front.png")
    if arguments.readme:
        copy_table(text, arguments.readme)
    print(text)


if __name__ == "__main__":
    main()
