"""`make demo`: the whole pipeline on the embedded default, in about four minutes on two CPU cores.

1. fine-tune the bundled MiniLM-L6 teacher (6 layers) on the first 2,000 SST-2 training sentences;
2. distil it into a 2-layer student with BERT-EMD (many-to-many EMD layer mapping, cost attention);
3. score both on the full SST-2 dev set and time both with `bert-emd benchmark` (PyTorch fp32, batch 32 x
   length 128, measured in turn in one run), then print a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bert_emd.deploy.benchmark import benchmark
from bert_emd.distill import distill
from bert_emd.errors import BertEmdError
from bert_emd.finetune import finetune
from bert_emd.runinfo import write_json


def run(data_dir: str, output: str, train_samples: int, student_epochs: float, threads: int) -> dict:
    started = time.time()
    output_dir = Path(output)
    teacher_dir, student_dir = output_dir / "teacher", output_dir / "student-emd-2layer"
    print(f"[1/3] fine-tuning the bundled MiniLM-L6 teacher on {train_samples} SST-2 sentences -> {teacher_dir}",
          flush=True)
    teacher = finetune(model="minilm-l6", task="sst2", data_dir=data_dir, output=str(teacher_dir),
                       max_train_samples=train_samples, epochs=1)
    print(f"\n[2/3] distilling a 2-layer student with BERT-EMD ({student_epochs:g} epochs) -> {student_dir}",
          flush=True)
    student = distill(teacher=str(teacher_dir), task="sst2", data_dir=data_dir, output=str(student_dir),
                      student_layers=2, mapping="emd", max_train_samples=train_samples, epochs=student_epochs)
    print(f"\n[3/3] timing teacher and student side by side (batch 32 x length 128, {threads} threads)", flush=True)
    timing = benchmark(model=[str(teacher_dir), str(student_dir)], backends="torch-fp32", batch_sizes="32",
                       lengths="128", threads=threads, repeats=10, warmup=3)
    latency = {name: entry["backends"]["torch-fp32"]["settings"]["batch32_len128"]["p50_ms"] / 1000
               for name, entry in zip(("teacher", "student"), timing["models"])}

    dev = student["splits"]["dev"]
    rows = [("teacher MiniLM-L6", 6, student["parameters"]["teacher"], dev["teacher_metrics"]["accuracy"],
             latency["teacher"], 1.0, None, None),
            ("student BERT-EMD", 2, student["parameters"]["student"], dev["metrics"]["accuracy"], latency["student"],
             latency["teacher"] / latency["student"], dev["loyalty"]["label_loyalty"],
             dev["loyalty"]["probability_loyalty"])]
    print(f"\n=== bert-emd demo: SST-2 dev ({dev['num_examples']} sentences) ===")
    print(f"{'model':20s} {'layers':>6s} {'params':>11s} {'accuracy':>9s} {'latency':>9s} {'speedup':>8s} "
          f"{'label loyalty':>14s} {'prob. loyalty':>14s}")
    for name, layers, params, accuracy, seconds, speedup, label_loyalty, probability_loyalty in rows:
        loyalty = (f"{label_loyalty:14.4f} {probability_loyalty:14.4f}" if label_loyalty is not None
                   else f"{'-':>14s} {'-':>14s}")
        print(f"{name:20s} {layers:6d} {params:11,d} {accuracy:9.4f} {seconds * 1000:7.0f}ms {speedup:7.2f}x {loyalty}")
    summary = {"teacher_dir": str(teacher_dir), "student_dir": str(student_dir), "latency_s": latency,
               "threads": threads, "teacher": teacher, "student": student, "minutes": (time.time() - started) / 60}
    write_json(output_dir / "demo_summary.json", summary)
    print(f"\noutputs: {teacher_dir} and {student_dir} (model, tokenizer, eval_results.json, run_config.json; the "
          f"student also distill_state.json), TensorBoard logs under each runs/; summary in "
          f"{output_dir / 'demo_summary.json'}")
    print(f"total time: {summary['minutes']:.1f} min")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bert_emd.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/glue", help="GLUE TSV directory")
    parser.add_argument("--output", default="outputs/demo", help="where the demo writes its models")
    parser.add_argument("--train-samples", type=int, default=2000, help="SST-2 training sentences to use")
    parser.add_argument("--student-epochs", type=float, default=3.0, help="distillation epochs")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the latency measurement")
    args = parser.parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        run(args.data_dir, args.output, args.train_samples, args.student_epochs, args.threads)
    except BertEmdError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
