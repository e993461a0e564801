"""With and without augmented data, and with and without a general stage: the GLUE table's EMD students side by side.

    .venv/bin/python results/glue_table/with_without.py   # prints the table, writes with_without.md

Reads the committed records only. For each task and depth: the EMD student on the task's own data (seed 1, and
the mean over its seeds), trained on N = 10 augmented data (`-aug10`, seed 1) and started from a general student
(`-gen-emd`, `-gen-skip`, seed 1) or copied from the pre-trained MiniLM-L6 instead of the fine-tuned teacher (`-pre`,
seed 1: the general students' starting point without the general stage); each with its training wall-clock
(one CPU thread per run, two or more runs side by side, so contended). Scores x 100 (MRPC: F1 / accuracy;
STS-B: Pearson / Spearman).
"""

import json
from pathlib import Path

HERE = Path(__file__).parent
TASKS = ["cola", "mrpc", "rte", "stsb"]
METRICS = {"cola": ["matthews_correlation"], "mrpc": ["f1", "accuracy"], "rte": ["accuracy"],
           "stsb": ["pearson", "spearman"]}
VARIANTS = ["", "-aug10", "-gen-emd", "-gen-skip", "-pre"]


def record(task: str, row: str, seed: int = 1):
    folder = HERE / "runs" / task / row / f"seed{seed}"
    if not (folder / "eval_results.json").is_file():
        return None
    results = json.loads((folder / "eval_results.json").read_text())
    clock = folder / "wall_clock.json"
    return {"metrics": [results["splits"]["dev"]["metrics"][name] * 100 for name in METRICS[task]],
            "minutes": json.loads(clock.read_text())["seconds"] / 60 if clock.is_file() else None,
            "steps": sum(stage.get("steps") or 0 for stage in results["train"].values() if isinstance(stage, dict))}


def cell(entry) -> str:
    if entry is None:
        return "-"
    minutes = f", {entry['minutes']:.0f} min" if entry["minutes"] is not None else ""
    return " / ".join(f"{value:.1f}" for value in entry["metrics"]) + f" ({entry['steps']} steps{minutes})"


def main() -> None:
    lines = ["| task | layers | emd, own data (seed 1) | mean over seeds | aug10 | gen-emd | gen-skip | pre |",
             "|---|---|---|---|---|---|---|---|"]
    for task in TASKS:
        for layers in (2, 3):
            base = f"emd-L{layers}"
            seeds = [record(task, base, seed) for seed in (1, 2, 3)]
            seeds = [entry for entry in seeds if entry]
            mean = " / ".join(f"{sum(values) / len(values):.1f}" for values in zip(*(e["metrics"] for e in seeds))) + \
                f" ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})" if seeds else "-"
            cells = [cell(record(task, base + variant)) for variant in VARIANTS]
            if all(value == "-" for value in cells):
                continue
            lines.append(f"| {task} | {layers} | {cells[0]} | {mean} | " + " | ".join(cells[1:]) + " |")
    text = "\n".join(lines) + "\n"
    (HERE / "with_without.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
