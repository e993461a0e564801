"""Build the student: the teacher's family and tokenizer with fewer (and optionally narrower) layers."""

from __future__ import annotations

import copy
import re

import numpy as np
import torch
from transformers import (
    AutoModel,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from bert_emd.errors import BertEmdError
from bert_emd.families import encoder_blocks, family_of, feed_forward_size, set_sizes
from bert_emd.models import load_config, load_pretrained

HEAD_CLASSES = {"ForTokenClassification": AutoModelForTokenClassification,
                "ForQuestionAnswering": AutoModelForQuestionAnswering}


def _head_class_named(names) -> type:
    for suffix, auto_class in HEAD_CLASSES.items():
        if any(name.endswith(suffix) for name in names):
            return auto_class
    return AutoModelForSequenceClassification


def head_class_of_config(config):
    """The Auto class of a model's head kind: one label per sequence, one per token, or an answer span."""
    return _head_class_named(config.architectures or [])


def head_class(model):
    return _head_class_named([type(model).__name__])


def evenly_spaced_layers(student_layers: int, teacher_layers: int) -> list[int]:
    """0-based teacher layers to copy into the student: first and last kept, the rest evenly between."""
    return [int(round(x)) for x in np.linspace(0, teacher_layers - 1, student_layers)]


def chosen_teacher_layers(init: str, student_layers: int, teacher_layers: int) -> list[int] | None:
    """0-based teacher layers to copy for ``teacher`` (evenly spaced) or ``teacher:1,2`` (1-based, as listed);
    None for any other init."""
    if init == "teacher":
        return evenly_spaced_layers(student_layers, teacher_layers)
    if not init.startswith("teacher:"):
        return None
    return listed_layers(init, init.split(":", 1)[1], student_layers, teacher_layers, "teacher")


def split_copy_init(init: str) -> tuple[str, str | None] | None:
    """``copy:MODEL`` or ``copy:MODEL:1,3,6`` -> (MODEL, "1,3,6" or None); None for any other init."""
    if not init.startswith("copy:"):
        return None
    match = re.fullmatch(r"copy:(.+?)(?::([0-9, ]+))?", init)
    if not match:
        raise BertEmdError(f"--student-init {init}: expected copy:MODEL or copy:MODEL:L1,L2,...")
    return match.group(1), match.group(2)


def listed_layers(init: str, spec: str, student_layers: int, available: int, whose: str) -> list[int]:
    """0-based layers from a 1-based list such as ``1,3,6`` of the ``whose`` model's ``available`` layers."""
    try:
        chosen = [int(part) for part in spec.split(",")]
    except ValueError:
        raise BertEmdError(f"--student-init {init}: expected 1-based {whose} layer numbers, e.g. "
                           f"{'teacher:1,2' if whose == 'teacher' else 'copy:MODEL:1,3,6'}") from None
    if len(chosen) != student_layers:
        raise BertEmdError(f"--student-init {init} names {len(chosen)} {whose} layer(s) for a "
                           f"{student_layers}-layer student")
    if any(not 1 <= layer <= available for layer in chosen):
        raise BertEmdError(f"--student-init {init}: {whose} layers are numbered 1..{available}")
    if chosen != sorted(set(chosen)):
        raise BertEmdError(f"--student-init {init}: list distinct {whose} layers in increasing order")
    return [layer - 1 for layer in chosen]


def student_config(teacher_config, layers: int, hidden: int | None, intermediate: int | None, heads: int | None):
    config = copy.deepcopy(teacher_config)
    set_sizes(config, layers, hidden or teacher_config.hidden_size,
              intermediate or feed_forward_size(teacher_config), heads or teacher_config.num_attention_heads)
    if config.hidden_size % config.num_attention_heads:
        raise BertEmdError(f"student hidden size {config.hidden_size} is not a multiple of its "
                           f"{config.num_attention_heads} attention heads")
    return config


def copy_matching(source: torch.nn.Module, target: torch.nn.Module) -> int:
    """Copy every parameter whose name and shape match; returns how many tensors were copied."""
    source_state = source.state_dict()
    copied = 0
    with torch.no_grad():
        for name, tensor in target.state_dict().items():
            if name in source_state and source_state[name].shape == tensor.shape:
                tensor.copy_(source_state[name])
                copied += 1
    return copied


def build_student(teacher, init: str, layers: int, hidden: int | None = None, intermediate: int | None = None,
                  heads: int | None = None, attn_implementation: str = "eager"):
    """A student classifier with ``layers`` layers: from teacher layers, random, or a pretrained path."""
    teacher_config = teacher.config
    family_of(teacher_config, "teacher")  # a family bert-emd cannot serve is refused here, before any work
    if layers >= teacher_config.num_hidden_layers:
        raise BertEmdError(f"the student must have fewer layers than the teacher: --student-layers {layers} >= "
                           f"{teacher_config.num_hidden_layers} teacher layers")
    if layers < 1:
        raise BertEmdError("--student-layers must be at least 1")
    labels = dict(num_labels=teacher_config.num_labels, id2label=teacher_config.id2label,
                  label2id=teacher_config.label2id, problem_type=teacher_config.problem_type)
    source, chosen = teacher, chosen_teacher_layers(init, layers, teacher_config.num_hidden_layers)
    copied_from = split_copy_init(init)
    if copied_from is not None:
        source, chosen = _copy_source(init, *copied_from, teacher_config, layers)
    if chosen is not None or init == "random":
        config = student_config(teacher_config, layers, hidden, intermediate, heads)
        if copied_from is not None:
            _check_copy_sizes(init, source.config, config)
        config._attn_implementation = attn_implementation
        student = head_class(teacher).from_config(config, attn_implementation=attn_implementation)
        if chosen is not None:
            _copy_layers(student, source, chosen, "teacher" if copied_from is None else init)
        return student
    return _pretrained_student(init, teacher_config, layers, labels, attn_implementation)


def _copy_layers(student, source, chosen: list[int], source_name: str) -> None:
    """Embeddings, pooler and (from a classifier such as the teacher) head where sizes allow; the ``chosen``
    source layers into the student. ``source`` is a classifier or a bare encoder (``copy:MODEL``)."""
    target = student.base_model if source.base_model is source else student  # a bare encoder: no head to copy
    copy_matching(source, target)  # copies everything of equal name and shape (layers 0..N-1 too)
    student_blocks, source_blocks = encoder_blocks(student, "student"), encoder_blocks(source, source_name)
    for student_index, source_index in enumerate(chosen):
        copy_matching(source_blocks[source_index], student_blocks[student_index])


def _copy_source(init: str, model: str, spec: str | None, teacher_config, layers: int):
    """``copy:MODEL[:L1,...]``: the model (of the teacher's family) and its 0-based layers to copy."""
    source = load_pretrained(AutoModel, model, "the model to copy the student from")
    if source.config.model_type != teacher_config.model_type:
        raise BertEmdError(f"--student-init {init}: a {source.config.model_type} model, but the teacher is "
                           f"{teacher_config.model_type}")
    available = source.config.num_hidden_layers
    if layers > available:
        raise BertEmdError(f"--student-init {init}: {model} has {available} layers, fewer than the student's {layers}")
    return source, listed_layers(init, spec, layers, available, "its") if spec else evenly_spaced_layers(layers,
                                                                                                        available)


def _check_copy_sizes(init: str, source_config, config) -> None:
    """A copied model must fit the student whole (unlike the teacher copy, which fills only what fits)."""
    have = (source_config.vocab_size, source_config.hidden_size, feed_forward_size(source_config))
    want = (config.vocab_size, config.hidden_size, feed_forward_size(config))
    if have != want:
        raise BertEmdError(f"--student-init {init}: vocabulary, hidden and feed-forward sizes "
                           f"{'/'.join(map(str, have))} differ from the student's {'/'.join(map(str, want))}")


def _pretrained_student(path: str, teacher_config, layers: int, labels: dict, attn_implementation: str):
    config = load_config(path)
    if config.model_type != teacher_config.model_type:
        raise BertEmdError(f"student '{path}' is a {config.model_type} model but the teacher is "
                           f"{teacher_config.model_type}; the student must be of the teacher's family")
    if config.vocab_size != teacher_config.vocab_size:
        raise BertEmdError(f"student '{path}' has a vocabulary of {config.vocab_size} tokens but the teacher "
                           f"{teacher_config.vocab_size}; the student uses the teacher's tokenizer")
    if config.num_hidden_layers != layers:
        raise BertEmdError(f"student '{path}' has {config.num_hidden_layers} layers but --student-layers is {layers}")
    return load_pretrained(head_class_of_config(teacher_config), path, "a student", ignore_mismatched_sizes=True,
                           attn_implementation=attn_implementation, **labels)
