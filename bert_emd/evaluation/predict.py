"""`bert-emd predict`: GLUE submission files (``index`` and prediction) for a test split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bert_emd.data.loading import DataOptions, expand_split, load_split, resolve_task, tokenize
from bert_emd.errors import BertEmdError
from bert_emd.evaluation.evaluate import predict_logits
from bert_emd.evaluation.metrics import predictions_from_logits
from bert_emd.models import label_names_of, load_config, load_tokenizer, load_trained_classifier
from bert_emd.options import option, resolve_config
from bert_emd.outputs import check_not_under_file, make_directory


@dataclass
class PredictConfig(DataOptions):
    model: str | None = option(None, "model directory (or hub id) that predicts (required)")
    output: str | None = option(None, "directory for the submission TSV file(s) (required)")
    split: str = option("test", "split to predict: test (MNLI: both test sets), dev, ...")
    batch_size: int = option(64, "prediction batch size", at_least=1)


def predict(config: PredictConfig | str | dict | None = None, **overrides) -> list[Path]:
    """Write ``<OUTPUT>/<Task>.tsv`` (MNLI: ``MNLI-m.tsv``, ``MNLI-mm.tsv``) and return the paths."""
    config = resolve_config(PredictConfig, config, overrides)
    if not config.model or not config.output:
        raise BertEmdError("--model and --output are required")
    task = resolve_task(config, model_labels=label_names_of(load_config(config.model)))
    if task.kind != "sequence":
        return _predict_other_kind(config, task)
    model = load_trained_classifier(config.model, task)
    tokenizer = load_tokenizer(config.model, config.max_length)
    splits = {split: load_split(task, config, split) for split in expand_split(task, config.split)}
    output = Path(config.output)  # made once every split has read: a bad split or file leaves nothing behind
    check_not_under_file(output)
    make_directory(output)
    written = []
    for split, raw in splits.items():
        logits = predict_logits(model, tokenizer, tokenize(raw, tokenizer, config.max_length), config.batch_size)
        predictions = predictions_from_logits(task, logits)
        path = output / f"{task.submission_name(split)}.tsv"
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("index\tprediction\n")
            for index, prediction in zip(raw["idx"], predictions):
                value = f"{prediction:.3f}" if task.is_regression else task.labels[int(prediction)]
                handle.write(f"{index}\t{value}\n")
        print(f"{task.display_name} {split}: {len(raw)} predictions written to {path}")
        written.append(path)
    return written


def _predict_other_kind(config: PredictConfig, task) -> list[Path]:
    """Token tasks: a CoNLL file of predicted tags; span tasks: SQuAD's {id: answer} JSON."""
    tokenizer = load_tokenizer(config.model, config.max_length)
    from bert_emd.models import load_task_model

    if task.kind == "token":
        from bert_emd.tokens.predict import predict_tokens as run
    else:
        from bert_emd.spans.run import predict_spans as run
    model = load_task_model(config.model, task)
    output = Path(config.output)
    check_not_under_file(output)
    return run(config, task, model, tokenizer, output)
