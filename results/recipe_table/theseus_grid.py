"""The BERT-of-Theseus grid of the recipe table: each point's dev scores, loyalty and compute on MRPC.

    .venv/bin/python results/recipe_table/theseus_grid.py   # prints it and writes theseus_grid.md

Reads runs/mrpc/theseus-L3-grid-*/seed1/ (eval_results.json, wall_clock.json): a 3-layer successor of the MiniLM-L6
teacher on the augmented MRPC file (1,261 optimiser steps), the paper's linear curriculum p = min(1, b + k t) with
p = 1 after S steps, the teacher's first three layers as the start, seed 1. The chosen point is the best dev F1.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).parent
POINT = re.compile(r"theseus-L3-grid-lr(?P<lr>[\d.e-]+)-b(?P<b>[\d.]+)-s(?P<s>\d+)$")


def points() -> list[dict]:
    found = []
    for folder in sorted((HERE / "runs" / "mrpc").glob("theseus-L3-grid-*/seed1")):
        match = POINT.match(folder.parent.name)
        if not match or not (folder / "eval_results.json").is_file():
            continue
        results = json.loads((folder / "eval_results.json").read_text())
        dev = results["splits"]["dev"]
        clock = folder / "wall_clock.json"
        found.append({"lr": float(match["lr"]), "b": float(match["b"]), "s": int(match["s"]),
                      "f1": dev["metrics"]["f1"], "accuracy": dev["metrics"]["accuracy"],
                      "teacher_f1": dev["teacher_metrics"]["f1"], "label_loyalty": dev["loyalty"]["label_loyalty"],
                      "alone_from": results["schedule"]["successor_alone_from_step"],
                      "steps": results["schedule"]["planned_steps"],
                      "constant": "constant_prediction" in dev,
                      "minutes": json.loads(clock.read_text())["seconds"] / 60 if clock.is_file() else None})
    return sorted(found, key=lambda point: (point["lr"], point["s"], point["b"]))


def main() -> str:
    found = points()
    best = max(found, key=lambda point: point["f1"])
    lines = ["**BERT-of-Theseus grid on MRPC** (3 layers from MiniLM-L6, seed 1).", "",
             "`.venv/bin/python results/recipe_table/theseus_grid.py` from the records under `runs/mrpc/`. Dev "
             f"scores x 100; the teacher's F1 {100 * found[0]['teacher_f1']:.1f}; the majority class gives F1 81.2 "
             "(accuracy 68.4).", "",
             "| learning rate | b | S | p = 1 from step | dev F1 | dev accuracy | label loyalty | minutes | |",
             "|---|---|---|---|---|---|---|---|---|"]
    for point in found:
        alone = f"never in {point['steps']}" if point["alone_from"] is None or point["alone_from"] >= point["steps"] \
            else f"{point['alone_from']} of {point['steps']}"
        minutes = "-" if point["minutes"] is None else f"{point['minutes']:.1f}"
        lines.append(f"| {point['lr']:g} | {point['b']:g} | {point['s']} | {alone} | "
                     f"{100 * point['f1']:.2f} | {100 * point['accuracy']:.2f} | {100 * point['label_loyalty']:.1f} | "
                     f"{minutes} | {'chosen' if point is best else ''} |")
    total = sum(point["minutes"] or 0 for point in found)
    lines += ["", f"{len(found)} points, {total / 60:.1f} single-thread hours by their wall_clock.json."]
    text = "\n".join(lines) + "\n"
    (HERE / "theseus_grid.md").write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    print(main())
