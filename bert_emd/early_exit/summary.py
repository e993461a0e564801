"""Summarise early-exit curves: `python -m bert_emd.early_exit.summary RESULTS_DIR` (TASK/CONFIG/early_exit_curve.json).

Writes RESULTS_DIR/summary.md, summary.json and one comparison plot per task (metric against measured
batch-1 speedup, one line per student design x targets, entropy uncertainty).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bert_emd.runinfo import write_json  # noqa: E402


def _speed(point: dict, size: str) -> float | None:
    return (point.get("latency_speedup") or {}).get(size)


def summarise(results_dir: Path) -> dict:
    curves = sorted(results_dir.glob("*/*/early_exit_curve.json"))
    if not curves:
        raise SystemExit(f"no */*/early_exit_curve.json under {results_dir}")
    summary: dict = {"tasks": {}}
    for path in curves:
        report = json.loads(path.read_text())
        task, config = path.parent.parent.name, path.parent.name
        main = report["main_metric"]
        entry = {"full": report["full_model"]["metrics"][main], "per_exit": [m[main] for m in report["per_exit"]],
                 "main_metric": main, "max_loss": report["max_loss"], "measures": {}}
        for measure, points in report["curves"].items():
            chosen = report["chosen"].get(measure)
            at_2x = [p for p in points if (_speed(p, "1") or 0) >= 2.0]
            entry["measures"][measure] = {
                "chosen": None if not chosen else {
                    "threshold": chosen["threshold"], "metric": chosen["metrics"][main],
                    "mean_exit_layer": chosen["mean_exit_layer"], "flops_speedup": chosen["flops_speedup"],
                    "speedup_batch1": _speed(chosen, "1"), "speedup_batch32": _speed(chosen, "32")},
                "best_metric_at_2x_batch1": max((p["metrics"][main] for p in at_2x), default=None),
                "points": [{"threshold": p["threshold"], "metric": p["metrics"][main],
                            "mean_exit_layer": p["mean_exit_layer"], "flops_speedup": p["flops_speedup"],
                            "speedup_batch1": _speed(p, "1"), "speedup_batch32": _speed(p, "32")} for p in points]}
        summary["tasks"].setdefault(task, {})[config] = entry
    return summary


def _number(value, pattern="{:.1f}", scale=100.0):
    return "-" if value is None else pattern.format(value * scale)


def format_summary(summary: dict) -> str:
    lines = []
    for task, configs in summary["tasks"].items():
        first = next(iter(configs.values()))
        lines += [f"### {task} ({first['main_metric']} x 100; full model {100 * first['full']:.1f})", "",
                  "| students | targets | exits L1..L(n-1) | uncertainty | threshold | metric | loss | mean exit layer "
                  "| FLOPs speedup | measured speedup b1 | b32 | best metric at >= 2x (b1) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for config, entry in configs.items():
            design, _, targets = config.partition("-")
            exits = " / ".join(f"{100 * value:.1f}" for value in entry["per_exit"][:-1])
            for measure, result in entry["measures"].items():
                chosen = result["chosen"] or {}
                loss = None if not chosen else entry["full"] - chosen["metric"]
                lines.append(f"| {design} | {targets} | {exits} | {measure} | {chosen.get('threshold', '-')} | "
                             f"{_number(chosen.get('metric'))} | {_number(loss)} | "
                             f"{_number(chosen.get('mean_exit_layer'), '{:.2f}', 1)} | "
                             f"{_number(chosen.get('flops_speedup'), '{:.2f}x', 1)} | "
                             f"{_number(chosen.get('speedup_batch1'), '{:.2f}x', 1)} | "
                             f"{_number(chosen.get('speedup_batch32'), '{:.2f}x', 1)} | "
                             f"{_number(result['best_metric_at_2x_batch1'])} |")
        lines.append("")
    return "\n".join(lines)


def plot_tasks(summary: dict, results_dir: Path, measure: str = "entropy") -> list[Path]:
    paths = []
    for task, configs in summary["tasks"].items():
        figure, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for config, entry in configs.items():
            points = entry["measures"].get(measure, {}).get("points", [])
            for axis, key in zip(axes, ("speedup_batch1", "flops_speedup")):
                axis.plot([p[key] for p in points], [100 * p["metric"] for p in points], marker="o", label=config)
        first = next(iter(configs.values()))
        for axis, label in zip(axes, ("measured speedup, batch 1", "FLOPs speedup")):
            axis.axhline(100 * first["full"], color="grey", linestyle="--", linewidth=1)
            axis.axhline(100 * (first["full"] - first["max_loss"]), color="red", linestyle=":", linewidth=1)
            axis.set_xlabel(label)
            axis.set_ylabel(f"{first['main_metric']} x 100")
            axis.legend(fontsize=7)
        figure.suptitle(f"{task}: early exit, {measure} uncertainty", fontsize=10)
        figure.tight_layout()
        path = results_dir / f"{task}_curves.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bert_emd.early_exit.summary", description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path)
    args = parser.parse_args(argv)
    summary = summarise(args.results_dir)
    write_json(args.results_dir / "summary.json", summary)
    text = format_summary(summary)
    (args.results_dir / "summary.md").write_text(text + "\n", encoding="utf-8")
    plots = plot_tasks(summary, args.results_dir)
    print(text)
    print(f"summary.md, summary.json and {len(plots)} plot(s) written to {args.results_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
