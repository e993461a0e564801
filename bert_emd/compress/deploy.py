"""Stage 5 of compress: the student in its deployment form, checked on the whole dev set against PyTorch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from bert_emd.data.loading import dev_data_options, load_split, tokenize
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

    if task.kind == "token":
        return deploy_tokens(config, task, student, backend, folder)
    if task.kind == "span":
        return deploy_spans(config, task, student, backend, folder)
    split = task.eval_splits[0]
    raw = load_split(task, config, split)
    tokenizer = load_tokenizer(str(student), config.max_length)
    dataset = tokenize(raw, tokenizer, config.max_length, f"Tokenising {split}")
    labels = np.asarray(list(raw["label"]))
    reference = predict_logits(load_trained_classifier(str(student), task), tokenizer, dataset, 64, "Student")
    if backend == "torch-fp32":
        from bert_emd.hybrid.storage import WEIGHTS, is_hybrid

        path, logits = student / (WEIGHTS if is_hybrid(student) else "model.safetensors"), reference
    else:
        path = _export_for(config, student, backend, folder, len(raw))
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


def onnx_padded_outputs(path: Path, tokenizer, dataset, width: int, batch_size: int = 64) -> list[np.ndarray]:
    """Every output of an ONNX graph over a tokenised dataset (batches padded to their longest example), each
    padded with zeros to ``width`` positions: per-token outputs of taggers and readers."""
    import onnxruntime
    from transformers import DataCollatorWithPadding

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    collator = DataCollatorWithPadding(tokenizer, return_tensors="np")
    features = dataset.remove_columns([c for c in dataset.column_names if c not in ("input_ids", "attention_mask",
                                                                                     "token_type_ids")])
    parts: list[list[np.ndarray]] = []
    for start in range(0, len(features), batch_size):
        batch = collator([features[i] for i in range(start, min(start + batch_size, len(features)))])
        outputs = session.run(None, {name: batch[name].astype(np.int64) for name in names})
        parts.append([np.pad(output, [(0, 0), (0, width - output.shape[1])] + [(0, 0)] * (output.ndim - 2))
                      for output in outputs])
    return [np.concatenate([part[index] for part in parts]) for index in range(len(parts[0]))]


def _export_for(config, student: Path, backend: str, folder: Path, examples: int) -> Path:
    from bert_emd.deploy.export import export

    shutil.rmtree(folder, ignore_errors=True)  # an export cut short is made again
    data = dev_data_options(config)
    export(model=str(student), output=str(folder), int8=backend == "onnx-int8", max_length=config.max_length,
           check_samples=min(examples, 10_000), **data)
    return folder / ONNX_FILE[backend]


def deploy_tokens(config, task, student: Path, backend: str, folder: Path) -> dict:
    """A tagger's deployed form on dev: entity scores, and the share of counted tokens tagged as the PyTorch
    student tags them."""
    from bert_emd.models import load_tokenizer
    from bert_emd.tokens.data import IGNORED
    from bert_emd.tokens.load import load_token_split, token_dataset
    from bert_emd.tokens.metrics import entity_metrics
    from bert_emd.tokens.run import load_token_classifier, padded_logits

    sentences = load_token_split(task, config, "dev")
    tokenizer = load_tokenizer(str(student), config.max_length)
    dataset = token_dataset(sentences, tokenizer, task, config.max_length)
    reference, labels = padded_logits(load_token_classifier(str(student), task), tokenizer, dataset, 64)
    if backend == "torch-fp32":
        path, logits = student / "model.safetensors", reference
    else:
        path = _export_for(config, student, backend, folder, len(sentences))
        logits = onnx_padded_outputs(path, tokenizer, dataset, reference.shape[1])[0]
    counted = labels != IGNORED
    return {"backend": backend, "path": str(path), "size_mb": path.stat().st_size / 2**20, "split": "dev",
            "examples": len(sentences), "metrics": entity_metrics(logits, labels, task.labels),
            "student_metrics": entity_metrics(reference, labels, task.labels),
            "max_abs_output_difference": float(np.abs(logits - reference)[counted].max()),
            "prediction_agreement": float(np.mean((logits.argmax(-1) == reference.argmax(-1))[counted])),
            **_export_report(folder, backend)}


def deploy_spans(config, task, student: Path, backend: str, folder: Path) -> dict:
    """A reader's deployed form on dev: SQuAD scores, and the share of questions answered as the PyTorch student
    answers them."""
    from bert_emd.models import load_tokenizer
    from bert_emd.spans.answers import gold_answers, squad_scores
    from bert_emd.spans.run import answers_of, load_span_reader, span_windows, window_logits

    tokenizer = load_tokenizer(str(student), config.max_length)
    questions, windows = span_windows(task, config, "dev", tokenizer, training=False)
    start, end = window_logits(load_span_reader(str(student), task), tokenizer, windows, 64)
    if backend == "torch-fp32":
        path, deployed_start, deployed_end = student / "model.safetensors", start, end
    else:
        path = _export_for(config, student, backend, folder, len(questions))
        deployed_start, deployed_end = onnx_padded_outputs(path, tokenizer, windows, start.shape[1])
    mask = np.zeros(start.shape, dtype=bool)
    for row, ids in enumerate(windows["input_ids"]):
        mask[row, :len(ids)] = True
    theirs = answers_of(task, questions, windows, start, end)
    ours = answers_of(task, questions, windows, deployed_start, deployed_end)
    golds = gold_answers(questions)
    difference = max(float(np.abs(deployed_start - start)[mask].max()), float(np.abs(deployed_end - end)[mask].max()))
    return {"backend": backend, "path": str(path), "size_mb": path.stat().st_size / 2**20, "split": "dev",
            "examples": len(questions), "metrics": squad_scores(ours, golds),
            "student_metrics": squad_scores(theirs, golds), "max_abs_output_difference": difference,
            "prediction_agreement": float(np.mean([ours[key] == theirs[key] for key in theirs])),
            **_export_report(folder, backend)}


def _export_report(folder: Path, backend: str) -> dict:
    report = read_json(folder / "export_report.json") if backend != "torch-fp32" else None
    return {"export_report": report} if report else {}
