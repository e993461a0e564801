"""The CoNLL-2003 table: the MiniLM-L6 tagger teacher and its 3- and 2-layer students by emd, skip and none.

    .venv/bin/python results/conll2003/summary.py   # prints it and writes results/conll2003/table.md

Reads the records experiments/conll_table.sh keeps here: per run NAME.json (its eval_results.json: dev entity F1,
the training), NAME.test.json (`bert-emd evaluate --split test`, with the teacher: loyalty) and benchmark.json
(`bert-emd benchmark` of the teacher and one student per depth: students of one depth have one architecture, so
one speed). Shares of the teacher are rounded down, as the project's other tables give them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).parent
RUNS = ("teacher", "L3-emd", "L3-skip", "L3-none", "L2-emd", "L2-skip", "L2-none")
GOALS = {3: 96.0, 2: 90.0}  # share of the teacher's dev F1 each depth should keep


def _read(name: str) -> dict | None:
    path = HERE / name
    return json.loads(path.read_text()) if path.is_file() else None


def share(value: float, teacher: float) -> float:
    return math.floor(1000 * value / teacher) / 10


def speeds() -> dict:
    """depth -> {backend: speedup against the teacher in PyTorch fp32} from benchmark.json."""
    report = _read("benchmark.json")
    if not report:
        return {}

    def p50(entry: dict, backend: str) -> float:
        (setting,) = entry["backends"][backend]["settings"].values()
        return setting["p50_ms"]

    teacher, *students = report["models"]
    base = p50(teacher, "torch-fp32")
    return {entry["layers"]: {backend: base / p50(entry, backend) for backend in entry["backends"]}
            for entry in [teacher, *students]}


def rows() -> list[dict]:
    teacher = _read("teacher.json")
    teacher_test = _read("teacher.test.json")
    dev_base = teacher["splits"]["dev"]["metrics"]["f1"]
    test_base = teacher_test["splits"]["test"]["metrics"]["f1"]
    measured = speeds()
    found = []
    for name in RUNS:
        results, test = _read(f"{name}.json"), _read(f"{name}.test.json")
        if results is None or test is None:
            continue
        layers = 6 if name == "teacher" else int(name[1])
        dev_f1, test_f1 = results["splits"]["dev"]["metrics"]["f1"], test["splits"]["test"]["metrics"]["f1"]
        train = results.get("train", {})
        seconds = train.get("runtime_s") or sum(stage.get("runtime_s") or 0 for stage in train.values()
                                                if isinstance(stage, dict))
        found.append({"name": name, "layers": layers, "dev_f1": 100 * dev_f1, "test_f1": 100 * test_f1,
                      "dev_share": share(dev_f1, dev_base), "test_share": share(test_f1, test_base),
                      "loyalty": test["splits"]["test"].get("loyalty"), "speed": measured.get(layers, {}),
                      "train_minutes": seconds / 60, "goal": GOALS.get(layers)})
    return found


def table(found: list[dict]) -> str:
    lines = ["| run | dev F1 (share of teacher) | test F1 (share) | test label / probability loyalty | "
             "speedup fp32 / int8 | training min | goal (dev share) |", "|---|---|---|---|---|---|---|"]
    for row in found:
        loyalty = row["loyalty"]
        speed = row["speed"]
        speedup = " / ".join(f"{speed[b]:.2f}x" for b in ("torch-fp32", "ort-int8") if b in speed) or "-"
        goal = "-" if row["goal"] is None else \
            f">= {row['goal']:g}%: {'met' if row['dev_share'] >= row['goal'] else 'not met'}"
        lines.append(f"| {row['name']} | {row['dev_f1']:.2f} ({row['dev_share']:.1f}%) | {row['test_f1']:.2f} "
                     f"({row['test_share']:.1f}%) | "
                     + (f"{loyalty['label_loyalty']:.4f} / {loyalty['probability_loyalty']:.4f}" if loyalty else "-")
                     + f" | {speedup} | {row['train_minutes']:.0f} | {goal} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    text = table(rows())
    (HERE / "table.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
