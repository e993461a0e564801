"""`bert-emd distill`: a fine-tuned teacher -> a student with fewer layers, by BERT-EMD or a baseline."""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

from safetensors.torch import load_file
from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding, set_seed

from bert_emd.data.loading import load_split, resolve_task, tokenize
from bert_emd.distill.attention import resolve_attention, saving_attention
from bert_emd.distill.config import DistillConfig
from bert_emd.distill.distiller import Distiller
from bert_emd.distill.mappings import get_mapping
from bert_emd.distill.student import build_student
from bert_emd.distill.terms import check_extra_terms
from bert_emd.distill.trainer import DistillTrainer, LayerWeightHistory, restore_history
from bert_emd.errors import BertEmdError
from bert_emd.evaluation.evaluate import evaluate_models, format_results
from bert_emd.evaluation.metrics import compute_metrics
from bert_emd.finite import refuse_non_finite
from bert_emd.models import (
    check_vocabulary,
    label_names_of,
    load_config,
    load_tokenizer,
    load_trained_classifier,
)
from bert_emd.options import resolve_config
from bert_emd.outputs import writes_output
from bert_emd.runinfo import run_record, write_json
from bert_emd.training import (
    callbacks,
    check_training_options,
    dev_history,
    remove_checkpoints,
    train_resuming,
    training_arguments,
)

STAGE_DONE = "stage_done.json"


def check_distill_options(config: DistillConfig) -> None:
    check_training_options(config, evaluates=config.has_dev_set)
    if not config.teacher:
        raise BertEmdError("--teacher is required (a fine-tuned teacher directory)")
    if not config.student_layers:
        raise BertEmdError("--student-layers is required")
    check_extra_terms(config)


def check_pair(teacher, student, config: DistillConfig) -> None:
    uses_attention = config.attention != "off" and get_mapping(config.mapping).layer_terms
    if uses_attention and student.config.num_attention_heads != teacher.config.num_attention_heads:
        raise BertEmdError(f"attention matching needs equal head counts: student {student.config.num_attention_heads}"
                           f", teacher {teacher.config.num_attention_heads} (use --attention off or --student-heads "
                           f"{teacher.config.num_attention_heads})")


def parameter_count(model) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


