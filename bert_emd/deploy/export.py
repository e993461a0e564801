"""`bert-emd export`: ONNX (dynamic batch and sequence axes) with the tokenizer, checked against PyTorch.

The fp32 graph comes from ``torch.onnx.export`` (the dynamo exporter); ``--int8`` adds ONNX Runtime's
dynamic int8 quantisation of it. Both are run by ONNX Runtime on real inputs (the task's dev examples
when ``--task`` is given, else a fixed set of sentences) and compared with the PyTorch logits.
"""

from __future__ import annotations

import dataclasses
import importlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bert_emd.data.loading import DataOptions, load_split, resolve_task
from bert_emd.errors import BertEmdError
from bert_emd.finite import NonFiniteError
from bert_emd.models import label_names_of, load_config, load_tokenizer, load_trained_classifier
from bert_emd.options import option, resolve_config
from bert_emd.outputs import writes_output
from bert_emd.runinfo import write_json

ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")
FALLBACK_TEXTS = [
    ("the film is a charming and often affecting journey", "it moved me"),
    ("a dull, plodding picture that never finds its footing", "I was bored"),
    ("The company said profits rose 12 percent in the third quarter.", "Profits went up."),
    ("He did not go to the meeting on Tuesday because he was ill.", "He attended the meeting."),
    ("Is this the way to the station?", "How do I get to the train station?"),
    ("ok", "fine"),
]


@dataclass
class ExportConfig(DataOptions):
    model: str | None = option(None, "model directory to export (required)")
    output: str | None = option(None, "directory for model.onnx, the tokenizer and export_report.json (required)")
    overwrite: bool = option(False, "replace a finished output of another command or task in --output (default: "
                                    "refused; the same command and task resumes there)")
    int8: bool = option(False, "also write model_int8.onnx (ONNX Runtime dynamic int8 quantisation)")
    opset: int = option(18, "ONNX opset version (the PyTorch exporter writes 18 or later)", at_least=18)
    check_samples: int = option(64, "real examples on which ONNX Runtime is compared with PyTorch", at_least=1)
    tolerance: float = option(1e-4, "largest accepted absolute logit difference of the fp32 export", above=0)


def require_onnx():
    """Import the optional ONNX packages, or say in one line how to install them."""
    try:
        return [importlib.import_module(name) for name in ONNX_PACKAGES]
    except ImportError as error:
        raise BertEmdError(f"this command needs the optional packages {', '.join(ONNX_PACKAGES)} "
                           f"({error.name} is missing): pip install 'bert-emd[deploy]'") from None


def written_opset(path: Path) -> int:
    """The default-domain opset version recorded in an ONNX file."""
    import onnx

    imports = onnx.load(str(path), load_external_data=False).opset_import
    return next(entry.version for entry in imports if entry.domain in ("", "ai.onnx"))


