"""Task data from three sources, as ``datasets.Dataset`` rows ``text_a[, text_b], label, idx``.

Sources, in order of precedence: the user's own files (``--train-file`` ...), a local directory in
the original GLUE TSV layout (``--data-dir``), and the hub's ``nyu-mll/glue`` dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import datasets

from bert_emd.data.readers import Table, check_present, read_table
from bert_emd.data.tasks import HUB_SPLIT_NAMES, TaskSpec, custom_task, get_task
from bert_emd.errors import BertEmdError
from bert_emd.options import option

UNLABELLED = -1


@dataclass
class DataOptions:
    """Where a task's examples come from and how they are cut to size."""

    task: str | None = option(None, "GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli); "
                              "leave out for your own files")
    data_dir: str | None = option(None, "directory in the original GLUE TSV layout, e.g. ../shared/glue")
    train_file: str | None = option(None, "your own training file (.csv, .tsv or .jsonl)")
    validation_file: str | None = option(None, "your own validation file (.csv, .tsv or .jsonl)")
    test_file: str | None = option(None, "your own unlabelled test file (.csv, .tsv or .jsonl)")
    augmented_train: str | None = option(None, "training examples written by `bert-emd augment` (.jsonl): they "
                                         "replace the training split; dev and test still come from --data-dir "
                                         "or your files")
    text_columns: str | None = option(None, "text column(s) of your own files, 'a' or 'a,b' (default: text)")
    label_column: str | None = option(None, "label column of your own files (default: label)")
    labels: str | None = option(None, "label names of your own classification task, comma-separated "
                                "(default: the sorted values found in the training file)")
    regression: bool = option(False, "your own files hold a regression target (a number per example)")
    max_length: int = option(128, "maximum tokens per example; longer inputs are truncated", at_least=1)
    label_all_tokens: bool = option(False, "token tasks: train on every sub-word piece of a word with its tag "
                                    "(default: its first piece only; scores always count words)")
    doc_stride: int | None = option(None, "question answering: tokens of overlap between the windows of a long "
                                    "context (default: a quarter of --max-length)", at_least=0)
    max_train_samples: int | None = option(None, "use only the first N training examples", at_least=1)
    max_eval_samples: int | None = option(None, "use only the first N examples of each evaluation split", at_least=1)

    @property
    def uses_own_files(self) -> bool:
        return bool(self.train_file or self.validation_file or self.test_file)

    def own_file(self, split: str) -> Path:
        """The user's file for a split (any split but train and test is the validation file), or an error naming
        the flag that gives it."""
        path = {"train": self.train_file, "test": self.test_file}.get(split, self.validation_file)
        if path is None:
            flag = {"train": "--train-file", "test": "--test-file"}.get(split, "--validation-file")
            raise BertEmdError(f"the {split} split needs {flag}")
        return Path(path)

    @property
    def has_dev_set(self) -> bool:
        """A GLUE task's dev split, or the user's --validation-file."""
        return bool(self.validation_file) or not self.uses_own_files


TOKEN_TASK_NAMES = ("token", "custom-token")  # --task for one's own tagging files
SPAN_TASK_NAMES = ("span", "qa", "custom-span")  # --task for one's own question-answering files


DEV_DATA_OPTIONS = ("task", "data_dir", "validation_file", "text_columns", "label_column", "labels", "regression")


def dev_data_options(options: DataOptions, *more: str) -> dict:
    """The options that name a task's dev data (and ``more`` of them), to hand on to a command run for the user."""
    return {name: getattr(options, name) for name in (*DEV_DATA_OPTIONS, *more)}


