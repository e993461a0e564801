"""`bert-emd general-distill`: task-agnostic distillation of a pre-trained encoder into a small one.

No labels and no head: the student learns the teacher's intermediate layers (attention scores, hidden
states, embedding output) on packed plain text, with the layer mapping of task distillation (``emd``
learns the flow and layer weights each step; ``skip`` / ``last`` fix them), through the same
``Distiller`` in its layer-only stage. The output is a standard encoder directory (``AutoModel`` loads
it) that ``distill --student-init DIR`` and ``finetune --model DIR`` start from.
"""

from __future__ import annotations

import dataclasses

from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, set_seed
from transformers.utils import logging as hf_logging

from bert_emd.data.loading import load_split, resolve_task
from bert_emd.distill.attention import resolve_attention, saving_attention
from bert_emd.distill.config import DistillConfig, LayerTermOptions
from bert_emd.distill.distiller import Distiller
from bert_emd.distill.mappings import get_mapping
from bert_emd.distill.run import check_pair, distill_state, parameter_count
from bert_emd.distill.student import build_student
from bert_emd.distill.trainer import DistillTrainer, LayerWeightHistory, restore_history
from bert_emd.errors import BertEmdError
from bert_emd.finite import refuse_non_finite
from bert_emd.general_distill.config import GeneralDistillConfig
from bert_emd.general_distill.corpus import pack, text_lines
from bert_emd.models import load_config, load_pretrained, load_tokenizer
from bert_emd.options import resolve_config
from bert_emd.outputs import writes_output
from bert_emd.runinfo import run_record, write_json
from bert_emd.training import (
    callbacks,
    check_training_options,
    remove_checkpoints,
    train_resuming,
    training_arguments,
)


def check_general_options(config: GeneralDistillConfig) -> None:
    check_training_options(config, evaluates=False)
    if not config.teacher:
        raise BertEmdError("--teacher is required (a pre-trained encoder: minilm-l6, a directory or a hub id)")
    if not config.student_layers:
        raise BertEmdError("--student-layers is required")
    if not get_mapping(config.mapping).layer_terms:
        raise BertEmdError("--mapping none leaves general distillation nothing to learn: use emd, skip or last")
    if config.attention == "off" and not config.hidden and not config.embedding:
        raise BertEmdError("every layer term is off (--attention off --no-hidden --no-embedding)")


@writes_output("general-distill", GeneralDistillConfig)
def general_distill(config: GeneralDistillConfig | str | dict | None = None, **overrides) -> dict:
    """Distil ``config.teacher`` into a ``config.student_layers``-layer encoder on plain text."""
    config = resolve_config(GeneralDistillConfig, config, overrides)
    check_general_options(config)
    teacher_config = load_config(config.teacher)
    attention, path = resolve_attention(config.attention, config.attention_distance, True,
                                        teacher_config)
    if path != "none":
        config = dataclasses.replace(config, attention_distance=path)
    tokenizer = load_tokenizer(config.teacher, config.max_length)
    task_texts = []
    if config.task or config.uses_own_files:  # the training split's texts, labels unused
        rows = load_split(resolve_task(config), config, "train")
        task_texts = [text for column in ("text_a", "text_b") if column in rows.column_names for text in rows[column]]
    sequences = pack(text_lines(config.corpus or [], task_texts), tokenizer, config.max_length)

    # The encoders are wrapped in a classifier (head unused, never trained) so that the task Distiller,
    # its student construction and its layer terms serve unchanged; only the encoder is saved.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a pre-trained encoder has no classifier: its new head is expected
    try:
        teacher = load_pretrained(AutoModelForSequenceClassification, config.teacher, "a teacher",
                                  **({} if attention is None else {"attn_implementation": attention}))
    finally:
        hf_logging.set_verbosity(verbosity)
    set_seed(config.seed)
    student = build_student(teacher, config.student_init, config.student_layers, config.student_hidden,
                            config.student_intermediate, config.student_heads, attention)
    check_pair(teacher, student, config)
    layer_terms = {field.name: getattr(config, field.name) for field in dataclasses.fields(LayerTermOptions)}
    distiller = Distiller(teacher, student, DistillConfig(**layer_terms))
    distiller.set_stage("intermediate")  # the layer terms alone, unweighted

    history: list = []
    trainer = DistillTrainer(
        model=distiller, args=training_arguments(config, None), train_dataset=sequences,
        data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
        callbacks=[LayerWeightHistory(distiller, config.history_every, "general", history),
                   *callbacks(config, evaluate=False)])
    result, checkpoint = train_resuming(trainer, config, restore=restore_history(history))
    if not trainer.is_world_process_zero():
        return {"layer_weights": distiller.layer_weights()}
    remove_checkpoints(config)

    output = config.output
    refuse_non_finite(student.base_model, f"the general student to {output}")
    # the saved config must not name a training-only attention function
    student.set_attn_implementation(saving_attention(student))
    student.base_model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    runtime = result.metrics.get("train_runtime") or float("nan")
    tokens = len(sequences) * config.max_length * config.epochs
    results = {"teacher": config.teacher, "corpus": config.corpus or [], "task_texts": len(task_texts),
               "sequences": len(sequences), "max_length": config.max_length, "tokens_trained": tokens,
               "tokens_per_second": tokens / runtime, "steps": result.global_step, "runtime_s": runtime,
               "final_loss": result.training_loss, "resumed_from": checkpoint,
               "parameters": {"student_encoder": parameter_count(student.base_model),
                              "teacher_encoder": parameter_count(teacher.base_model)},
               "log_history": [entry for entry in trainer.state.log_history if "loss" in entry]}
    write_json(f"{output}/general_distill_results.json", results)
    write_json(f"{output}/distill_state.json", distill_state(config, distiller, history))
    write_json(f"{output}/run_config.json", run_record("general-distill", config))
    print(f"{config.student_layers}-layer encoder ({results['parameters']['student_encoder']:,} parameters) "
          f"distilled on {len(sequences):,} sequences of {config.max_length} tokens at "
          f"{results['tokens_per_second']:,.0f} tokens/s; written to {output}")
    results["layer_weights"] = distiller.layer_weights()
    return results
