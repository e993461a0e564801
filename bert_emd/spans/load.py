"""The splits of a question-answering task: SQuAD files under ``--data-dir`` (``--task squad`` / ``squad_v2``), one's
own files (``--task span --train-file train.json --validation-file dev.jsonl``), or the hub's ``rajpurkar/squad``
datasets when online."""

from __future__ import annotations

from pathlib import Path

from bert_emd.data.tasks import TaskSpec, span_task
from bert_emd.errors import BertEmdError
from bert_emd.spans.data import Answer, Question, read_questions

SQUAD_FILES = {"train": "train-{version}.json", "dev": "dev-{version}.json"}
HUB_NAMES = {"squad": "rajpurkar/squad", "squad_v2": "rajpurkar/squad_v2"}


def own_span_task(options) -> TaskSpec:
    """Unanswerable questions are expected (SQuAD v2.0 reading) when the training file, or else the validation
    file, holds one."""
    if not options.uses_own_files:
        raise BertEmdError("--task span reads your own files: give --train-file / --validation-file (SQuAD JSON or "
                           "JSON lines with question, context and answers)")
    source = options.train_file or options.validation_file
    unanswerable = bool(source) and any(not question.answers for question in read_questions(source))
    return span_task(unanswerable)


def doc_stride(options) -> int:
    stride = options.doc_stride if options.doc_stride is not None else options.max_length // 4
    return stride


def split_path(task: TaskSpec, options, split: str) -> Path | None:
    if options.uses_own_files:
        return options.own_file(split)
    if not options.data_dir:
        return None  # the hub
    version = "v2.0" if task.unanswerable else "v1.1"
    folder = Path(options.data_dir)
    name = SQUAD_FILES.get(split, f"{split}-{{version}}.json").format(version=version)
    for candidate in (folder / name, folder / f"{split}.json", folder / f"{split}.jsonl"):
        if candidate.is_file():
            return candidate
    raise BertEmdError(f"file not found: {folder / name}")


def load_questions(task: TaskSpec, options, split: str) -> list[Question]:
    if options.label_all_tokens:
        raise BertEmdError(f"--label-all-tokens applies to token tasks; {task.display_name} is not one")
    path = split_path(task, options, split)
    questions = read_questions(path, labelled=split != "test") if path else _from_hub(task, split)
    if split == "train" and not any(question.answers for question in questions):
        raise BertEmdError(f"{path}: no question of the training set has an answer")
    if split == "train" and not task.unanswerable and any(not question.answers for question in questions):
        unanswered = next(question for question in questions if not question.answers)
        raise BertEmdError(f"{unanswered.where} (id {unanswered.id}): a question without an answer in a "
                           f"{task.display_name} training set (SQuAD v2.0 data: --task squad_v2)")
    limit = options.max_train_samples if split == "train" else options.max_eval_samples
    return questions[:limit] if limit else questions


def _from_hub(task: TaskSpec, split: str) -> list[Question]:
    import datasets

    name = HUB_NAMES.get(task.name)
    if name is None:
        raise BertEmdError(f"{task.display_name}: give your files with --train-file / --validation-file")
    rows = datasets.load_dataset(name, split={"dev": "validation"}.get(split, split))
    return [Question(row["id"], row["question"], row["context"],
                     tuple(Answer(text, start) for text, start in zip(row["answers"]["text"],
                                                                       row["answers"]["answer_start"])),
                     f"{name} {split} row {number}") for number, row in enumerate(rows)]
