"""Stage 5 of compress: the student in its deployment form, checked on the whole dev set against PyTorch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from bert_emd.data.loading import load_split, tokenize
from bert_emd.evaluation.metrics import compute_metrics, predictions_from_logits
from bert_emd.runinfo import read_json

ONNX_FILE = {"onnx-fp32": "model.onnx", "onnx-int8": "model_int8.onnx"}


def onnx_dev_logits(path: Path, tokenizer, dataset, batch_size: int = 64) -> np.ndarray:
    """ONNX Runtime logits of a tokenised dataset, in batches padded to their longest example."""
    import onnxruntime
    from transformers import DataCollatorWithPadding

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    collator = DataCollatorWithPadding(tokenizer, return_tensors="np")
    features = dataset.remove_columns([c for c in dataset.column_names if c in ("labels", "idx")])
    outputs = []
    for start in range(0, len(features), batch_size):
        batch = collator([features[i] for i in range(start, min(start + batch_size, len(features)))])
        outputs.append(session.run(None, {name: batch[name].astype(np.int64) for name in names})[0])
    return np.concatenate(outputs)


def deploy(config, task, student: Path, backend: str, folder: Path) -> dict:
    """Export (ONNX backends) and score the deployed form on dev beside the PyTorch student: its metrics and the
    share of dev examples on which both predict the same label (regression: the largest output difference)."""
    from bert_emd.evaluation.evaluate import predict_logits
    from bert_emd.models import load_tokenizer, load_trained_classifier

    split = task.eval_splits[0]
    raw = load_split(task, config, split)
    tokenizer = load_tokenizer(str(student), config.max_length)
    dataset = tokenize(raw, tokenizer, config.max_length, f"Tokenising {split}")
    labels = np.asarray(list(raw["label"]))
    reference = predict_logits(load_trained_classifier(str(student), task), tokenizer, dataset, 64, "Student")
    if backend == "torch-fp32":
        path, logits = student / "model.safetensors", reference
    else:
        from bert_emd.deploy.export import export

        shutil.rmtree(folder, ignore_errors=True)  # an export cut short is made again
        data = {name: getattr(config, name) for name in ("task", "data_dir", "validation_file", "text_columns",
                                                          "label_column", "labels", "regression")}
        export(model=str(student), output=str(folder), int8=backend == "onnx-int8", max_length=config.max_length,
               check_samples=min(len(raw), 10_000), **data)
        path = folder / ONNX_FILE[backend]
        logits = onnx_dev_logits(path, tokenizer, dataset)
    deployed = {"backend": backend, "path": str(path), "size_mb": path.stat().st_size / 2**20, "split": split,
                "examples": len(raw), "metrics": compute_metrics(task, logits, labels),
                "student_metrics": compute_metrics(task, reference, labels),
                "max_abs_output_difference": float(np.abs(logits - reference).max())}
    if not task.is_regression:
        deployed["prediction_agreement"] = float(np.mean(predictions_from_logits(task, logits) ==
                                                         predictions_from_logits(task, reference)))
    export_report = read_json(folder / "export_report.json") if backend != "torch-fp32" else None
    if export_report:
        deployed["export_report"] = export_report
    return deployed
