"""Summarise hybrid compression results: `python -m bert_emd.hybrid.summary RESULTS_DIR [--table TABLE_JSON]`.

Reads RESULTS_DIR/TASK/ratioR/hybrid_results.json and RESULTS_DIR/TASK/benchmark.json (teacher and
compressed models timed side by side); with the GLUE table's table.json, puts the EMD-distilled students
of each task beside them. Writes RESULTS_DIR/summary.md and summary.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bert_emd.data.tasks import get_task
from bert_emd.runinfo import write_json

TABLE = Path("results/glue_table/table.json")


def _latency(benchmark: dict, model: str) -> dict:
    for entry in benchmark.get("models", []):
        if entry["model"] == model:
            settings = entry["backends"]["torch-fp32"]["settings"]
            return {key: {"p50_ms": value["p50_ms"], "speedup": value["speedup_vs_first_model"]}
                    for key, value in settings.items()}
    return {}


def _mean_wall_clock(row_dir: Path) -> float | None:
    seconds = [json.loads(path.read_text())["seconds"] for path in sorted(row_dir.glob("seed*/wall_clock.json"))]
    return sum(seconds) / len(seconds) if seconds else None


def summarise(results_dir: Path, table_path: Path | None, table_work: str = "runs/glue_table") -> dict:
    table = json.loads(table_path.read_text()) if table_path and table_path.is_file() else None
    summary: dict = {"tasks": {}}
    for task_dir in sorted(path for path in results_dir.iterdir() if path.is_dir()):
        task = task_dir.name
        benchmark_file = task_dir / "benchmark.json"
        benchmark = json.loads(benchmark_file.read_text()) if benchmark_file.is_file() else {}
        main = get_task(task).main_metric
        rows = []
        for result_file in sorted(task_dir.glob("ratio*/hybrid_results.json"), key=lambda p: int(p.parent.name[5:])):
            result = json.loads(result_file.read_text())
            run = json.loads((result_file.parent / "run_config.json").read_text())
            dev = result["splits"].get("dev", {})
            rows.append({"name": f"hybrid {result['target_ratio']:g}x", "target_ratio": result["target_ratio"],
                         "encoder_ratio": result["encoder"]["ratio"], "metric": dev.get("metrics", {}).get(main),
                         "teacher_metric": dev.get("teacher_metrics", {}).get(main),
                         "per_step": [step.get("splits", {}).get("dev", {}).get("metrics", {}).get(main)
                                      for step in result["steps"]],
                         "parameters": result["model"]["stored_parameters"],
                         "nonzero_parameters": result["model"]["nonzero_parameters"],
                         "encoder_nonzero": result["encoder"]["nonzero_parameters"],
                         "size_mb": result["size_mb"]["hybrid"], "teacher_size_mb": result["size_mb"]["teacher"],
                         "train_seconds": result["train_seconds"],
                         "latency": _latency(benchmark, run["config"]["output"])})
        emd_rows = []
        teacher_layers = next((entry["layers"] for entry in (table or {}).get("rows", [])
                               if entry["name"] == "teacher"), None)
        for entry in (table or {}).get("rows", []):
            if entry.get("mapping") == "emd" and task in entry["tasks"]:
                cell = entry["tasks"][task]
                name = next(iter(cell["metrics"]))  # the task's main metric comes first
                # only latency timed in this task's benchmark run (run.sh adds the seed-1 model): one clock
                latency = _latency(benchmark, f"{table_work}/{task}/{entry['name']}/seed1")
                emd_rows.append({"name": entry["name"], "encoder_ratio": teacher_layers / entry["layers"]
                                 if teacher_layers else None, "metric": cell["metrics"][name]["mean"],
                                 "std": cell["metrics"][name]["std"], "seeds": cell["metrics"][name]["n"],
                                 "parameters": entry.get("parameters"),
                                 "latency": latency,
                                 "train_seconds": _mean_wall_clock(table_path.parent / "runs" / task / entry["name"])})
        summary["tasks"][task] = {"main_metric": main, "hybrid": rows, "emd_students": emd_rows,
                                  "teacher_latency": _latency(benchmark, benchmark["models"][0]["model"])
                                  if benchmark.get("models") else {}}
    return summary


def _fmt(value, pattern="{:.1f}", scale=100.0):
    return "-" if value is None else pattern.format(value * scale)


def format_summary(summary: dict) -> str:
    lines = []
    for task, entry in summary["tasks"].items():
        rows = entry["hybrid"]
        teacher = rows[0]["teacher_metric"] if rows else None
        lines += [f"### {get_task(task).display_name} ({entry['main_metric']} x 100; teacher {_fmt(teacher)})", "",
                  "| model | encoder ratio | dev after each step | final | params (stored / non-zero) | size MB "
                  "| latency b1 ms | b32 ms (speedup) | KD training |", "|---|---|---|---|---|---|---|---|---|"]
        for row in rows:
            steps = " / ".join(_fmt(value) for value in row["per_step"])
            b1, b32 = row["latency"].get("batch1_len128", {}), row["latency"].get("batch32_len128", {})
            lines.append(f"| {row['name']} | {row['encoder_ratio']:.2f}x | {steps} | {_fmt(row['metric'])} | "
                         f"{row['parameters'] / 1e6:.1f}M / {row['nonzero_parameters'] / 1e6:.1f}M | "
                         f"{row['size_mb']:.1f} | {_fmt(b1.get('p50_ms'), '{:.1f}', 1)} | "
                         f"{_fmt(b32.get('p50_ms'), '{:.0f}', 1)} ({_fmt(b32.get('speedup'), '{:.2f}x', 1)}) | "
                         f"{row['train_seconds'] / 60:.1f} min |")
        for row in entry["emd_students"]:
            b1, b32 = row["latency"].get("batch1_len128", {}), row["latency"].get("batch32_len128", {})
            spread = f" ± {_fmt(row['std'])}" if row["std"] is not None else ""
            minutes = "-" if row["train_seconds"] is None else f"{row['train_seconds'] / 60:.1f} min"
            ratio = _fmt(row["encoder_ratio"], "{:.2f}x", 1)
            lines.append(f"| BERT-EMD {row['name']} ({row['seeds']} seed(s)) | {ratio} | - | "
                         f"{_fmt(row['metric'])}{spread} | {_fmt(row['parameters'], '{:.1f}M', 1e-6)} | - | "
                         f"{_fmt(b1.get('p50_ms'), '{:.1f}', 1)} | {_fmt(b32.get('p50_ms'), '{:.0f}', 1)} "
                         f"({_fmt(b32.get('speedup'), '{:.2f}x', 1)}) | {minutes} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bert_emd.hybrid.summary", description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--table", type=Path, default=TABLE, help="the GLUE table's table.json (EMD students)")
    parser.add_argument("--table-work", default="runs/glue_table",
                        help="the table's model folder, as run.sh named the students when timing them")
    args = parser.parse_args(argv)
    summary = summarise(args.results_dir, args.table, args.table_work)
    write_json(args.results_dir / "summary.json", summary)
    text = format_summary(summary)
    (args.results_dir / "summary.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