@writes_output("distill", DistillConfig)
def distill(config: DistillConfig | str | dict | None = None, **overrides) -> dict:
    """Distil ``config.teacher`` into a ``config.student_layers``-layer student; see ``DistillConfig``."""
    config = resolve_config(DistillConfig, config, overrides)
    check_distill_options(config)
    teacher_config = load_config(config.teacher)
    task = resolve_task(config, model_labels=label_names_of(teacher_config))
    attention, path = resolve_attention(config.attention, config.attention_distance,
                                        get_mapping(config.mapping).layer_terms,
                                        teacher_config)
    if path != "none":  # the run record names the path taken, not "auto"
        config = dataclasses.replace(config, attention_distance=path)
    token_task = task.kind == "token"
    if config.count_tokens != "labelled" and not token_task:
        raise BertEmdError(f"--count-tokens applies to token tasks; {task.display_name} is not one")
    if token_task:
        from bert_emd.tokens.run import load_token_classifier

        teacher = load_token_classifier(config.teacher, task, role="teacher", attn_implementation=attention)
    elif task.kind == "span":
        from bert_emd.spans.run import load_span_reader

        teacher = load_span_reader(config.teacher, task, role="teacher", attn_implementation=attention)
    else:
        teacher = load_trained_classifier(config.teacher, task, role="teacher", attn_implementation=attention)
    tokenizer = load_tokenizer(config.teacher, config.max_length)
    set_seed(config.seed)
    student = build_student(teacher, config.student_init, config.student_layers, config.student_hidden,
                            config.student_intermediate, config.student_heads, attention)
    check_pair(teacher, student, config)
    check_vocabulary(tokenizer, student.config, config.student_init, "student")
    if token_task:
        from bert_emd.tokens.load import load_token_split, token_dataset
        from bert_emd.tokens.run import TokenDistiller, trainer_metrics

        train = token_dataset(load_token_split(task, config, "train"), tokenizer, task, config.max_length,
                              config.label_all_tokens)
        eval_raw = load_token_split(task, config, "dev") if config.has_dev_set else None
        distiller = TokenDistiller(teacher, student, config)
        collator, metrics = DataCollatorForTokenClassification(tokenizer), trainer_metrics(task)
    elif task.kind == "span":
        from bert_emd.spans.run import distill_parts

        train, eval_dataset, distiller, metrics = distill_parts(config, task, teacher, student, tokenizer)
        eval_raw, collator = eval_dataset, DataCollatorWithPadding(tokenizer)
    else:
        train = tokenize(load_split(task, config, "train"), tokenizer, config.max_length, "Tokenising train")
        eval_raw = load_split(task, config, task.eval_splits[0]) if config.has_dev_set else None
        distiller = Distiller(teacher, student, config)
        collator = DataCollatorWithPadding(tokenizer)

        def metrics(prediction):
            return compute_metrics(task, prediction.predictions, prediction.label_ids)

    if config.schedule == "joint":
        stages = [("joint", {}, Path(config.output))]
    else:
        layer_stage = dict(epochs=config.intermediate_epochs, learning_rate=config.intermediate_learning_rate,
                           lr_schedule=config.intermediate_lr_schedule)
        prediction_stage = dict(epochs=config.prediction_epochs, learning_rate=config.prediction_learning_rate)
        stages = [("intermediate", layer_stage, Path(config.output) / "intermediate"),
                  ("prediction", prediction_stage, Path(config.output))]
    history: list = []
    train_log = {}
    for stage, stage_settings, output in stages:
        done = output / STAGE_DONE
        if stage == "intermediate" and done.is_file():  # finished before an interruption: reuse it
            restore_stage(distiller, output / "model.safetensors")
            history[:] = json.loads(done.read_text())["history"]
            print(f"layer stage already finished in {output}; going on with the prediction stage")
            continue
        distiller.set_stage(stage)
        options = dataclasses.replace(config, output=str(output),  # a stage's own settings where given
                                      **{name: value for name, value in stage_settings.items() if value is not None})
        evaluate = eval_raw is not None and stage != "intermediate"
        trainer = DistillTrainer(
            model=distiller,
            args=training_arguments(options, task.main_metric if evaluate else None,
                                    **({"label_names": _span_label_names()} if task.kind == "span" else {})),
            train_dataset=train,
            eval_dataset=_eval_dataset(eval_raw, tokenizer, task, config) if evaluate else None,
            data_collator=collator,
            processing_class=tokenizer,
            compute_metrics=metrics,
            # The history callback goes first so that a checkpoint holds its history before anything else runs.
            callbacks=[LayerWeightHistory(distiller, config.history_every, stage, history),
                       *callbacks(config, evaluate)],
        )
        result, checkpoint = train_resuming(trainer, options, restore=restore_history(history))
        train_log[stage] = {"runtime_s": result.metrics.get("train_runtime"), "steps": result.global_step,
                            "loss": result.training_loss, "resumed_from": checkpoint,
                            "loss_terms": _loss_terms(trainer)}
        if evaluate:  # the dev score of every evaluation, and the step of the kept (best) one
            train_log[stage]["dev_evaluations"] = dev_history(trainer, task.main_metric)
            train_log[stage]["best_step"] = trainer.state.best_global_step
        if stage == "intermediate":
            trainer.save_model(str(output))  # every rank calls it; only the main process writes
        if trainer.is_world_process_zero():
            if stage == "intermediate":
                write_json(done, {"history": history})
            remove_checkpoints(options)

    if not trainer.is_world_process_zero():  # other DDP ranks: report their layer weights only
        return {"layer_weights": distiller.layer_weights()}
    results = _write_outputs(config, task, distiller, tokenizer, history, train_log, eval_raw is not None)
    results["layer_weights"] = distiller.layer_weights()
    return results


def restore_stage(distiller: Distiller, weights: Path) -> None:
    """The finished layer stage's weights (student, projection, layer weights; the teacher is not saved)."""
    missing, unexpected = distiller.load_state_dict(load_file(weights), strict=False)
    missing = [key for key in missing if not key.startswith(Distiller.checkpoint_excludes)]
    if missing or unexpected:
        raise BertEmdError(f"{weights} does not hold this run's layer stage (missing {missing[:2]}, unexpected "
                           f"{unexpected[:2]}); run again with --no-resume in a new --output")


