"""`compress --dry-run`: the time each stage would take, from training steps timed here on this machine."""

from __future__ import annotations

import copy
import math
import time

import torch

from bert_emd.compress import recipe


def seconds_per_step(model_step, repeats: int = 3) -> float:
    model_step()  # the first step pays for allocation
    started = time.perf_counter()
    for _ in range(repeats):
        model_step()
    return (time.perf_counter() - started) / repeats


def _targets(task, batch_size: int, length: int) -> dict:
    """Training targets of the task's head for a random batch (labels; per token; or answer start and end)."""
    if task.kind == "span":
        zeros = torch.zeros(batch_size, dtype=torch.long)
        return {"start_positions": zeros, "end_positions": zeros}
    if task.kind == "token":
        return {"labels": torch.zeros(batch_size, length, dtype=torch.long)}
    return {"labels": torch.zeros(batch_size, dtype=torch.float if task.is_regression else torch.long)}


def _distiller_class(task):
    if task.kind == "token":
        from bert_emd.tokens.run import TokenDistiller

        return TokenDistiller
    if task.kind == "span":
        from bert_emd.spans.run import SpanDistiller

        return SpanDistiller
    from bert_emd.distill.distiller import Distiller

    return Distiller


def padded_length(task, options, tokenizer, batch_size: int, max_length: int, sample: int = 2048,
                  seed: int = 0) -> int:
    """The length a training batch is padded to on average: the collator pads each batch to its longest example,
    so a step is timed at the mean, over shuffled batches of a sample of the training set, of each batch's longest
    tokenised example (at most ``max_length``), not at ``max_length``. Token and span tasks are timed at
    ``max_length`` (an upper bound)."""
    if task.kind != "sequence":
        return max_length
    from bert_emd.data.loading import load_split

    train = load_split(task, options, "train").shuffle(seed=seed)
    rows = train.select(range(min(sample, len(train))))[:]
    texts = [rows["text_a"], rows["text_b"]] if "text_b" in rows else [rows["text_a"]]
    lengths = [len(ids) for ids in tokenizer(*texts, truncation=True, max_length=max_length)["input_ids"]]
    longest = [max(lengths[start:start + batch_size]) for start in range(0, len(lengths), batch_size)]
    return max(1, min(max_length, math.ceil(sum(longest) / len(longest))))


def _batch(vocab_size: int, batch_size: int, length: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    return {"input_ids": torch.randint(5, vocab_size, (batch_size, length), generator=generator),
            "attention_mask": torch.ones(batch_size, length, dtype=torch.long)}


def planned_seconds(config, task, teacher: str, layers: dict[str, int], train_examples: int,
                    augmenting: bool) -> tuple[dict, dict]:
    """stage -> estimated seconds (None where no estimate is made), and the lengths the steps were timed at
    (``teacher``, ``students``): teacher and training steps are timed on random tokens at the training batch size
    and the length its batches are padded to (`padded_length`). ``layers``: method -> student depth (the teacher's
    for hybrid compression and early exit: their training is timed on a copy of the teacher, an upper bound)."""
    from bert_emd.distill import DistillConfig
    from bert_emd.distill.attention import resolve_attention
    from bert_emd.distill.emd import MAPPINGS
    from bert_emd.distill.student import build_student
    from bert_emd.models import load_config, load_task_model, load_tokenizer, new_task_model
    from bert_emd.theseus.model import TheseusModel
    from bert_emd.theseus.schedule import ReplacingSchedule

    torch.set_num_threads(config.threads)
    estimate: dict = {"shape": 0.0}
    lengths: dict = {}
    settings = recipe.distill_settings(task.name)
    uses_layers = any(method in MAPPINGS and method != "none" for method in layers)
    attention, path = resolve_attention(settings["attention"], "auto", uses_layers,
                                        load_config(config.model or teacher))

    def load(**kwargs):
        return new_task_model(config.model, task, **kwargs) if config.model else \
            load_task_model(teacher, task, role="teacher", **kwargs)

    model = load(**({} if attention is None else {"attn_implementation": attention}))
    tokenizer = load_tokenizer(config.model or teacher)
    if config.model:
        teacher_settings = recipe.teacher_settings(task.name)
        length = lengths["teacher"] = padded_length(task, config, tokenizer, teacher_settings["batch_size"],
                                                    teacher_settings["max_length"])
        batch = _batch(model.config.vocab_size, teacher_settings["batch_size"], length)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
        targets = _targets(task, teacher_settings["batch_size"], length)

        def teacher_step():
            model.train()
            model(**batch, **targets).loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        steps = math.ceil(train_examples / teacher_settings["batch_size"]) * teacher_settings["epochs"]
        estimate["teacher"] = seconds_per_step(teacher_step) * steps
    if augmenting:
        estimate["augment"] = None
    length = padded_length(task, config, tokenizer, config.batch_size, config.max_length)
    lengths["students"] = length
    batch = _batch(model.config.vocab_size, config.batch_size, length)
    examples = train_examples * (1 + config.num_augmented) if augmenting else train_examples
    epochs = config.epochs if config.epochs is not None else (1.0 if augmenting else 3.0)
    steps = math.ceil(examples / config.batch_size) * epochs
    for method, depth in layers.items():
        if method == "theseus":  # the teacher's own attention, as `bert-emd theseus` loads it
            plain = load()
            student = build_student(plain, "teacher", depth, attn_implementation=plain.config._attn_implementation)
            trained = TheseusModel(plain, student, ReplacingSchedule("constant", 0.5), config.seed)
        else:  # hybrid and early exit train a model of the teacher's depth: a copy of it stands in
            student = copy.deepcopy(model).requires_grad_(True) if depth >= model.config.num_hidden_layers else \
                build_student(model, "teacher", depth, attn_implementation=attention or "eager")
            trained = _distiller_class(task)(model, student, DistillConfig(  # hybrid, early exit: prediction only
                mapping=method if method in MAPPINGS else "none", attention_distance=path if path != "none" else "auto",
                **{key: value for key, value in settings.items()
                   if key in ("beta", "emd_temperature", "weight_norm", "attention", "alpha", "theta",
                              "kd_temperature")}))
        trained.train()
        optimizer = torch.optim.AdamW([p for p in trained.parameters() if p.requires_grad], lr=1e-5)
        targets = _targets(task, config.batch_size, length)

        def step(trained=trained, optimizer=optimizer, targets=targets):
            trained(**batch, **targets)["loss"].backward()
            optimizer.step()
            optimizer.zero_grad()

        estimate[f"train-{method}"] = seconds_per_step(step) * steps
        estimate[f"deploy-{method}"] = None
    estimate["report"] = None
    return estimate, lengths
