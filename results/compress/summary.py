"""What one `bert-emd compress` command gives, per task and target: the table the README and the results page quote.

    .venv/bin/python results/compress/summary.py   # prints it, writes results/compress/summary.md and table.md
    .venv/bin/python results/compress/summary.py --readme README.md   # and puts it in place of README's copy

Reads the committed reports (results/compress/NAME/report.json, made by experiments/compress_runs.sh): the kept
student's depth and method, the deployed model's dev score (mean of the task's metrics) and its share of the
teacher, the measured speedup against the fp32 teacher, size on disk, and the stages' own time (teacher
fine-tuning included where the run made its teacher).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent


def rows() -> list[dict]:
    found = []
    for path in sorted(HERE.glob("*/report.json")):
        report = json.loads(path.read_text())
        stages = report["stages"]
        found.append({
            "name": path.parent.name, "task": report["task"], "target": report["target"]["speedup"],
            "backend": report["backend"], "layers": report["chosen_layers"], "method": report["method"],
            "teacher": 100 * report["scores"]["teacher_mean"], "deployed": 100 * report["scores"]["deployed_mean"],
            "share": report["scores"]["deployed_share_of_teacher_percent"],
            "pytorch_share": report["scores"]["student_share_of_teacher_percent"],
            "speedup": report["speed"]["speedup_vs_baseline"], "size_mb": report["size_mb"]["deployed"],
            "teacher_mb": report["size_mb"]["teacher"],
            "minutes": sum(entry["seconds"] or 0 for entry in stages.values()) / 60,
            "made_teacher": "teacher" in stages, "epochs": _shorter_budget(stages)})
    return found


def _shorter_budget(stages: dict) -> float | None:
    """The training epochs where a run was given fewer than the recipe's (1 over augmented data, else 3)."""
    for stage, entry in stages.items():
        if stage.startswith("train-"):
            settings = entry["settings"]
            default = 1.0 if settings.get("augmented_train") else 3.0
            if settings.get("epochs") is not None and settings["epochs"] < default:
                return settings["epochs"]
    return None


def table(found: list[dict]) -> str:
    lines = ["| run | student | dev score (teacher) | share of teacher, deployed (PyTorch) | speedup | size MB | "
             "minutes |", "|---|---|---|---|---|---|---|"]
    for row in found:
        budget = f", {row['epochs']:g} epochs" if row["epochs"] is not None else ""
        lines.append(f"| {row['name']} | {row['layers']} layers, {row['method']}, {row['backend']}{budget} | "
                     f"{row['deployed']:.2f} ({row['teacher']:.2f}) | {row['share']}% ({row['pytorch_share']}%) | "
                     f"{row['speedup']:.2f}x (target {row['target']:g}x) | {row['size_mb']:.1f} "
                     f"({row['teacher_mb']:.1f}) | {row['minutes']:.0f}"
                     + (" incl. teacher" if row["made_teacher"] else "") + " |")
    return "\n".join(lines) + "\n"


def copy_to(readme: Path, text: str) -> None:
    """Replace the README's table of the same header by ``text`` (results/summary.py's copy_table)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("results_summary", HERE.parent / "summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.copy_table(text, readme)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, help="also put the table in place of this file's copy of it")
    arguments = parser.parse_args()
    text = table(rows())
    print(text)
    (HERE / "table.md").write_text(text, encoding="utf-8")  # the table alone, as the results page includes it
    (HERE / "summary.md").write_text("# What one compress command gives\n\n`.venv/bin/python results/compress/"
                                     "summary.py` from the reports in this folder.\n\n" + text, encoding="utf-8")
    if arguments.readme:
        copy_to(arguments.readme, text)


if __name__ == "__main__":
    main()
