"""The GLUE task registry: where each task's text and labels are, and how it is scored.

Label names are the values written in the original GLUE TSV files and expected in a GLUE
submission; their order matches the ``ClassLabel`` order of the hub's ``nyu-mll/glue`` dataset, so
an integer label from the hub and an index into ``labels`` mean the same class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bert_emd.errors import BertEmdError


@dataclass(frozen=True)
class TaskSpec:
    name: str  # canonical name, e.g. "sst2"
    display_name: str  # folder name in the GLUE download and submission file stem, e.g. "SST-2"
    text_columns: tuple[str, ...]  # TSV header names of the one or two text fields
    label_column: str | None  # TSV header name of the label (None: regression column given below)
    labels: tuple[str, ...]  # label names as written in the files; () for regression
    metrics: tuple[str, ...]
    main_metric: str
    hub_text_columns: tuple[str, ...] = ()
    eval_splits: tuple[str, ...] = ("dev",)
    test_splits: tuple[str, ...] = ("test",)
    # Splits whose file has no header row, and the column names to use for them.
    headerless_splits: tuple[str, ...] = ()
    headerless_columns: tuple[str, ...] = ()
    index_column: str = "index"  # test-file column holding the example id
    submission_names: dict[str, str] = field(default_factory=dict)  # split -> submission file stem
    kind: str = "sequence"  # sequence: one label per example; token: one tag per word (bert_emd.tokens); span: an
    # answer span in a context (bert_emd.spans)
    unanswerable: bool = False  # span tasks: questions may have no answer (SQuAD v2.0)

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)

    def submission_name(self, split: str) -> str:
        return self.submission_names.get(split, self.display_name)


GLUE_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            "cola", "CoLA", ("sentence",), "label", ("0", "1"), ("matthews_correlation", "accuracy"),
            "matthews_correlation", hub_text_columns=("sentence",),
            headerless_splits=("train", "dev"),
            headerless_columns=("source", "label", "original_label", "sentence"),
        ),
        TaskSpec(
            "sst2", "SST-2", ("sentence",), "label", ("0", "1"), ("accuracy",), "accuracy",
            hub_text_columns=("sentence",),
        ),
        TaskSpec(
            "mrpc", "MRPC", ("#1 String", "#2 String"), "Quality", ("0", "1"), ("f1", "accuracy"), "f1",
            hub_text_columns=("sentence1", "sentence2"),
        ),
        TaskSpec(
            "stsb", "STS-B", ("sentence1", "sentence2"), "score", (), ("pearson", "spearman"), "pearson",
            hub_text_columns=("sentence1", "sentence2"),
        ),
        TaskSpec(
            "qqp", "QQP", ("question1", "question2"), "is_duplicate", ("0", "1"), ("f1", "accuracy"), "f1",
            hub_text_columns=("question1", "question2"), index_column="id",
        ),
        TaskSpec(
            "mnli", "MNLI", ("sentence1", "sentence2"), "gold_label", ("entailment", "neutral", "contradiction"),
            ("accuracy",), "accuracy", hub_text_columns=("premise", "hypothesis"),
            eval_splits=("dev_matched", "dev_mismatched"), test_splits=("test_matched", "test_mismatched"),
            submission_names={"test_matched": "MNLI-m", "test_mismatched": "MNLI-mm"},
        ),
        TaskSpec(
            "qnli", "QNLI", ("question", "sentence"), "label", ("entailment", "not_entailment"), ("accuracy",),
            "accuracy", hub_text_columns=("question", "sentence"),
        ),
        TaskSpec(
            "rte", "RTE", ("sentence1", "sentence2"), "label", ("entailment", "not_entailment"), ("accuracy",),
            "accuracy", hub_text_columns=("sentence1", "sentence2"),
        ),
        TaskSpec(
            "wnli", "WNLI", ("sentence1", "sentence2"), "label", ("0", "1"), ("accuracy",), "accuracy",
            hub_text_columns=("sentence1", "sentence2"),
        ),
    ]
}

CONLL2003_TAGS = ("O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER")
TOKEN_METRICS = ("f1", "precision", "recall", "token_accuracy")
# Token-classification tasks: their files in CoNLL column layout (train.txt, dev.txt, test.txt) under --data-dir.
TOKEN_TASKS: dict[str, TaskSpec] = {
    "conll2003": TaskSpec("conll2003", "CoNLL-2003", ("tokens",), "tags", CONLL2003_TAGS, TOKEN_METRICS, "f1",
                          kind="token"),
}


def token_task(labels: tuple[str, ...]) -> TaskSpec:
    """A tagging task of one's own files, over ``labels`` (tags)."""
    return TaskSpec("custom-token", "custom", ("tokens",), "tags", labels, TOKEN_METRICS, "f1", kind="token")


SPAN_LABELS = ("start", "end")  # the two outputs of a question-answering head
SPAN_METRICS = ("f1", "exact_match")
# Extractive question answering: SQuAD files under --data-dir (train-v1.1.json, dev-v1.1.json; -v2.0 for v2).
SPAN_TASKS: dict[str, TaskSpec] = {
    "squad": TaskSpec("squad", "SQuAD v1.1", ("question", "context"), "answers", SPAN_LABELS, SPAN_METRICS, "f1",
                      kind="span"),
    "squadv2": TaskSpec("squad_v2", "SQuAD v2.0", ("question", "context"), "answers", SPAN_LABELS, SPAN_METRICS, "f1",
                        kind="span", unanswerable=True),
}


def span_task(unanswerable: bool) -> TaskSpec:
    """A question-answering task of one's own files."""
    return TaskSpec("custom-span", "custom", ("question", "context"), "answers", SPAN_LABELS, SPAN_METRICS, "f1",
                    kind="span", unanswerable=unanswerable)


# The hub names validation splits "validation[_matched]"; the GLUE files "dev[_matched]".
HUB_SPLIT_NAMES = {
    "train": "train", "dev": "validation", "test": "test",
    "dev_matched": "validation_matched", "dev_mismatched": "validation_mismatched",
    "test_matched": "test_matched", "test_mismatched": "test_mismatched",
}


def normalise_task_name(name: str) -> str:
    return re.sub(r"[-_\s]", "", name).lower()


def get_task(name: str) -> TaskSpec:
    """Look a GLUE task up by name, ignoring case, dashes and underscores (``SST-2`` = ``sst2``)."""
    key = normalise_task_name(name)
    if key == "stsb" or key in GLUE_TASKS:
        return GLUE_TASKS[key]
    if key in TOKEN_TASKS:
        return TOKEN_TASKS[key]
    if key in SPAN_TASKS:
        return SPAN_TASKS[key]
    known = ", ".join(spec.display_name for spec in GLUE_TASKS.values())
    raise BertEmdError(f"unknown task '{name}'; known GLUE tasks: {known} (or give your own files with --train-file)")


def custom_task(labels: tuple[str, ...], text_columns: tuple[str, ...], label_column: str) -> TaskSpec:
    """A task for a user's own files: classification over ``labels``, or regression if empty."""
    if labels:
        metrics = ("accuracy", "f1") if len(labels) == 2 else ("accuracy", "macro_f1")
        main = "accuracy"
    else:
        metrics, main = ("pearson", "spearman", "mse"), "pearson"
    return TaskSpec("custom", "custom", text_columns, label_column, labels, metrics, main)
