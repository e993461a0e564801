"""`bert-emd benchmark`: size and speed of models on every backend, measured in turn in one run.

Backends: ``torch-fp32``; ``torch-int8`` (torchao, what ``bert-emd quantize`` saves);
``torch-int8-legacy`` (``torch.ao.quantization.quantize_dynamic``, deprecated but the fast CPU path);
``ort-fp32`` and ``ort-int8`` (ONNX Runtime on the ``bert-emd export`` graphs). Each latency is the p50
and p90 of ``--repeats`` forward passes after ``--warmup`` ones, on a batch of random token ids without
padding; throughput is examples per second at the p50.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bert_emd.deploy.export import load_exportable
from bert_emd.errors import BertEmdError
from bert_emd.models import check_max_length, load_config
from bert_emd.options import option, resolve_config
from bert_emd.outputs import check_output_file
from bert_emd.runinfo import package_versions, write_json

BACKENDS = ("torch-fp32", "torch-int8", "torch-int8-legacy", "ort-fp32", "ort-int8")


@dataclass
class BenchmarkConfig:
    model: list[str] | None = option(None, "model directory; repeat the flag for more models (the first is the "
                                     "reference for relative speed) (required)")
    batch_sizes: str = option("1,32", "comma-separated batch sizes")
    lengths: str = option("128", "comma-separated sequence lengths")
    threads: int = option(2, "CPU threads for PyTorch and ONNX Runtime", at_least=1)
    backends: str = option(",".join(BACKENDS), "comma-separated backends to measure")
    repeats: int = option(10, "timed forward passes per setting", at_least=1)
    warmup: int = option(2, "untimed forward passes per setting first", at_least=0)
    output: str | None = option(None, "write the results to this JSON file")


def _time(run, repeats: int, warmup: int) -> tuple[float, float]:
    times = []
    for index in range(warmup + repeats):
        started = time.perf_counter()
        run()
        if index >= warmup:
            times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


def _inputs(vocab_size: int, batch_size: int, length: int) -> dict[str, np.ndarray]:
    """Random token ids, full attention; each backend takes the inputs its model has."""
    generator = np.random.default_rng(0)
    return {"input_ids": generator.integers(5, vocab_size, (batch_size, length), dtype=np.int64),
            "attention_mask": np.ones((batch_size, length), dtype=np.int64),
            "token_type_ids": np.zeros((batch_size, length), dtype=np.int64)}


def _folder_mb(paths) -> float:
    return sum(path.stat().st_size for path in paths if path.is_file()) / 2**20


def _runners(name: str, model, backends: list[str], threads: int, scratch: Path) -> dict:
    """backend -> (callable on numpy inputs, size on disk in MB, input names it takes)."""
    runners = {}
    token_types = getattr(model.config, "type_vocab_size", 0) > 1  # MPNet and DistilBERT have none
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if token_types else [])

    def torch_runner(module):
        def run(inputs):
            with torch.inference_mode():
                module(**{key: torch.from_numpy(inputs[key]) for key in names})
        return run

    if "torch-fp32" in backends:
        runners["torch-fp32"] = (torch_runner(model), _folder_mb(Path(name).glob("*.safetensors")))
    if "torch-int8" in backends:
        from bert_emd.deploy.quantize import load_int8

        int8 = load_int8(name)
        int8.save_pretrained(scratch / "torch-int8")
        runners["torch-int8"] = (torch_runner(int8), _folder_mb((scratch / "torch-int8").glob("*.safetensors")))
    if "torch-int8-legacy" in backends:
        from bert_emd.deploy.quantize import legacy_int8

        legacy = legacy_int8(model)
        torch.save(legacy.state_dict(), scratch / "legacy.pt")
        runners["torch-int8-legacy"] = (torch_runner(legacy), _folder_mb([scratch / "legacy.pt"]))
    onnx_wanted = [backend for backend in backends if backend.startswith("ort-")]
    if onnx_wanted:
        import onnxruntime

        from bert_emd.deploy.export import export

        export(model=name, output=str(scratch / "onnx"), int8="ort-int8" in backends, check_samples=8)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        for backend, file in (("ort-fp32", "model.onnx"), ("ort-int8", "model_int8.onnx")):
            if backend in backends:
                session = onnxruntime.InferenceSession(str(scratch / "onnx" / file), options,
                                                       providers=["CPUExecutionProvider"])
                session_names = [item.name for item in session.get_inputs()]
                runners[backend] = ((lambda inputs, s=session, n=session_names: s.run(None, {k: inputs[k]
                                                                                           for k in n})),
                                    _folder_mb([scratch / "onnx" / file]))
    return runners


def benchmark(config: BenchmarkConfig | str | dict | None = None, **overrides) -> dict:
    """Measure every model on every backend and setting; print a table and return (and write) the JSON."""
    config = resolve_config(BenchmarkConfig, config, overrides)
    if not config.model:
        raise BertEmdError("--model is required (repeat it to compare models)")
    backends = [b.strip() for b in config.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise BertEmdError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    try:
        batch_sizes = [int(b) for b in config.batch_sizes.split(",")]
        lengths = [int(n) for n in config.lengths.split(",")]
    except ValueError:
        raise BertEmdError("--batch-sizes and --lengths take comma-separated whole numbers") from None
    if min(batch_sizes + lengths) < 1:
        raise BertEmdError("--batch-sizes and --lengths must be at least 1")
    for model in config.model:  # before any measurement, so that nothing measured is lost
        check_max_length(max(lengths), load_config(model), model, flag="--lengths")
    if config.output:
        check_output_file(config.output)
    if any(backend.startswith("ort-") for backend in backends):
        from bert_emd.deploy.export import require_onnx

        require_onnx()
    if any(backend.startswith("torch-int8") and backend != "torch-int8-legacy" for backend in backends):
        from bert_emd.deploy.quantize import require_torchao

        require_torchao()
    torch.set_num_threads(config.threads)
    report = {"threads": config.threads, "batch_sizes": batch_sizes, "lengths": lengths, "backends": backends,
              "repeats": config.repeats, "versions": package_versions(), "models": []}
    for name in config.model:
        model = load_exportable(name)[0].eval()
        total = sum(p.numel() for p in model.parameters())
        base = getattr(model, model.base_model_prefix)
        embeddings = sum(p.numel() for p in base.embeddings.parameters()) if hasattr(base, "embeddings") else 0
        entry = {"model": name, "layers": model.config.num_hidden_layers, "parameters": total,
                 "parameters_without_embeddings": total - embeddings, "backends": {}}
        with tempfile.TemporaryDirectory() as scratch:
            runners = _runners(name, model, backends, config.threads, Path(scratch))
            for backend, (run, size_mb) in runners.items():
                settings = {}
                for batch_size in batch_sizes:
                    for length in lengths:
                        inputs = _inputs(model.config.vocab_size, batch_size, length)
                        p50, p90 = _time(lambda run=run, inputs=inputs: run(inputs), config.repeats, config.warmup)
                        settings[f"batch{batch_size}_len{length}"] = {
                            "batch_size": batch_size, "length": length, "p50_ms": p50 * 1000, "p90_ms": p90 * 1000,
                            "throughput_per_s": batch_size / p50}
                entry["backends"][backend] = {"size_mb": size_mb, "settings": settings}
                print(f"measured {name} on {backend}", flush=True)
        report["models"].append(entry)
    _relative_speed(report)
    print(format_report(report))
    if config.output:
        write_json(config.output, report)
        print(f"results written to {config.output}")
    return report


def _relative_speed(report: dict) -> None:
    """Speed of each model relative to the first one, per backend and setting (first model p50 / this p50)."""
    reference = report["models"][0]["backends"]
    for entry in report["models"]:
        for backend, measured in entry["backends"].items():
            for key, setting in measured["settings"].items():
                base = reference.get(backend, {}).get("settings", {}).get(key)
                setting["speedup_vs_first_model"] = base["p50_ms"] / setting["p50_ms"] if base else None
                fp32 = entry["backends"].get("torch-fp32", {}).get("settings", {}).get(key)
                setting["speedup_vs_torch_fp32"] = fp32["p50_ms"] / setting["p50_ms"] if fp32 else None


def format_report(report: dict) -> str:
    lines = [f"{'model':40s} {'params':>11s} {'no-emb':>11s} {'backend':18s} {'MB':>7s} {'setting':>16s} "
             f"{'p50 ms':>9s} {'p90 ms':>9s} {'ex/s':>8s} {'vs 1st':>7s} {'vs fp32':>8s}"]
    for entry in report["models"]:
        for backend, measured in entry["backends"].items():
            for key, setting in measured["settings"].items():
                first = setting["speedup_vs_first_model"]
                fp32 = setting["speedup_vs_torch_fp32"]
                lines.append(f"{entry['model'][-40:]:40s} {entry['parameters']:11,d} "
                             f"{entry['parameters_without_embeddings']:11,d} {backend:18s} {measured['size_mb']:7.1f} "
                             f"{key:>16s} {setting['p50_ms']:9.1f} {setting['p90_ms']:9.1f} "
                             f"{setting['throughput_per_s']:8.1f} {first if first else 0:6.2f}x "
                             f"{fp32 if fp32 else 0:7.2f}x")
    return "\n".join(lines)
