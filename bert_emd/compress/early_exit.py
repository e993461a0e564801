"""MS-BERT early exit as one of compress's methods: exit students trained on the teacher itself, and the uncertainty
threshold chosen on dev to meet the speed target, measured at the deployment batch size.

Early exit cannot be exported to ONNX (its depth depends on each example), so it is measured in PyTorch: the
speedup is the early-exit model's time against the full model's on the same dev batches, taken in turn by
`bert-emd early-exit evaluate`. Its latency at the deployment shape is the teacher's PyTorch fp32 p50 divided by that
speedup; against another baseline (the teacher on an ONNX backend) the target is converted with the teacher's two
measured latencies.
"""

from __future__ import annotations

from pathlib import Path

from bert_emd.data.loading import dev_data_options
from bert_emd.errors import BertEmdError
from bert_emd.runinfo import read_json

THRESHOLDS = "0,0.02,0.05,0.1,0.15,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9"


def train_options(data: dict, teacher: str, augmented: str | None, seed: int, output: Path) -> dict:
    """`bert-emd early-exit train` on the same data as the distilled students (one epoch over augmented data)."""
    return {**data, "teacher": teacher, "augmented_train": augmented or data.get("augmented_train"),
            "epochs": 1.0 if augmented else 2.0, "seed": seed, "output": str(output)}


def needed_speedup(config, table: list[dict]) -> float:
    """The speedup against the full model in PyTorch fp32 that meets the target, from the teacher's measurements."""
    teacher = next(row for row in table if row["name"] == "teacher")
    fp32, backend = teacher["torch_fp32_p50_ms"], teacher["p50_ms"]
    if config.target_latency_ms is not None:
        return fp32 / config.target_latency_ms
    if config.baseline == "teacher-torch-fp32":
        return config.target_speedup
    return config.target_speedup * fp32 / backend


def deploy_early_exit(config, task, student: Path, table: list[dict]) -> dict:
    """Sweep the thresholds on dev, timed at the deployment batch size; keep the best score that meets the target."""
    from bert_emd.early_exit import evaluate_early_exit

    data = dev_data_options(config, "max_length", "max_eval_samples")
    curve_path = student / "early_exit_curve.json"
    size = str(config.batch_size_deploy)
    curve = evaluate_early_exit(model=str(student), thresholds=THRESHOLDS, uncertainty="entropy",
                                latency_samples=max(8 * config.batch_size_deploy, 64), latency_batch_sizes=size,
                                threads=config.threads, output=str(curve_path), **data)
    needed = needed_speedup(config, table)
    points = curve["curves"]["entropy"]
    meeting = [point for point in points if point.get("latency_speedup", {}).get(size, 0.0) >= needed]
    main = task.main_metric
    if not meeting:
        fastest = max(points, key=lambda point: point.get("latency_speedup", {}).get(size, 0.0))
        raise BertEmdError(f"early exit meets no target here: its fastest threshold ({fastest['threshold']:g}) "
                           f"measured {fastest['latency_speedup'][size]:.2f}x against the full model at batch "
                           f"{size}, {needed:.2f}x was needed")
    chosen = max(meeting, key=lambda point: (point["metrics"][main], point["latency_speedup"][size]))
    size_mb = sum(path.stat().st_size for path in student.glob("*.safetensors")) / 2**20
    return {"backend": "torch-fp32", "path": str(student), "size_mb": size_mb, "split": curve["split"],
            "examples": curve["num_examples"], "metrics": chosen["metrics"],
            "student_metrics": curve["full_model"]["metrics"], "max_abs_output_difference": None,
            "threshold": chosen["threshold"], "mean_exit_layer": chosen["mean_exit_layer"],
            "measured_speedup": chosen["latency_speedup"][size], "needed_speedup": needed,
            "measured_on": f"{curve['latency_samples']} dev examples in batches of {size}, against the full model "
                           "in PyTorch in turn", "curve": str(curve_path)}


def early_exit_timing(deployed: dict, teacher_timing: dict, backend: str) -> dict:
    """The early-exit model's latency at the deployment shape, derived from its measured speedup (PyTorch only)."""
    p50 = teacher_timing["backends"]["torch-fp32"]["p50_ms"] / deployed["measured_speedup"]
    entry = {"p50_ms": p50, "p90_ms": None, "size_mb": deployed["size_mb"], "derived": True}
    return {"parameters": None, "parameters_without_embeddings": None, "layers": teacher_timing["layers"],
            "backends": {"torch-fp32": entry, backend: entry}}


def curve_of(deployed: dict) -> dict | None:
    return read_json(deployed["curve"])
