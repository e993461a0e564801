"""`bert-emd early-exit evaluate`: the speed-accuracy curve of an early-exit model over thresholds.

For each uncertainty measure and threshold: the dev metric, the mean exit layer, the FLOPs ratio
against the full model (analytic count per example at its real length: each layer run, each exit
student evaluated on the way, the final classifier) and the measured CPU latency at batch 1 and 32
of real early-exit inference (samples leave the batch as they exit) against the plain full model,
both timed alternately in this run on the same examples (fastest of two passes each). Metrics and
exit layers come from every exit's logits computed once; the timed inference is checked to exit at
the same layers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from bert_emd.data.loading import DataOptions, load_split, resolve_task, tokenize
from bert_emd.early_exit.heads import HEADS
from bert_emd.early_exit.model import EarlyExitModel
from bert_emd.early_exit.train import exit_logits, labels_of
from bert_emd.early_exit.uncertainty import UNCERTAINTIES, check_uncertainty, exit_layers
from bert_emd.errors import BertEmdError
from bert_emd.evaluation.metrics import compute_metrics
from bert_emd.models import label_names_of, load_config, load_tokenizer
from bert_emd.options import option, resolve_config
from bert_emd.outputs import check_output_file
from bert_emd.runinfo import package_versions, run_record, write_json


@dataclass
class EarlyExitEvalConfig(DataOptions):
    model: str | None = option(None, "early-exit model directory (a `bert-emd early-exit train` output) (required)")
    thresholds: str = option("0,0.05,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
                             "comma-separated uncertainty thresholds in [0, 1]")
    uncertainty: str = option("entropy", "comma-separated uncertainty measures: entropy, topk")
    top_k: int = option(2, "topk: number of largest class probabilities used (2 <= K <= classes)", at_least=2)
    max_loss: float = option(0.01, "the chosen threshold keeps the main metric within this loss of the full model "
                             "(0.01 = 1 point)", at_least=0)
    latency_samples: int = option(256, "dev examples timed per threshold (0: no latency measurement)", at_least=0)
    latency_batch_sizes: str = option("1,32", "comma-separated batch sizes of the latency measurement")
    threads: int = option(2, "CPU threads of the latency measurement", at_least=1)
    eval_batch_size: int = option(64, "batch size of the metric pass", at_least=1)
    output: str | None = option(None, "JSON file of the curve (default: MODEL/early_exit_curve.json); the PNG plot "
                                "goes beside it")


def flops_per_example(model: EarlyExitModel, lengths: np.ndarray, exits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(early-exit FLOPs, full-model FLOPs) per example of ``lengths`` tokens exiting at layer ``exits``."""
    config = model.backbone.config
    hidden, inner, classes = config.hidden_size, config.intermediate_size, config.num_labels
    length = lengths.astype(np.float64)
    layer = 2 * (length * (4 * hidden * hidden + 2 * hidden * inner) + 2 * length * length * hidden)
    head = HEADS[model.settings["design"]].flops(hidden, classes, model.settings["width"], length)
    final = 2 * (hidden * hidden + hidden * classes)
    layers = model.num_layers
    full = layers * layer + final
    early = exits * layer + np.minimum(exits, layers - 1) * head + np.where(exits == layers, final, 0)
    return early, full


def _time_pass(run, batches) -> float:
    started = time.perf_counter()
    for batch in batches:
        run(batch)
    return time.perf_counter() - started


