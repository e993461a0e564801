"""Extractive question answering data: SQuAD v1.1 / v2.0 JSON files and JSON lines.

SQuAD JSON: ``{"data": [{"paragraphs": [{"context": ..., "qas": [{"id", "question", "answers": [{"text",
"answer_start"}], "is_impossible"}]}]}]}``. JSON lines: one question per line with ``question``, ``context`` and
``answers``, either SQuAD's list of ``{"text", "answer_start"}`` or the ``datasets`` form ``{"text": [...],
"answer_start": [...]}``; ``id`` is optional (the line number otherwise). A question without answers is
unanswerable (SQuAD v2.0). Every answer's text must stand at its character offset in the context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bert_emd.data.text_files import json_objects, read_text
from bert_emd.errors import BertEmdError


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset in the context

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    context: str
    answers: tuple[Answer, ...]  # () : unanswerable, or an unlabelled file
    where: str  # file and position, for errors


def read_questions(path: str | Path, labelled: bool = True) -> list[Question]:
    """The questions of a SQuAD JSON file (``.json``) or a JSON-lines file (``.jsonl``, or any other name)."""
    path = Path(path)
    text = read_text(path)
    questions = _read_squad(path, text, labelled) if path.suffix == ".json" else _read_lines(path, text, labelled)
    if not questions:
        raise BertEmdError(f"{path}: no questions")
    seen = set()
    for question in questions:
        if question.id in seen:
            raise BertEmdError(f"{question.where}: question id {question.id!r} appears twice in {path}")
        seen.add(question.id)
    return questions


def _read_squad(path: Path, text: str, labelled: bool) -> list[Question]:
    try:
        root = json.loads(text)
    except json.JSONDecodeError as error:
        raise BertEmdError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        raise BertEmdError(f"{path}: not a SQuAD file (expected an object with a 'data' list of articles)")
    questions = []
    for a, article in enumerate(root["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", []) if isinstance(article, dict) else []):
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                raise BertEmdError(f"{path}: article {a}, paragraph {p} has no 'context' text")
            for q, record in enumerate(paragraph.get("qas", [])):
                where = f"{path}: article {a}, paragraph {p}, question {q}"
                questions.append(_question(record, context, where, labelled, f"{a}-{p}-{q}"))
    return questions


def _read_lines(path: Path, text: str, labelled: bool) -> list[Question]:
    questions = []
    for number, record in json_objects(path, text, "an object with question, context and answers"):
        questions.append(_question(record, record.get("context"), f"{path}, line {number}", labelled, str(number)))
    return questions


def _question(record, context, where: str, labelled: bool, default_id: str) -> Question:
    if not isinstance(record, dict):
        raise BertEmdError(f"{where}: expected an object with id, question and answers")
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise BertEmdError(f"{where}: no 'question' text")
    if not isinstance(context, str) or not context.strip():
        raise BertEmdError(f"{where}: no 'context' text")
    identifier = str(record.get("id", default_id))
    answers = _answers(record.get("answers"), where) if labelled else ()
    if labelled and record.get("answers") is None and not record.get("is_impossible", False):
        raise BertEmdError(f"{where}: no 'answers' (an unanswerable question has an empty list, or "
                           "is_impossible: true)")
    if record.get("is_impossible", False):
        answers = ()
    for answer in answers:
        found = context[answer.start:answer.end]
        if found != answer.text:
            raise BertEmdError(f"{where} (id {identifier}): the answer {answer.text!r} is not at character "
                               f"{answer.start} of its context (found {found!r} there)")
    return Question(identifier, question, context, answers, where)


def _answers(value, where: str) -> tuple[Answer, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):  # the datasets form: parallel lists
        texts, starts = value.get("text"), value.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise BertEmdError(f"{where}: 'answers' needs equally long 'text' and 'answer_start' lists")
        pairs = list(zip(texts, starts))
    elif isinstance(value, list):
        pairs = [(item.get("text"), item.get("answer_start")) if isinstance(item, dict) else (None, None)
                 for item in value]
    else:
        raise BertEmdError(f"{where}: 'answers' must be a list of {{text, answer_start}} objects")
    answers = []
    for text, start in pairs:
        if not isinstance(text, str) or not text or isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise BertEmdError(f"{where}: every answer needs a non-empty 'text' and a character offset "
                               f"'answer_start' >= 0 (got text {text!r}, answer_start {start!r})")
        answers.append(Answer(text, start))
    return tuple(answers)
