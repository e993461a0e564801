"""The student's shape from measured speed: untrained candidates of every depth, timed against the teacher on the
deployment backend in one run, and the largest one that meets the target.

Latency depends on the architecture, not on the weights, so an untrained candidate (the teacher's embeddings and
evenly spaced teacher layers, as the student will start) runs as fast as the trained student will.
"""

from __future__ import annotations

from pathlib import Path

from bert_emd.errors import BertEmdError

# compress's backend names -> `bert-emd benchmark`'s
BENCHMARK_BACKEND = {"torch-fp32": "torch-fp32", "onnx-fp32": "ort-fp32", "onnx-int8": "ort-int8"}


def resolve_backend(backend: str) -> str:
    """``auto`` -> onnx-int8 when ONNX Runtime and the exporter are installed, else torch-fp32; an ONNX backend
    without them is refused naming the extra."""
    from bert_emd.deploy.export import require_onnx

    if backend == "auto":
        try:
            require_onnx()
        except BertEmdError:
            return "torch-fp32"
        return "onnx-int8"
    if backend.startswith("onnx"):
        require_onnx()  # one line naming the `deploy` extra
    return backend


def save_candidates(teacher, tokenizer, folder: Path, depths: list[int]) -> list[Path]:
    """One untrained student per depth, saved as a model directory."""
    from bert_emd.distill.student import build_student

    paths = []
    for layers in depths:
        path = folder / f"L{layers}"
        build_student(teacher, "teacher", layers).save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths.append(path)
    return paths


BUSY_LOAD = 0.3  # more than this many cores busy with other work just before timing: the latencies may be off


def _busy_and_total() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def load_average(seconds: float = 1.0) -> float | None:
    """How many cores other work keeps busy, sampled over ``seconds`` just before a latency measurement: all the
    machine's busy time (/proc/stat) less this process's own (its threads may still spin after the last stage);
    None where /proc/stat is missing."""
    import os
    import time

    try:
        busy, total = _busy_and_total()
        own, started = sum(os.times()[:2]), time.monotonic()
        time.sleep(seconds)
        busy_after, total_after = _busy_and_total()
        own_after, ended = sum(os.times()[:2]), time.monotonic()
    except (OSError, ValueError, IndexError):
        return None
    elapsed = total_after - total
    if elapsed <= 0 or ended <= started:
        return None
    machine = (os.cpu_count() or 1) * (busy_after - busy) / elapsed
    return max(0.0, machine - (own_after - own) / (ended - started))


def measure(teacher_dir: str, candidates: list[Path], backend: str, batch_size: int, length: int, threads: int,
            repeats: int) -> dict:
    """`bert-emd benchmark` of the teacher and every candidate in turn, on PyTorch fp32 and the backend."""
    from bert_emd.deploy.benchmark import benchmark

    backends = list(dict.fromkeys(["torch-fp32", BENCHMARK_BACKEND[backend]]))
    return benchmark(model=[teacher_dir, *map(str, candidates)], batch_sizes=str(batch_size), lengths=str(length),
                     threads=threads, backends=",".join(backends), repeats=repeats, warmup=1)


def latency_table(report: dict, backend: str, baseline: str, described: list[dict] | None = None) -> list[dict]:
    """Rows (teacher first) with p50 / p90 on the backend and the speedup against the baseline and against the
    teacher on the same backend. ``described``: per candidate (in the report's order after the teacher), what its
    row also says (a hybrid candidate: its name and ratio); a depth candidate is named by its layers."""
    measured = BENCHMARK_BACKEND[backend]

    def setting(entry: dict, name: str) -> dict:
        (only,) = entry["backends"][name]["settings"].values()
        return only

    teacher = report["models"][0]
    base_backend = "torch-fp32" if baseline == "teacher-torch-fp32" else measured
    base = setting(teacher, base_backend)["p50_ms"]
    same = setting(teacher, measured)["p50_ms"]
    rows = []
    described = [{}, *(described or [{}] * (len(report["models"]) - 1))]
    for index, entry in enumerate(report["models"]):
        timing = setting(entry, measured)
        rows.append({"name": "teacher" if index == 0 else f"L{entry['layers']}", "layers": entry["layers"],
                     "parameters": entry["parameters"], "backend": backend, "p50_ms": timing["p50_ms"],
                     "p90_ms": timing["p90_ms"], "speedup": base / timing["p50_ms"],
                     "speedup_same_backend": same / timing["p50_ms"],
                     "torch_fp32_p50_ms": setting(entry, "torch-fp32")["p50_ms"], **described[index]})
    return rows


def choose_shape(table: list[dict], target_speedup: float | None = None, target_latency_ms: float | None = None,
                 allowed: list[int] | None = None, method: str | None = None) -> dict:
    """The deepest candidate (teacher excluded; of the ``allowed`` depths if given) that meets the target; for
    ``method`` hybrid, the lowest-ratio hybrid candidate that does. One line naming the fastest if none does."""
    hybrid = method == "hybrid"
    candidates = [row for row in table if row["name"] != "teacher" and ("hybrid_ratio" in row) == hybrid
                  and (allowed is None or row["layers"] in allowed)]
    if not candidates:
        raise BertEmdError("no hybrid candidate could be built for this teacher" if hybrid else
                           "the teacher has one layer: there is no smaller depth to distil into")

    def meets(row: dict) -> bool:
        if target_latency_ms is not None:
            return row["p50_ms"] <= target_latency_ms
        return row["speedup"] >= target_speedup

    meeting = [row for row in candidates if meets(row)]
    if not meeting:
        fastest = max(candidates, key=lambda row: row["speedup"])
        asked = f"--target-latency-ms {target_latency_ms:g}" if target_latency_ms is not None else \
            f"--target-speedup {target_speedup:g}"
        among = f" for {method} (depths {', '.join(map(str, allowed))})" if allowed is not None else ""
        if hybrid:
            ratios = sorted(row["hybrid_ratio"] for row in candidates)
            what = f"hybrid ratio ({ratios[0]:g}x to {ratios[-1]:g}x)"
        else:
            what = f"student depth{among}"
        which = fastest["name"] if hybrid else f"{fastest['layers']} layer(s)"
        raise BertEmdError(f"no {what} meets {asked} on {fastest['backend']}: the fastest candidate, {which}, "
                           f"measured {fastest['speedup']:.2f}x ({fastest['p50_ms']:.1f} ms); ask for less, or another "
                           "backend")
    if hybrid:
        return min(meeting, key=lambda row: row["hybrid_ratio"])
    return max(meeting, key=lambda row: row["layers"])