def evaluate_early_exit(config: EarlyExitEvalConfig | str | dict | None = None, **overrides) -> dict:
    config = resolve_config(EarlyExitEvalConfig, config, overrides)
    if not config.model:
        raise BertEmdError("--model is required (an early-exit model directory)")
    check_output_file(config.output or Path(config.model) / "early_exit_curve.json")
    measures = [name.strip() for name in config.uncertainty.split(",") if name.strip()]
    try:
        thresholds = sorted(float(value) for value in config.thresholds.split(","))
        batch_sizes = [int(value) for value in config.latency_batch_sizes.split(",")] if config.latency_samples else []
    except ValueError:
        raise BertEmdError("--thresholds takes comma-separated numbers, --latency-batch-sizes whole numbers") from None
    task = resolve_task(config, model_labels=label_names_of(load_config(config.model)))
    if task.is_regression:
        raise BertEmdError(f"task {task.display_name} is a regression task: early exit by uncertainty needs "
                           "classification")
    model = EarlyExitModel.from_pretrained(config.model)
    for measure in measures:
        for threshold in thresholds:
            check_uncertainty(measure, threshold, config.top_k, model.settings["classes"])
    if not measures:
        raise BertEmdError(f"--uncertainty is empty; choose from {', '.join(UNCERTAINTIES)}")
    tokenizer = load_tokenizer(config.model, config.max_length)
    collator = DataCollatorWithPadding(tokenizer)
    split = task.eval_splits[0]
    dev = tokenize(load_split(task, config, split), tokenizer, config.max_length, f"Tokenising {split}")
    labels = labels_of(dev)
    logits = exit_logits(model, dev, tokenizer, config.eval_batch_size)
    probs = logits.softmax(-1)
    lengths = np.asarray([len(ids) for ids in dev["input_ids"]])
    full_metrics = compute_metrics(task, logits[-1].numpy(), labels)
    main = task.main_metric
    torch.set_num_threads(config.threads)
    timing = _latency_setup(model, dev, collator, batch_sizes, config.latency_samples)

    report = {"model": config.model, "task": task.name, "split": split, "num_examples": len(dev),
              "main_metric": main, "design": model.settings["design"], "layers": model.num_layers,
              "full_model": {"metrics": full_metrics},
              "per_exit": [compute_metrics(task, layer.numpy(), labels) for layer in logits],
              "top_k": config.top_k, "max_loss": config.max_loss, "threads": config.threads,
              "latency_samples": min(config.latency_samples, len(dev)), "curves": {}, "chosen": {},
              "versions": package_versions()}
    measured: dict[tuple, dict] = {}
    for measure in measures:
        points = []
        for threshold in thresholds:
            layers = exit_layers(probs, threshold, measure, config.top_k)
            chosen = logits[layers - 1, torch.arange(logits.shape[1])]
            early, full = flops_per_example(model, lengths, layers.numpy())
            point = {"threshold": threshold, "metrics": compute_metrics(task, chosen.numpy(), labels),
                     "mean_exit_layer": layers.float().mean().item(),
                     "exit_counts": np.bincount(layers.numpy(), minlength=model.num_layers + 1)[1:].tolist(),
                     "flops_speedup": float(full.sum() / early.sum())}
            # the same exit layers for every example means the same computation: time it once
            key = tuple(layers[:report["latency_samples"]].tolist())
            if key not in measured:
                measured[key] = _measure(model, timing, threshold, measure, config.top_k, layers)
                measured[key]["timed_at"] = f"{measure} {threshold:g}"
            point.update(measured[key])
            points.append(point)
            print(f"{measure} {threshold:5.2f}: {main} {point['metrics'][main]:.4f}  mean exit layer "
                  f"{point['mean_exit_layer']:.2f}  FLOPs {point['flops_speedup']:.2f}x" + "".join(
                      f"  batch {size}: {point['latency_speedup'][str(size)]:.2f}x"
                      for size in batch_sizes), flush=True)
        report["curves"][measure] = points
        report["chosen"][measure] = choose(points, full_metrics[main] - config.max_loss, main)
    output = Path(config.output or Path(config.model) / "early_exit_curve.json")
    write_json(output, report)
    write_json(output.with_name(output.stem + "_run_config.json"), run_record("early-exit evaluate", config,
                                                                             task=task.name))
    from bert_emd.early_exit.plots import plot_curve

    plot = plot_curve(report, output.with_suffix(".png"))
    for measure, chosen in report["chosen"].items():
        if chosen:
            print(f"{measure}: threshold {chosen['threshold']:g} keeps {main} within {config.max_loss:g} of the full "
                  f"model ({chosen['metrics'][main]:.4f} vs {full_metrics[main]:.4f}) at {chosen['speed']:.2f}x "
                  f"({chosen['speed_by']})")
    print(f"curve written to {output} and {plot}")
    return report


def choose(points: list[dict], floor: float, main: str) -> dict | None:
    """The fastest point (measured batch-1 speedup, else FLOPs) whose metric is at least ``floor``."""
    kept = [point for point in points if point["metrics"][main] >= floor - 1e-12]
    if not kept:
        return None

    def speed(point):
        measured = point.get("latency_speedup") or {}
        return (measured[min(measured, key=int)], "measured, smallest batch") if measured else \
            (point["flops_speedup"], "FLOPs")
    best = max(kept, key=lambda point: speed(point)[0])
    value, by = speed(best)
    return {**best, "speed": value, "speed_by": by}


def _latency_setup(model: EarlyExitModel, dev, collator, batch_sizes: list[int], samples: int) -> dict:
    """Batches of the first ``samples`` dev examples per batch size, and the full model's time on them."""
    timing = {"batches": {}, "full": {}}
    if not batch_sizes or samples <= 0:
        return timing
    features = dev.select(range(min(samples, len(dev))))
    features = features.remove_columns([name for name in features.column_names if name in ("labels", "idx")])
    for size in batch_sizes:
        timing["batches"][str(size)] = list(DataLoader(features, batch_size=size, collate_fn=collator))
    with torch.inference_mode():
        model.backbone(**timing["batches"][str(batch_sizes[0])][0])  # warm-up
    return timing


def _measure(model, timing: dict, threshold: float, measure: str, top_k: int, expected: torch.Tensor,
             rounds: int = 2) -> dict:
    """Early-exit and full-model latency per example, timed alternately (``rounds`` passes each, the fastest
    kept) so that both see the same machine state; the speedup; agreement with the computed exit layers."""
    if not timing["batches"]:
        return {}
    result = {"latency_ms_per_example": {}, "full_latency_ms_per_example": {}, "latency_speedup": {},
              "timed_exit_agreement": {}}
    backbone = model.backbone
    for size, batches in timing["batches"].items():
        exits: list[torch.Tensor] = []

        def early(batch, exits=exits):
            exits.append(model.predict(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"),
                                       threshold, measure, top_k)[1])

        def full(batch):
            with torch.inference_mode():
                backbone(**batch)
        early(batches[0])  # warm-up
        early_times, full_times = [], []
        for _ in range(rounds):
            exits.clear()
            early_times.append(_time_pass(early, batches))
            full_times.append(_time_pass(full, batches))
        examples = sum(len(batch["input_ids"]) for batch in batches)
        result["latency_ms_per_example"][size] = 1000 * min(early_times) / examples
        result["full_latency_ms_per_example"][size] = 1000 * min(full_times) / examples
        result["latency_speedup"][size] = min(full_times) / min(early_times)
        timed = torch.cat(exits)
        result["timed_exit_agreement"][size] = float((timed == expected[:len(timed)]).float().mean())
    return result