class LogitsOnly(torch.nn.Module):
    """The classifier with named tensor inputs and one output, as an ONNX graph wants it."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        return self.model(**inputs).logits


def check_texts(config: ExportConfig) -> tuple[list[str], list[str] | None]:
    if config.task or config.uses_own_files:
        task = resolve_task(config, model_labels=label_names_of(load_config(config.model)))
        rows = load_split(task, dataclasses.replace(config, max_eval_samples=config.check_samples),
                          task.eval_splits[0])
        return list(rows["text_a"]), list(rows["text_b"]) if "text_b" in rows.column_names else None
    return [a for a, _ in FALLBACK_TEXTS], [b for _, b in FALLBACK_TEXTS]


def onnx_logits(path: Path, encoded: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    return session.run(None, {name: encoded[name].astype(np.int64) for name in names})[0]


@writes_output("export", ExportConfig)
def export(config: ExportConfig | str | dict | None = None, **overrides) -> dict:
    """Write ``model.onnx`` (and ``model_int8.onnx``) with the tokenizer; return the check report."""
    config = resolve_config(ExportConfig, config, overrides)
    if not config.model or not config.output:
        raise BertEmdError("--model and --output are required")
    onnx, _, _ = require_onnx()
    model = load_trained_classifier(config.model).eval()
    tokenizer = load_tokenizer(config.model, config.max_length)
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    input_names = [name for name in tokenizer.model_input_names if name in ("input_ids", "attention_mask",
                                                                               "token_type_ids")]
    example = tokenizer(["an example sentence to trace", "another"], padding=True, return_tensors="pt")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path = output / "model.onnx"
    try:
        torch.onnx.export(LogitsOnly(model).eval(), (), str(path),
                          kwargs={name: example[name] for name in input_names}, input_names=input_names,
                          verbose=False, output_names=["logits"], opset_version=config.opset,
                          dynamo=True, dynamic_shapes={name: {0: batch, 1: sequence} for name in input_names},
                          external_data=False)  # one self-contained file (ONNX allows that up to 2 GB)
    except Exception as error:  # the exporter's own error, shortened to its first line
        raise BertEmdError(f"ONNX export of '{config.model}' failed: {str(error).splitlines()[0]}") from None
    refuse_non_finite_onnx(onnx, path)
    written = written_opset(path)
    if written != config.opset:  # never record an opset the file does not have
        raise BertEmdError(f"the exporter wrote opset {written}, not the --opset {config.opset} asked for; "
                           f"use --opset {written}")
    tokenizer.save_pretrained(output)
    model.config.save_pretrained(output)

    texts_a, texts_b = check_texts(config)
    encoded = tokenizer(texts_a, texts_b, padding=True, truncation=True, max_length=config.max_length,
                        return_tensors="np")
    with torch.inference_mode():
        reference = model(**{name: torch.from_numpy(encoded[name]) for name in input_names}).logits.numpy()
    report = {"model": config.model, "examples": len(texts_a), "input_names": input_names, "opset": config.opset,
              "tolerance": config.tolerance, "files": {}}
    report["files"]["model.onnx"] = _compare(path, encoded, reference)
    if not report["files"]["model.onnx"]["max_abs_diff"] <= config.tolerance:  # NaN fails too
        write_json(output / "export_report.json", report)
        difference = report["files"]["model.onnx"]["max_abs_diff"]
        raise BertEmdError(f"ONNX Runtime logits differ from PyTorch by {difference:.2e} > tolerance "
                           f"{config.tolerance:g} (report in {output / 'export_report.json'})", keep_output=True)
    if config.int8:
        int8_path = output / "model_int8.onnx"
        quantize_onnx_int8(onnx, path, int8_path)
        refuse_non_finite_onnx(onnx, int8_path)
        report["files"]["model_int8.onnx"] = _compare(int8_path, encoded, reference)
    write_json(output / "export_report.json", report)
    for name, entry in report["files"].items():
        agreement = entry["prediction_agreement"]
        same = f", same prediction on {agreement:.1%}" if agreement is not None else ""
        print(f"{output / name}: {entry['size_mb']:.1f} MB, max |logit difference| to PyTorch "
              f"{entry['max_abs_diff']:.2e}{same} of {len(texts_a)} examples")
    return report


def refuse_non_finite_onnx(onnx, path: Path) -> None:
    """The save guard for ONNX files: every floating-point initialiser finite, else the file is removed."""
    from onnx import numpy_helper

    graph = onnx.load(str(path))
    tensors = {item.name: numpy_helper.to_array(item) for item in graph.graph.initializer}
    bad = [name for name, array in tensors.items() if array.dtype.kind == "f" and not np.isfinite(array).all()]
    if bad:
        path.unlink()
        raise NonFiniteError(f"refusing to save {path}: NaN or inf in {len(bad)} of {len(tensors)} initialisers, "
                             f"e.g. {bad[0]}; nothing was saved")


def quantize_onnx_int8(onnx, source: Path, target: Path) -> None:
    """ONNX Runtime dynamic int8 (weights int8, activations quantised per batch)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source))
    del graph.graph.value_info[:]  # the exporter's intermediate shapes are traced ones; let ORT infer them anew
    with tempfile.TemporaryDirectory() as folder:
        clean = Path(folder) / "model.onnx"
        onnx.save(graph, str(clean))
        quantize_dynamic(str(clean), str(target), weight_type=QuantType.QInt8)


def _compare(path: Path, encoded: dict[str, np.ndarray], reference: np.ndarray) -> dict:
    logits = onnx_logits(path, encoded)
    same = float(np.mean(logits.argmax(-1) == reference.argmax(-1))) if reference.shape[-1] > 1 else None
    size = sum(file.stat().st_size for file in (path, path.with_name(path.name + ".data")) if file.is_file())
    return {"max_abs_diff": float(np.abs(logits - reference).max()), "prediction_agreement": same,
            "size_mb": size / 2**20}
