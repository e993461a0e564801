"""ONNX Runtime dynamic int8 with one weight scale per tensor (ORT's default) or per output channel (the
project's default since this comparison): what each costs in dev score and prediction agreement, and its speed.

For each model given: one fp32 export, quantised both ways; every dev example scored by fp32 ONNX, per-tensor
int8 and per-channel int8 (metrics, agreement with the fp32 ONNX labels, largest logit difference); then the
three graphs timed in turn at the deployment shape (random token ids, batch x length), the starting graph moving
by one each round, so that the speed ratios share the machine's state.

    python benchmarks/onnx_int8_schemes.py --task rte --data-dir ../shared/glue --models DIR [DIR ...] \\
        [--batch-size 32] [--length 128] [--threads 2] [--rounds 10] [--output results/onnx_int8_schemes]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCHEMES = {"fp32": "model.onnx", "int8 per tensor": "per_tensor.onnx", "int8 per channel": "per_channel.onnx"}


def score(folder: Path, task_name: str, data_dir: str, scratch: Path) -> dict:
    """Dev metrics and agreement of the three graphs of one model."""
    import onnx

    from bert_emd.compress.deploy import onnx_dev_logits
    from bert_emd.data.loading import DataOptions, load_split, resolve_task, tokenize
    from bert_emd.deploy.export import export, quantize_onnx_int8
    from bert_emd.evaluation.metrics import compute_metrics, predictions_from_logits
    from bert_emd.models import load_tokenizer

    options = DataOptions(task=task_name, data_dir=data_dir)
    task = resolve_task(options)
    split = task.eval_splits[0]
    raw = load_split(task, options, split)
    export(model=str(folder), output=str(scratch), task=task_name, data_dir=data_dir, check_samples=8)
    quantize_onnx_int8(onnx, scratch / "model.onnx", scratch / SCHEMES["int8 per tensor"], per_channel=False)
    quantize_onnx_int8(onnx, scratch / "model.onnx", scratch / SCHEMES["int8 per channel"], per_channel=True)
    tokenizer = load_tokenizer(str(folder), 128)
    dataset = tokenize(raw, tokenizer, 128, f"Tokenising {split}")
    labels = np.asarray(list(raw["label"]))
    logits = {name: onnx_dev_logits(scratch / file, tokenizer, dataset) for name, file in SCHEMES.items()}
    rows = {}
    for name, values in logits.items():
        row = {"metrics": compute_metrics(task, values, labels),
               "max_abs_logit_difference": float(np.abs(values - logits["fp32"]).max()),
               "size_mb": (scratch / SCHEMES[name]).stat().st_size / 2**20}
        if not task.is_regression:
            row["agreement_with_fp32"] = float(np.mean(predictions_from_logits(task, values)
                                                       == predictions_from_logits(task, logits["fp32"])))
        rows[name] = row
    return {"model": str(folder), "split": split, "examples": len(raw), "schemes": rows}


def timings(scratch: Path, batch_size: int, length: int, threads: int, rounds: int) -> dict:
    """Median and p90 seconds per batch of each graph, timed in turn."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    sessions = {name: onnxruntime.InferenceSession(str(scratch / file), options, providers=["CPUExecutionProvider"])
                for name, file in SCHEMES.items()}
    generator = np.random.default_rng(0)
    inputs = {"input_ids": generator.integers(1000, 20000, (batch_size, length), dtype=np.int64),
              "attention_mask": np.ones((batch_size, length), dtype=np.int64),
              "token_type_ids": np.zeros((batch_size, length), dtype=np.int64)}
    feeds = {name: {item.name: inputs[item.name] for item in session.get_inputs()}
             for name, session in sessions.items()}
    names = list(sessions)
    for name in names:  # warm-up
        sessions[name].run(None, feeds[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            started = time.perf_counter()
            sessions[name].run(None, feeds[name])
            times[name].append(time.perf_counter() - started)
    out = {}
    for name, values in times.items():
        values.sort()
        out[name] = {"median_s": statistics.median(values), "p90_s": values[min(len(values) - 1,
                                                                               int(0.9 * len(values)))]}
    for name in names:
        out[name]["speedup_over_fp32"] = out["fp32"]["median_s"] / out[name]["median_s"]
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--models", nargs="+", required=True, help="fine-tuned classifier directories")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--output", help="directory for results.json and table.md")
    args = parser.parse_args(argv)
    import onnxruntime

    from bert_emd.runinfo import package_versions, write_json

    results = []
    for folder in args.models:
        with tempfile.TemporaryDirectory() as scratch:
            entry = score(Path(folder), args.task, args.data_dir, Path(scratch))
            entry["timing"] = timings(Path(scratch), args.batch_size, args.length, args.threads, args.rounds)
        results.append(entry)
    lines = [f"{args.task}, dev; timing at batch {args.batch_size} x {args.length}, {args.threads} threads, "
             f"{args.rounds} rounds (onnxruntime {onnxruntime.__version__})", "",
             "| model | graph | dev metrics | agreement with fp32 | max logit difference | MB | speedup over fp32 |",
             "|---|---|---|---|---|---|---|"]
    for entry in results:
        for name, row in entry["schemes"].items():
            metrics = ", ".join(f"{key} {100 * value:.2f}" for key, value in row["metrics"].items())
            agreement = f"{100 * row['agreement_with_fp32']:.1f}%" if "agreement_with_fp32" in row else "-"
            lines.append(f"| {Path(entry['model']).name} | {name} | {metrics} | {agreement} | "
                         f"{row['max_abs_logit_difference']:.3f} | {row['size_mb']:.1f} | "
                         f"{entry['timing'][name]['speedup_over_fp32']:.2f}x |")
    table = "\n".join(lines) + "\n"
    print(table)
    record = {"command": "python benchmarks/onnx_int8_schemes.py " + " ".join(argv if argv is not None
                                                                              else sys.argv[1:]),
              "settings": vars(args), "versions": package_versions(), "platform": platform.platform(),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": results}
    if args.output:
        output = Path(args.output)
        output.mkdir(parents=True, exist_ok=True)
        write_json(output / "results.json", record)
        (output / "table.md").write_text(table)
    return record


if __name__ == "__main__":
    main()