def _span_label_names() -> list[str]:
    from bert_emd.spans.run import LABEL_NAMES

    return LABEL_NAMES


def _eval_dataset(raw, tokenizer, task, config):
    """The dev set as the Trainer evaluates it (span tasks: the windows, made already)."""
    if task.kind == "span":
        return raw
    if task.kind == "token":
        from bert_emd.tokens.load import token_dataset

        return token_dataset(raw, tokenizer, task, config.max_length)
    return tokenize(raw, tokenizer, config.max_length, "Tokenising dev")


def _loss_terms(trainer) -> dict:
    """Each logged loss term (unweighted, as in TensorBoard) averaged over the stage and over its last quarter of
    logs: how large the layer terms are beside the prediction loss."""
    logs = [entry for entry in trainer.state.log_history if "loss" in entry and "eval_loss" not in entry]
    terms = sorted({key for entry in logs for key in entry if key.startswith("loss_")})
    late = logs[len(logs) - max(1, len(logs) // 4):]
    return {term: {"mean": statistics.fmean(entry[term] for entry in logs if term in entry),
                   "last_quarter": statistics.fmean(entry[term] for entry in late if term in entry)}
            for term in terms if any(term in entry for entry in late)}


def _write_outputs(config: DistillConfig, task, distiller: Distiller, tokenizer, history, train_log, has_eval) -> dict:
    output = Path(config.output)
    student = distiller.student
    refuse_non_finite(student, f"the student to {output}")
    # the saved config must not name our training-only attention function
    student.set_attn_implementation(saving_attention(student))
    student.save_pretrained(output)
    tokenizer.save_pretrained(output)
    student.set_attn_implementation("eager")
    results = {"task": task.name, "teacher": config.teacher, "mapping": config.mapping, "main_metric": task.main_metric,
               "parameters": {"student": parameter_count(student), "teacher": parameter_count(distiller.teacher)},
               "train": train_log, "splits": {}}
    if has_eval and task.kind == "token":
        from bert_emd.tokens.run import format_token_results, score_tokens

        results["splits"] = {"dev": score_tokens(task, config, "dev", student, tokenizer, distiller.teacher,
                                                 config.eval_batch_size)}
        print(format_token_results(task, "dev", results["splits"]["dev"]))
    elif has_eval and task.kind == "span":
        from bert_emd.spans.run import format_span_results, score_spans

        results["splits"] = {"dev": score_spans(task, config, "dev", student, tokenizer, distiller.teacher,
                                                config.eval_batch_size)}
        print(format_span_results(task, "dev", results["splits"]["dev"]))
    elif has_eval:
        results["splits"] = evaluate_models(task, config, "dev", student, tokenizer, distiller.teacher, tokenizer,
                                            config.eval_batch_size)
        print(format_results(task, results["splits"]))
    write_json(output / "eval_results.json", results)
    write_json(output / "distill_state.json", distill_state(config, distiller, history))
    write_json(output / "run_config.json", run_record("distill", config, task=task.name))
    print(f"student ({results['parameters']['student']:,} parameters; teacher "
          f"{results['parameters']['teacher']:,}), eval_results.json, distill_state.json and run_config.json "
          f"written to {output}")
    return results


def distill_state(config: DistillConfig, distiller: Distiller, history: list) -> dict:
    """Layer weights after the final training step and those of the saved model, the last step's
    cost/flow/weights for each term, and the weight history (which always holds the final step)."""
    state: dict = {"mapping": config.mapping, "shared_weights": not config.separate_weights,
                   "weight_norm": config.weight_norm, "emd_temperature": config.emd_temperature,
                   "weights_note": "student_weights / teacher_weights: after the final training step; "
                                   "saved_model_weights: those of the checkpoint the Trainer restored at the end "
                                   "(with a dev set: the best epoch by the task's main metric)"}
    final = history[-1] if history else {}
    for name, term in (("attention", distiller.attention_loss), ("hidden", distiller.hidden_loss)):
        if term is None:
            continue
        saved = {"student_weights": term.student_weights.tolist(), "teacher_weights": term.teacher_weights.tolist()}
        entry = {**final.get(name, saved), "saved_model_weights": saved}
        record = term.last_step_record()
        if record is not None:
            entry["last_step"] = {key: value.tolist() for key, value in record.items()}
        state[name] = entry
    state["history"] = history
    return state
