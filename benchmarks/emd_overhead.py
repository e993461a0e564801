"""What the EMD mapping costs per training step, against the fixed skip mapping and no layer terms.

MiniLM-L6 teacher (6 layers), 2-layer student initialised from it, batch 32, length 128. Full
training steps (teacher forward, student forward and backward, EMD solve and weight update, AdamW
step) are timed for mappings emd, skip and none, interleaved round by round in one process so that
the ratios share the machine's state. Peak memory is read per mapping in a fresh subprocess
(growth over what the models and optimizer hold: resident size polled during the steps
on CPU, ``max_memory_allocated`` on CUDA). Goal (issue 3): emd <= 1.10 x skip.

    python benchmarks/emd_overhead.py [--steps 10] [--threads 2] [--output docs/results/emd_overhead]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

MAPPINGS = ("emd", "skip", "none")


def make_distiller(mapping: str, teacher_path: str, device: str):
    from transformers import AutoModelForSequenceClassification

    from bert_emd.distill import DistillConfig
    from bert_emd.distill.attention import SCORES_ATTENTION
    from bert_emd.distill.distiller import Distiller
    from bert_emd.distill.student import build_student

    torch.manual_seed(0)
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_path, num_labels=2,
                                                                 attn_implementation=SCORES_ATTENTION)
    student = build_student(teacher, "teacher", 2, attn_implementation=SCORES_ATTENTION)
    distiller = Distiller(teacher, student, DistillConfig(mapping=mapping, student_layers=2)).to(device).train()
    optimizer = torch.optim.AdamW([p for p in distiller.parameters() if p.requires_grad], lr=1e-4)
    return distiller, optimizer


def make_batch(batch_size: int, length: int, device: str, padded_share: float = 0.25):
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1000, 30000, (batch_size, length), generator=generator)
    attention_mask = torch.ones(batch_size, length, dtype=torch.long)
    # a realistic batch: a quarter of the positions of half the examples are padding
    attention_mask[: batch_size // 2, int(length * (1 - padded_share)):] = 0
    input_ids[attention_mask == 0] = 0
    labels = torch.randint(0, 2, (batch_size,), generator=generator)
    return {name: tensor.to(device) for name, tensor in
            dict(input_ids=input_ids, attention_mask=attention_mask, labels=labels).items()}


def train_step(distiller, optimizer, batch, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    loss = distiller(**batch)["loss"]
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def peak_memory_mb(mapping: str, args) -> float:
    """One mapping alone in a fresh process, a few steps, then its peak memory."""
    command = [sys.executable, __file__, "--memory-of", mapping, "--teacher", args.teacher, "--batch-size",
               str(args.batch_size), "--length", str(args.length), "--threads", str(args.threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def _resident_mb() -> float:
    with open("/proc/self/statm") as handle:  # Linux: resident pages are the second field
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def memory_child(args, device: str) -> None:
    """Prints the peak memory of three training steps above what is held before them (models, optimizer)."""
    distiller, optimizer = make_distiller(args.memory_of, args.teacher, device)
    batch = make_batch(args.batch_size, args.length, device)
    train_step(distiller, optimizer, batch, device)  # optimizer state now exists
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
        for _ in range(3):
            train_step(distiller, optimizer, batch, device)
        print(torch.cuda.max_memory_allocated() / 2**20 - before)
        return
    before, peak, running = _resident_mb(), [0.0], [True]

    def sample():  # the CPU allocator has no peak counter: poll the resident size during the steps
        while running[0]:
            peak[0] = max(peak[0], _resident_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    for _ in range(3):
        train_step(distiller, optimizer, batch, device)
    running[0] = False
    sampler.join()
    print(peak[0] - before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=None, help="teacher directory (default: the bundled MiniLM-L6)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mapping")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per mapping first")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=None, help="folder for the JSON record (e.g. docs/results/emd_overhead)")
    parser.add_argument("--memory-of", choices=MAPPINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.teacher is None:
        from bert_emd.models import resolve_model

        args.teacher = resolve_model("minilm-l6")
    if args.memory_of:
        memory_child(args, device)
        return

    setups = {mapping: make_distiller(mapping, args.teacher, device) for mapping in MAPPINGS}
    batch = make_batch(args.batch_size, args.length, device)
    for mapping in MAPPINGS:
        for _ in range(args.warmup):
            train_step(*setups[mapping], batch, device)
    times = {mapping: [] for mapping in MAPPINGS}
    for round_index in range(args.steps):  # round robin: each round times every mapping once
        for mapping in MAPPINGS:
            times[mapping].append(train_step(*setups[mapping], batch, device))
        print(f"round {round_index + 1}/{args.steps}: " +
              "  ".join(f"{m} {times[m][-1] * 1000:.0f} ms" for m in MAPPINGS), flush=True)
    del setups
    median = {mapping: statistics.median(values) for mapping, values in times.items()}
    memory = {mapping: peak_memory_mb(mapping, args) for mapping in MAPPINGS}

    print(f"\nfull training step, batch {args.batch_size} x length {args.length}, {device}, "
          f"{args.threads} threads, median of {args.steps}:")
    for mapping in MAPPINGS:
        print(f"  {mapping:5s} {median[mapping] * 1000:8.1f} ms   step memory {memory[mapping]:8.0f} MB")
    ratios = {"emd_over_skip": median["emd"] / median["skip"], "emd_over_none": median["emd"] / median["none"],
              "skip_over_none": median["skip"] / median["none"]}
    print(f"  emd / skip = {ratios['emd_over_skip']:.3f} (goal <= 1.10)   emd / none = {ratios['emd_over_none']:.3f}"
          f"   skip / none = {ratios['skip_over_none']:.3f}")
    if args.output:
        from bert_emd.runinfo import package_versions, write_json

        path = write_json(Path(args.output) / "emd_overhead.json", {
            "command": " ".join(sys.argv), "device": device, "threads": args.threads, "batch_size": args.batch_size,
            "length": args.length, "steps": args.steps, "median_step_s": median, "step_times_s": times,
            "peak_memory_mb": memory, "ratios": ratios, "versions": package_versions()})
        print(f"written to {path}")


if __name__ == "__main__":
    main()
