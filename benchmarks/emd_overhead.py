"""What the layer terms cost per training step: EMD and the fixed skip mapping against no layer terms,
with the attention-score distance computed from L x L score maps or factorised from queries and keys.

MiniLM-L6 teacher (6 layers), 2-layer student initialised from it, batch 32, lengths 128 and 512.
Full training steps (teacher forward, student forward and backward, EMD solve and weight update,
AdamW step) are timed for five rows, interleaved round by round in one process so that the ratios
share the machine's state:

- ``none``: prediction-layer KD only, the models' default (SDPA) attention;
- ``skip-maps``, ``emd-maps``: eager attention returning every score map (``--attention-distance maps``);
- ``skip-factorised``, ``emd-factorised``: SDPA attention handing back Q and K, distances from Gram
  matrices (``--attention-distance factorised``, the default where the family allows it).

Peak memory is read per row in a fresh subprocess (growth over what the models and optimizer hold:
on CPU the allocator's bytes in use (glibc ``mallinfo2``), polled every millisecond during three
steps; ``max_memory_allocated`` on CUDA). Rows take turns: each round times every row once, the
starting row moving by one each round, so no row always follows the same one. Goals: emd <= 1.10 x skip;
emd-factorised / none <= 1.15 at length 128 and <= 1.25 at 512; extra memory of emd-factorised over none
<= 1.5x at 128, and no larger at 512 than at 128.

    python benchmarks/emd_overhead.py [--lengths 128 512] [--steps 10] [--threads 2]
                                      [--output results/emd_overhead]
"""

from __future__ import annotations

import argparse
import ctypes
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

ROWS = {"none": ("none", "auto"), "skip-maps": ("skip", "maps"), "emd-maps": ("emd", "maps"),
        "skip-factorised": ("skip", "factorised"), "emd-factorised": ("emd", "factorised")}


def make_distiller(row: str, teacher_path: str, device: str):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from bert_emd.distill import DistillConfig
    from bert_emd.distill.attention import resolve_attention
    from bert_emd.distill.distiller import Distiller
    from bert_emd.distill.student import build_student

    mapping, distance = ROWS[row]
    torch.manual_seed(0)
    implementation, _ = resolve_attention("scores", distance, mapping != "none",
                                          AutoConfig.from_pretrained(teacher_path))
    kwargs = {} if implementation is None else {"attn_implementation": implementation}
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_path, num_labels=2, **kwargs)
    student = build_student(teacher, "teacher", 2, attn_implementation=implementation)
    config = DistillConfig(mapping=mapping, student_layers=2, attention_distance=distance)
    distiller = Distiller(teacher, student, config).to(device).train()
    assert distiller.factorised_attention == (distance == "factorised")
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


