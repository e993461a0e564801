"""Questions and contexts as model inputs: long contexts in overlapping windows (``--max-length``, ``--doc-stride``
tokens of overlap), each answer carried to token positions through the fast tokenizer's character offsets.

A window holds ``[CLS] question [SEP] part of the context [SEP]``. Its training target is the first answer's
first and last token when the answer lies wholly inside the window, else the first token (``[CLS]``: no answer
here), as for unanswerable questions. Each window keeps the character span of its context tokens (-1 elsewhere)
and its question's index, so that answers are read back from the context over every window of a question.
"""

from __future__ import annotations

import datasets

from bert_emd.errors import BertEmdError
from bert_emd.spans.data import Question

OUTSIDE = -1  # offset of a token that is not part of the context


def check_room(questions: list[Question], tokenizer, max_length: int, doc_stride: int) -> None:
    """One line when a question leaves too little of a window for the context (the windows could not advance)."""
    special = tokenizer.num_special_tokens_to_add(pair=True)
    lengths = tokenizer([question.question.lstrip() for question in questions], add_special_tokens=False)["input_ids"]
    for question, ids in zip(questions, lengths):
        room = max_length - special - len(ids)
        if room <= doc_stride:
            raise BertEmdError(f"{question.where} (id {question.id}): the question takes {len(ids)} of --max-length "
                               f"{max_length} tokens, leaving {max(room, 0)} for the context, not more than "
                               f"--doc-stride {doc_stride}; raise --max-length or lower --doc-stride")


def encode_windows(questions: list[Question], tokenizer, max_length: int, doc_stride: int,
                   training: bool) -> datasets.Dataset:
    """One row per window: the model inputs, ``start_positions`` / ``end_positions`` where the questions have
    answers, and (``training=False``) ``example_index`` and ``offset_mapping`` for reading answers back. In a
    training set an answerable question must have its answer wholly inside some window."""
    if not tokenizer.is_fast:
        raise BertEmdError("question answering needs a fast tokenizer (its character offsets place the answers)")
    check_room(questions, tokenizer, max_length, doc_stride)
    encoded = tokenizer([question.question.lstrip() for question in questions],
                        [question.context for question in questions], truncation="only_second",
                        max_length=max_length, stride=doc_stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
    owners = encoded.pop("overflow_to_sample_mapping")
    starts, ends, offsets_kept = [], [], []
    answered = set()
    for window, owner in enumerate(owners):
        sequence_ids = encoded.sequence_ids(window)
        offsets = [tuple(pair) if sequence_ids[i] == 1 else (OUTSIDE, OUTSIDE)
                   for i, pair in enumerate(encoded["offset_mapping"][window])]
        offsets_kept.append(offsets)
        start = end = 0
        answers = questions[owner].answers
        if answers:
            context_tokens = [i for i, pair in enumerate(offsets) if pair[0] != OUTSIDE]
            first, last = context_tokens[0], context_tokens[-1]
            answer = answers[0]
            if offsets[first][0] <= answer.start and offsets[last][1] >= answer.end:
                start = next(i for i in context_tokens if offsets[i][1] > answer.start)
                end = next(i for i in reversed(context_tokens) if offsets[i][0] < answer.end)
                answered.add(owner)
        starts.append(start)
        ends.append(end)
    if training:
        for index, question in enumerate(questions):
            if question.answers and index not in answered:
                raise BertEmdError(f"{question.where} (id {question.id}): no window of --max-length {max_length} "
                                   f"holds the whole answer {question.answers[0].text[:60]!r}; raise --max-length "
                                   "or --doc-stride")
    rows = {key: encoded[key] for key in encoded.keys() if key != "offset_mapping"}
    if any(question.answers for question in questions) or training:
        rows["start_positions"], rows["end_positions"] = starts, ends
    if not training:
        rows["example_index"] = list(owners)
        rows["offset_mapping"] = offsets_kept
    return datasets.Dataset.from_dict(rows)


MODEL_COLUMNS = ("input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions")


def model_inputs(windows: datasets.Dataset, with_positions: bool = True) -> datasets.Dataset:
    """The windows without the columns only the answer reading needs."""
    keep = MODEL_COLUMNS if with_positions else MODEL_COLUMNS[:3]
    return windows.remove_columns([name for name in windows.column_names if name not in keep])