def resolve_task(options: DataOptions, model_labels: tuple[str, ...] | None = None) -> TaskSpec:
    """The task of a run: a GLUE or token task by name, or a custom task for the user's own files (``--task token``
    for tagging files)."""
    if options.task and options.task.lower() in TOKEN_TASK_NAMES:
        from bert_emd.tokens.load import own_token_task

        return own_token_task(options, model_labels)
    if options.task and options.task.lower() in SPAN_TASK_NAMES:
        from bert_emd.spans.load import own_span_task

        return own_span_task(options)
    if options.task and options.task.lower() != "custom":
        spec = get_task(options.task)
        if options.regression or options.labels:  # they describe one's own files; a GLUE task fixes both
            flag = "--regression" if options.regression else "--labels"
            kind = "regression" if spec.is_regression else f"classification over ({', '.join(spec.labels)})"
            raise BertEmdError(f"{flag} conflicts with --task {spec.name}: the task is {kind}; leave out {flag} "
                               "(or use --task custom with your own files)")
        if options.uses_own_files and (options.text_columns or options.label_column):
            text_columns = _split_columns(options.text_columns) if options.text_columns else spec.text_columns
            return dataclasses.replace(spec, text_columns=text_columns,
                                       label_column=options.label_column or spec.label_column)
        return spec
    if not options.uses_own_files:
        raise BertEmdError("no task given: pass --task (a GLUE task) or your own files with --train-file")
    text_columns = _split_columns(options.text_columns or "text")
    label_column = options.label_column or "label"
    if options.regression:
        labels: tuple[str, ...] = ()
    elif options.labels:
        labels = tuple(label.strip() for label in options.labels.split(","))
    elif options.train_file:
        table = read_table(options.train_file)
        labels = tuple(sorted({_label_text(v) for v in check_present(table, label_column)}))
    elif model_labels:
        labels = model_labels
    else:
        raise BertEmdError("cannot tell the label set of your files: pass --labels a,b,... or --train-file")
    return custom_task(labels, text_columns, label_column)


def _split_columns(text: str) -> tuple[str, ...]:
    columns = tuple(name.strip() for name in text.split(",") if name.strip())
    if not 1 <= len(columns) <= 2:
        raise BertEmdError(f"--text-columns takes one or two column names, got '{text}'")
    return columns


def _label_text(value) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def expand_split(task: TaskSpec, split: str) -> tuple[str, ...]:
    """'dev' means every dev set of the task (MNLI: matched and mismatched); likewise 'test'."""
    if split == "dev":
        return task.eval_splits
    if split == "test":
        return task.test_splits
    if split == "train" or split in task.eval_splits or split in task.test_splits:
        return (split,)
    valid = ", ".join(dict.fromkeys(("train", "dev", "test") + task.eval_splits + task.test_splits))
    raise BertEmdError(f"unknown split '{split}' for {task.display_name}; use one of {valid}")


def load_split(task: TaskSpec, options: DataOptions, split: str) -> datasets.Dataset:
    """One split (``train``, ``dev``, ``dev_matched``, ``test`` ...) as a ``datasets.Dataset``."""
    if options.label_all_tokens:
        raise BertEmdError(f"--label-all-tokens applies to token tasks; {task.display_name} is not one")
    if task.kind != "sequence":
        kind = "a token-classification" if task.kind == "token" else "a question-answering"
        raise BertEmdError(f"{task.display_name} is {kind} task: this command takes tasks with one label per "
                           f"example; finetune, distill, evaluate, predict, export, quantize and benchmark take "
                           f"{task.kind} tasks")
    if split == "train" and options.augmented_train:
        dataset = _from_augmented_file(task, Path(options.augmented_train))
    elif options.uses_own_files:
        dataset = _from_own_file(task, options, split)
    elif options.data_dir:
        dataset = _from_glue_dir(task, Path(options.data_dir), split)
    else:
        dataset = _from_hub(task, split)
    limit = options.max_train_samples if split == "train" else options.max_eval_samples
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    if split == "train" and getattr(options, "trains_classifier", False) and not task.is_regression and len(dataset):
        check_two_classes(task, dataset, options)
    return dataset