def peak_memory_mb(row: str, length: int, args) -> float:
    """One row alone in a fresh process, a few steps, then its peak memory."""
    command = [sys.executable, __file__, "--memory-of", row, "--teacher", args.teacher, "--batch-size",
               str(args.batch_size), "--lengths", str(length), "--threads", str(args.threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def _heap_in_use_mb() -> float:
    """Bytes the C allocator has handed out and not taken back (glibc mallinfo2: heap chunks in use plus
    mmapped blocks), which is where torch's CPU tensors live. Unlike the resident size it falls as soon
    as a tensor is freed, so one row's peak is not inflated by pages a previous step left mapped."""
    info = _LIBC.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


def _resident_mb() -> float:
    with open("/proc/self/statm") as handle:  # Linux: resident pages are the second field
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


try:
    _LIBC = ctypes.CDLL("libc.so.6")
    _LIBC.mallinfo2.restype = _MallInfo2
    cpu_memory_mb, CPU_MEMORY_MEASURE = _heap_in_use_mb, "glibc mallinfo2 (heap in use + mmapped blocks)"
except (OSError, AttributeError):  # not glibc: fall back on the resident size
    cpu_memory_mb, CPU_MEMORY_MEASURE = _resident_mb, "resident set size"


def memory_child(args, device: str) -> None:
    """Prints the peak memory of three training steps above what is held before them (models, optimizer)."""
    distiller, optimizer = make_distiller(args.memory_of, args.teacher, device)
    batch = make_batch(args.batch_size, args.lengths[0], device)
    train_step(distiller, optimizer, batch, device)  # optimizer state now exists
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
        for _ in range(3):
            train_step(distiller, optimizer, batch, device)
        print(torch.cuda.max_memory_allocated() / 2**20 - before)
        return
    before, peak, running = cpu_memory_mb(), [0.0], [True]

    def sample():  # the CPU allocator has no peak counter: poll what it holds during the steps
        while running[0]:
            peak[0] = max(peak[0], cpu_memory_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    for _ in range(3):
        train_step(distiller, optimizer, batch, device)
    running[0] = False
    sampler.join()
    print(peak[0] - before)


def measure_length(length: int, args, device: str) -> dict:
    setups = {row: make_distiller(row, args.teacher, device) for row in ROWS}
    batch = make_batch(args.batch_size, length, device)
    for row in ROWS:
        for _ in range(args.warmup):
            train_step(*setups[row], batch, device)
    times = {row: [] for row in ROWS}
    order = list(ROWS)
    for round_index in range(args.steps):  # round robin: each round times every row once, starting one row later
        for row in order[round_index % len(order):] + order[:round_index % len(order)]:
            times[row].append(train_step(*setups[row], batch, device))
        print(f"length {length}, round {round_index + 1}/{args.steps}: " +
              "  ".join(f"{row} {times[row][-1] * 1000:.0f} ms" for row in ROWS), flush=True)
    del setups
    median = {row: statistics.median(values) for row, values in times.items()}
    memory = {row: None if args.no_memory else peak_memory_mb(row, length, args) for row in ROWS}
    ratios = {"emd_maps_over_skip_maps": median["emd-maps"] / median["skip-maps"],
              "emd_factorised_over_skip_factorised": median["emd-factorised"] / median["skip-factorised"],
              "emd_maps_over_none": median["emd-maps"] / median["none"],
              "emd_factorised_over_none": median["emd-factorised"] / median["none"],
              "emd_maps_over_emd_factorised": median["emd-maps"] / median["emd-factorised"],
              "memory_emd_maps_over_none": None if args.no_memory else memory["emd-maps"] / memory["none"],
              "memory_emd_factorised_over_none": None if args.no_memory else
              memory["emd-factorised"] / memory["none"]}
    print(f"\nfull training step, batch {args.batch_size} x length {length}, {device}, {args.threads} threads, "
          f"median of {args.steps}:")
    for row in ROWS:
        print(f"  {row:16s} {median[row] * 1000:8.1f} ms" + ("" if memory[row] is None else
                                                             f"   step memory {memory[row]:8.0f} MB"))
    print("  " + "   ".join(f"{name} = {value:.3f}" for name, value in ratios.items() if value is not None) + "\n",
          flush=True)
    return {"median_step_s": median, "step_times_s": times, "peak_memory_mb": memory, "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=None, help="teacher directory (default: the bundled MiniLM-L6)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per row and length")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per row first")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=None, help="folder for the JSON record (e.g. results/emd_overhead)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses (a quick check)")
    parser.add_argument("--memory-of", choices=tuple(ROWS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers.utils import logging

    logging.set_verbosity_error()  # the teacher's new classifier head is expected; no load report per row
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.teacher is None:
        from bert_emd.models import resolve_model

        args.teacher = resolve_model("minilm-l6")
    if args.memory_of:
        memory_child(args, device)
        return

    results = {}
    for length in args.lengths:
        results[str(length)] = measure_length(length, args, device)
        if args.output:  # written after every length: a long run keeps what it measured
            from bert_emd.runinfo import package_versions, write_json

            path = write_json(Path(args.output) / "emd_overhead.json", {
                "command": " ".join(sys.argv), "device": device, "accelerator": accelerator(device),
                "threads": args.threads, "batch_size": args.batch_size, "steps": args.steps,
                "memory_measure": "torch.cuda.max_memory_allocated" if device == "cuda" else CPU_MEMORY_MEASURE,
                "rows": {row: {"mapping": mapping, "attention_distance": distance if mapping != "none" else None}
                         for row, (mapping, distance) in ROWS.items()},
                "lengths": results, "versions": package_versions()})
            print(f"written to {path}")


def accelerator(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else "cpu"


if __name__ == "__main__":
    main()
