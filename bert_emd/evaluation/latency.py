"""CPU/GPU inference latency of a classifier on a fixed-size batch, measured after warm-up."""

from __future__ import annotations

import statistics
import time

import torch


def measure_latency(model, batch_size: int = 32, length: int = 128, repeats: int = 10, warmup: int = 2,
                    threads: int | None = None) -> dict[str, float]:
    """Median and p90 seconds of one forward pass on ``batch_size`` x ``length`` tokens (no padding)."""
    if threads is not None:
        torch.set_num_threads(threads)
    device = next(model.parameters()).device
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(5, vocab, (batch_size, length), generator=generator).to(device),
             "attention_mask": torch.ones(batch_size, length, dtype=torch.long, device=device)}
    model.eval()
    times = []
    with torch.inference_mode():
        for index in range(warmup + repeats):
            started = time.perf_counter()
            model(**batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if index >= warmup:
                times.append(time.perf_counter() - started)
    times.sort()
    return {"p50_s": statistics.median(times), "p90_s": times[min(len(times) - 1, int(0.9 * len(times)))],
            "batch_size": batch_size, "length": length, "threads": torch.get_num_threads()}