def check_two_classes(task: TaskSpec, dataset: datasets.Dataset, options: DataOptions) -> None:
    """A classification training set needs examples of at least two labels (a label-sorted file cut by
    --max-train-samples has one: the model would learn a constant and score it as perfect)."""
    found = sorted({label for label in dataset["label"] if label != UNLABELLED})
    if len(found) == 1:
        names = [task.labels[label] if isinstance(label, int) and label < len(task.labels) else str(label)
                 for label in found]
        cut = f" (the first {options.max_train_samples} examples)" if options.max_train_samples else ""
        raise BertEmdError(f"the training set{cut} holds only label {', '.join(names)}: a classifier needs "
                           f"examples of at least two labels (task labels: {', '.join(task.labels)}); shuffle the "
                           "file or use more examples (a numeric target: --regression)")


def _rows_from_table(task: TaskSpec, table: Table, labelled: bool, index_column: str | None) -> datasets.Dataset:
    data: dict[str, list] = {}
    for name, text_column in zip(("text_a", "text_b"), task.text_columns):
        data[name] = [str(text) for text in check_present(table, text_column)]
    check_texts_present(table, task.text_columns, [data[name] for name in ("text_a", "text_b") if name in data])
    if labelled:
        data["label"] = _convert_labels(task, table)
    else:
        data["label"] = [UNLABELLED] * len(table)
    if index_column and index_column in table.columns:
        data["idx"] = [int(value) if str(value).strip().isdigit() else i
                       for i, value in enumerate(table.columns[index_column])]
    else:
        data["idx"] = list(range(len(table)))
    return datasets.Dataset.from_dict(data)


def check_texts_present(table: Table, columns: tuple[str, ...], texts: list[list[str]]) -> None:
    """A row with no text at all is refused (a model would be trained or scored on an empty input without a
    word); a pair with one empty side is kept and counted in one warning line."""
    empty = [[not text.strip() for text in column] for column in texts]
    for row, number in enumerate(table.line_numbers):
        if all(column[row] for column in empty):
            named = " and ".join(f"'{name}'" for name in columns)
            raise BertEmdError(f"{table.path}, line {number}: the text ({named}) is empty; remove the row or fill "
                               "it in")
    if len(empty) == 2:
        for column, name in zip(empty, columns):
            count = sum(column)
            if count:
                first = table.line_numbers[column.index(True)]
                print(f"warning: {table.path}: {count} of {len(table)} row(s) have an empty '{name}' (first at "
                      f"line {first}); they are kept with the other text alone", file=sys.stderr)


def _convert_labels(task: TaskSpec, table: Table) -> list:
    raw = table.column(task.label_column, purpose="label column")
    converted = []
    for value, number in zip(raw, table.line_numbers):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise BertEmdError(f"{table.path}, line {number}: label is missing")
        if task.is_regression:
            try:
                converted.append(float(value))
            except (TypeError, ValueError):
                raise BertEmdError(f"{table.path}, line {number}: target '{value}' is not a number") from None
        else:
            text = _label_text(value)
            if text not in task.labels:
                raise BertEmdError(
                    f"{table.path}, line {number}: label '{text}' is not one of the task's labels "
                    f"({', '.join(task.labels)})"
                )
            converted.append(task.labels.index(text))
    return converted


def _from_own_file(task: TaskSpec, options: DataOptions, split: str) -> datasets.Dataset:
    table = read_table(options.own_file(split))
    labelled = split != "test" or task.label_column in table.columns
    return _rows_from_table(task, table, labelled, index_column="index" if split == "test" else None)


def _from_augmented_file(task: TaskSpec, path: Path) -> datasets.Dataset:
    """A `bert-emd augment` output: columns text_a[, text_b] and label (names, or numbers for regression)."""
    if not path.is_file():
        raise BertEmdError(f"--augmented-train file not found: {path}")
    manifest = Path(str(path) + ".manifest.json")
    if manifest.is_file():
        import json

        made_for = json.loads(manifest.read_text(encoding="utf-8")).get("task")
        if made_for and made_for != task.name:
            raise BertEmdError(f"--augmented-train {path} was made for task {made_for}, not {task.name}")
    columns = ("text_a", "text_b")[:len(task.text_columns)]
    layout = dataclasses.replace(task, text_columns=columns, label_column="label")
    return _rows_from_table(layout, read_table(path), labelled=True, index_column=None)


