"""A task's teacher picked from a grid: every combination of the grid's `bert-emd finetune` options is trained,
and the one with the best dev score (the table's score: the mean of the task's GLUE metrics) is the teacher.

The choice is made on the same dev set the students are evaluated on, as GLUE papers pick their fine-tuning
settings; the teacher's dev score is then slightly optimistic, the students' are not affected.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from bert_emd.errors import BertEmdError
from bert_emd.experiment.table import task_cell


def check_grid(grid, where: str, owned: set, known: set) -> None:
    if grid is None or grid == {}:  # no grid
        return
    if not isinstance(grid, dict):
        raise BertEmdError(f"{where} must be a mapping of `bert-emd finetune` options to lists of values")
    for key, values in grid.items():
        if key in owned:
            raise BertEmdError(f"{where}.{key} is set by the experiment runner for each teacher")
        if key not in known:
            raise BertEmdError(f"{where}: unknown `bert-emd finetune` option {key!r}")
        if not isinstance(values, list) or not values:
            raise BertEmdError(f"{where}.{key} must be a non-empty list of values")
        if len(set(map(repr, values))) != len(values):
            raise BertEmdError(f"{where}.{key} lists a value twice")


def format_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def grid_points(grid: dict | None) -> list[tuple[str, dict]]:
    """(folder name, option overrides) of every combination, in the grid's order; one unnamed point without a
    grid."""
    if not grid:
        return [("", {})]
    keys = list(grid)
    points = []
    for values in itertools.product(*(grid[key] for key in keys)):
        name = "_".join(f"{key}-{format_value(value)}" for key, value in zip(keys, values))
        points.append((name, dict(zip(keys, values))))
    return points


def dev_score(task: str, results: dict) -> float | None:
    """The table's score of a teacher's eval_results.json (None when it has no finite dev score)."""
    if "dev" not in (results.get("splits") or {}):
        return None
    score = task_cell([results], task)["score"]["mean"]
    return score if math.isfinite(score) else None


def choose(task: str, points: list[tuple[str, dict, dict]]) -> dict:
    """The grid's summary: every point's settings and dev score, and the best one (the first of equals)."""
    rows = [{"name": name, "settings": settings, "score": dev_score(task, results)} for name, settings, results
            in points]
    scored = [row for row in rows if row["score"] is not None]
    if not scored:
        raise BertEmdError(f"no teacher of the {task} grid has a finite dev score")
    best = max(scored, key=lambda row: row["score"])  # max keeps the first of equal scores
    return {"task": task, "points": rows, "chosen": best["name"]}


def format_grid(summary: dict) -> str:
    keys = list(summary["points"][0]["settings"])
    lines = [f"| {' | '.join(keys)} | dev score x 100 | |", "|" + "---|" * (len(keys) + 2)]
    for row in summary["points"]:
        score = "-" if row["score"] is None else f"{100 * row['score']:.1f}"
        mark = "chosen" if row["name"] == summary["chosen"] else ""
        lines.append(f"| {' | '.join(format_value(row['settings'][key]) for key in keys)} | {score} | {mark} |")
    return "\n".join(lines)


def point_dir(teachers: Path, task: str, name: str) -> Path:
    return teachers / task if not name else teachers / task / "grid" / name
