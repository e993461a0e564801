"""`bert-emd export`: ONNX (dynamic batch and sequence axes) with the tokenizer, checked against PyTorch.

The fp32 graph comes from ``torch.onnx.export`` (the dynamo exporter); ``--int8`` adds ONNX Runtime's
dynamic int8 quantisation of it, with one scale per output channel of each weight by default (per tensor, ORT's
default, changes more predictions of small students: ``benchmarks/onnx_int8_schemes.py``). Both are run by ONNX
Runtime on real inputs (the task's dev examples when ``--task`` is given, else a fixed set of sentences) and
compared with the PyTorch logits. The graph's
outputs are named as the model's: ``logits`` for sequence and token classifiers, ``start_logits`` and
``end_logits`` for question answering; the prediction agreement counts each example's label (sequence), each
unpadded token's tag (token), or each example's start and end token together (span).
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
    int8_per_channel: bool = option(True, "int8 weights with one scale per output channel (--no-int8-per-channel: "
                                          "one scale per weight tensor, ONNX Runtime's default)")
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


OUTPUT_NAMES = {"sequence": ("logits",), "token": ("logits",), "span": ("start_logits", "end_logits")}


class NamedOutputs(torch.nn.Module):
    """The model with named tensor inputs and its head's outputs as a tuple, as an ONNX graph wants it."""

    def __init__(self, model, names: tuple[str, ...]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        output = self.model(**inputs)
        return tuple(getattr(output, name) for name in self.names)


def load_exportable(name: str):
    """(model, head kind): a sequence classifier, a tagger or a question-answering model as saved."""
    from bert_emd.distill.student import head_class_of_config
    from bert_emd.models import check_finite_weights, head_kind, load_pretrained

    config = load_config(name)
    kind = head_kind(config)
    if kind == "sequence":
        return load_trained_classifier(name), kind
    model = load_pretrained(head_class_of_config(config), name, "a model")
    check_finite_weights(model, name)
    return model, kind


def check_texts(config: ExportConfig, kind: str) -> tuple[list[str], list[str] | None]:
    """The texts ONNX Runtime and PyTorch are compared on: the task's dev examples, else fixed sentences."""
    if not (config.task or config.uses_own_files):
        return [a for a, _ in FALLBACK_TEXTS], [b for _, b in FALLBACK_TEXTS]
    task = resolve_task(config, model_labels=label_names_of(load_config(config.model)))
    if task.kind != kind:
        raise BertEmdError(f"--task {config.task}: a {task.kind} task, but '{config.model}' is a {kind} model")
    few = dataclasses.replace(config, max_eval_samples=config.check_samples)
    if kind == "token":
        from bert_emd.tokens.load import load_token_split

        return [" ".join(sentence.tokens) for sentence in load_token_split(task, few, "dev")], None
    if kind == "span":
        from bert_emd.spans.load import load_questions

        questions = load_questions(task, few, "dev")
        return [question.question for question in questions], [question.context for question in questions]
    rows = load_split(task, few, task.eval_splits[0])
    return list(rows["text_a"]), list(rows["text_b"]) if "text_b" in rows.column_names else None


def onnx_outputs(path: Path, encoded: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    return session.run(None, {name: encoded[name].astype(np.int64) for name in names})


@writes_output("export", ExportConfig)
def export(config: ExportConfig | str | dict | None = None, **overrides) -> dict:
    """Write ``model.onnx`` (and ``model_int8.onnx``) with the tokenizer; return the check report."""
    config = resolve_config(ExportConfig, config, overrides)
    if not config.model or not config.output:
        raise BertEmdError("--model and --output are required")
    onnx, _, _ = require_onnx()
    model, kind = load_exportable(config.model)
    model.eval()
    names = OUTPUT_NAMES[kind]
    tokenizer = load_tokenizer(config.model, config.max_length)
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    input_names = [name for name in tokenizer.model_input_names if name in ("input_ids", "attention_mask",
                                                                               "token_type_ids")]
    example = tokenizer(["an example sentence to trace", "another"], padding=True, return_tensors="pt")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path = output / "model.onnx"
    try:
        torch.onnx.export(NamedOutputs(model, names).eval(), (), str(path),
                          kwargs={name: example[name] for name in input_names}, input_names=input_names,
                          verbose=False, output_names=list(names), opset_version=config.opset,
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

    texts_a, texts_b = check_texts(config, kind)
    encoded = tokenizer(texts_a, texts_b, padding=True, truncation="only_second" if kind == "span" else True,
                        max_length=config.max_length, return_tensors="np")
    with torch.inference_mode():
        outputs = model(**{name: torch.from_numpy(encoded[name]) for name in input_names})
        reference = [getattr(outputs, name).numpy() for name in names]
    report = {"model": config.model, "kind": kind, "examples": len(texts_a), "input_names": input_names,
              "output_names": list(names), "opset": config.opset, "tolerance": config.tolerance, "files": {}}
    report["files"]["model.onnx"] = _compare(path, encoded, reference, kind)
    if not report["files"]["model.onnx"]["max_abs_diff"] <= config.tolerance:  # NaN fails too
        write_json(output / "export_report.json", report)
        difference = report["files"]["model.onnx"]["max_abs_diff"]
        raise BertEmdError(f"ONNX Runtime logits differ from PyTorch by {difference:.2e} > tolerance "
                           f"{config.tolerance:g} (report in {output / 'export_report.json'})", keep_output=True)
    if config.int8:
        int8_path = output / "model_int8.onnx"
        quantize_onnx_int8(onnx, path, int8_path, per_channel=config.int8_per_channel)
        refuse_non_finite_onnx(onnx, int8_path)
        report["files"]["model_int8.onnx"] = {**_compare(int8_path, encoded, reference, kind),
                                              "weight_scales": "per channel" if config.int8_per_channel
                                              else "per tensor"}
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


def quantize_onnx_int8(onnx, source: Path, target: Path, per_channel: bool = True) -> None:
    """ONNX Runtime dynamic int8: weights int8 (one scale per output channel, or per tensor), activations
    quantised per batch."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source))
    del graph.graph.value_info[:]  # the exporter's intermediate shapes are traced ones; let ORT infer them anew
    with tempfile.TemporaryDirectory() as folder:
        clean = Path(folder) / "model.onnx"
        onnx.save(graph, str(clean))
        quantize_dynamic(str(clean), str(target), weight_type=QuantType.QInt8, per_channel=per_channel)


def _compare(path: Path, encoded: dict[str, np.ndarray], reference: list[np.ndarray], kind: str) -> dict:
    """Largest output difference over the unpadded positions, and the share of predictions both agree on."""
    outputs = onnx_outputs(path, encoded)
    mask = encoded["attention_mask"].astype(bool)
    if kind == "sequence":
        difference = max(float(np.abs(ours - theirs).max()) for ours, theirs in zip(outputs, reference))
        logits, wanted = outputs[0], reference[0]
        same = float(np.mean(logits.argmax(-1) == wanted.argmax(-1))) if wanted.shape[-1] > 1 else None
    elif kind == "token":
        difference = float(np.abs(outputs[0] - reference[0])[mask].max())
        same = float(np.mean((outputs[0].argmax(-1) == reference[0].argmax(-1))[mask]))
    else:  # span: the start and the end token of each example, over its unpadded tokens
        difference = max(float(np.abs(ours - theirs)[mask].max()) for ours, theirs in zip(outputs, reference))
        agree = [np.where(mask, ours, -np.inf).argmax(-1) == np.where(mask, theirs, -np.inf).argmax(-1)
                 for ours, theirs in zip(outputs, reference)]
        same = float(np.mean(agree[0] & agree[1]))
    size = sum(file.stat().st_size for file in (path, path.with_name(path.name + ".data")) if file.is_file())
    return {"max_abs_diff": difference, "prediction_agreement": same, "size_mb": size / 2**20}