def _task_folder(task: TaskSpec, data_dir: Path) -> Path:
    if not data_dir.is_dir():
        raise BertEmdError(f"data directory not found: {data_dir}")
    wanted = {task.display_name.lower(), task.display_name.lower().replace("-", ""), task.name}
    for child in sorted(data_dir.iterdir()):
        if child.is_dir() and child.name.lower() in wanted:
            return child
    if (data_dir / "train.tsv").is_file() or (data_dir / f"{task.eval_splits[0]}.tsv").is_file():
        return data_dir  # the task folder itself was given
    raise BertEmdError(f"{data_dir}: no {task.display_name} folder (expected {data_dir / task.display_name})")


def _from_glue_dir(task: TaskSpec, data_dir: Path, split: str) -> datasets.Dataset:
    path = _task_folder(task, data_dir) / f"{split}.tsv"
    if not path.is_file():
        raise BertEmdError(f"file not found: {path}")
    headerless = split in task.headerless_splits
    table = read_table(path, header_names=task.headerless_columns if headerless else None)
    labelled = split not in task.test_splits
    return _rows_from_table(task, table, labelled, index_column=task.index_column)


def _from_hub(task: TaskSpec, split: str) -> datasets.Dataset:
    if task.name == "custom":
        raise BertEmdError("own-file tasks need --train-file / --validation-file / --test-file")
    hub_split = HUB_SPLIT_NAMES[split]
    try:
        dataset = datasets.load_dataset("nyu-mll/glue", task.name, split=hub_split)
    except Exception as error:  # offline, unknown split, hub errors: one line for the user
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BertEmdError(
            f"could not load GLUE {task.display_name} ({hub_split}) from the Hugging Face hub: {message}; "
            "pass --data-dir with the GLUE TSV files or your own --train-file/--validation-file"
        ) from None
    renames = {hub: ours for hub, ours in zip(task.hub_text_columns, ("text_a", "text_b"))}
    dataset = dataset.rename_columns(renames)
    keep = list(renames.values()) + ["label", "idx"]
    return dataset.remove_columns([c for c in dataset.column_names if c not in keep])


def tokenize(dataset: datasets.Dataset, tokenizer, max_length: int, description: str = "Tokenising"):
    """Token ids (no padding: the collator pads each batch to its longest example) and ``labels``."""
    pair = "text_b" in dataset.column_names

    def encode(batch):
        texts = (batch["text_a"], batch["text_b"]) if pair else (batch["text_a"],)
        encoded = tokenizer(*texts, truncation=True, max_length=max_length)
        encoded["labels"] = batch["label"]
        return encoded

    remove = [c for c in dataset.column_names if c != "idx"]
    return dataset.map(encode, batched=True, remove_columns=remove, desc=description,
                       new_fingerprint=map_fingerprint(dataset, tokenizer, "tokenize", max_length, pair))


def map_fingerprint(dataset: datasets.Dataset, tokenizer, *settings) -> str | None:
    """The fingerprint of ``dataset.map`` with this tokenizer and settings, from the dataset's own fingerprint and
    the fast tokenizer's serialised pipeline: datasets would otherwise hash the mapped function by pickling the
    whole tokenizer object (about a second per call for a 30k vocabulary). None (datasets hashes as usual) for a
    tokenizer without a serialisable fast backend."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    try:
        pipeline = backend.to_str()
    except Exception:  # a backend that cannot be serialised: let datasets hash the function
        return None
    python_side = [type(tokenizer).__name__, list(tokenizer.model_input_names), tokenizer.padding_side,
                   tokenizer.truncation_side, tokenizer.model_max_length, tokenizer.init_kwargs, list(settings)]
    digest = hashlib.sha256(dataset._fingerprint.encode())
    digest.update(pipeline.encode())
    digest.update(json.dumps(python_side, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]
