"""`bert-emd hybrid`: LadaBERT-style compression of a fine-tuned model in place.

Starting from the teacher itself, the encoder compression ratio rises geometrically over ``--steps``
steps towards ``--target-ratio``; each step refactorises the chosen Linear layers (truncated SVD of
their current weight), prunes by magnitude with fixed masks, then trains with knowledge distillation
from the original teacher (the project's Distiller: soft cross-entropy to the teacher's predictions,
optionally a one-to-one hidden-state MSE). The dev metric is recorded after each step.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from transformers import DataCollatorWithPadding, set_seed

from bert_emd.data.loading import DataOptions, load_split, resolve_task, tokenize
from bert_emd.distill.config import DistillConfig
from bert_emd.distill.distiller import Distiller
from bert_emd.distill.trainer import DistillTrainer
from bert_emd.errors import BertEmdError
from bert_emd.evaluation.evaluate import evaluate_models, format_results
from bert_emd.evaluation.metrics import compute_metrics
from bert_emd.families import encoder_blocks
from bert_emd.hybrid.compress import StepPlan, apply_step, chosen_nonzero, encoder_parameter_counts, plan_compression
from bert_emd.hybrid.lowrank import TARGET_GROUPS, TARGETS, target_modules
from bert_emd.hybrid.pruning import SCOPES
from bert_emd.hybrid.storage import DENSE_COPY, WEIGHTS, load_hybrid, save_dense_copy, save_hybrid
from bert_emd.models import label_names_of, load_config, load_tokenizer, load_trained_classifier
from bert_emd.options import option, resolve_config
from bert_emd.outputs import writes_output
from bert_emd.runinfo import run_record, write_json
from bert_emd.training import (
    TrainingOptions,
    callbacks,
    check_training_options,
    remove_checkpoints,
    train_resuming,
    training_arguments,
)

STEP_DONE = "step_done.json"


@dataclass
class HybridConfig(TrainingOptions, DataOptions):
    teacher: str | None = option(None, "fine-tuned model directory to compress (a `bert-emd finetune` output) "
                                 "(required)")
    target_ratio: float | None = option(None, "encoder compression ratio to reach: dense encoder parameters / "
                                        "non-zero ones, e.g. 2, 5, 10 (required)", above=1)
    steps: int = option(3, "compression steps; the ratio rises geometrically, KD training after each", at_least=1)
    targets: str = option("attention,ffn", "Linear layers to compress: attention, ffn, or any of "
                          + ", ".join(TARGETS))
    prune_share: float = option(0.5, "share of the compression (in log terms) done by pruning: 0 = factorisation "
                                "only, 1 = pruning only", at_least=0, at_most=1)
    rank_by: str = option("ratio", "rank per layer from the ratio (uniform) or from --energy", choices=("ratio",
                                                                                                     "energy"))
    energy: float = option(0.9, "rank-by energy: share of squared singular values each layer keeps", above=0, at_most=1)
    prune_scope: str = option("global", "magnitude threshold over all compressed weights or per layer",
                              choices=SCOPES)
    hidden_loss: bool = option(False, "add a one-to-one hidden-state MSE to the teacher's layers")
    hidden_weight: float = option(1.0, "weight of the hidden-state MSE", at_least=0)
    kd_temperature: float = option(1.0, "temperature of the soft prediction loss", above=0)
    alpha: float = option(1.0, "share of the soft (teacher) prediction loss; 1 - alpha goes to the labels",
                          at_least=0, at_most=1)
    epochs: float = option(1.0, "KD training epochs after each compression step", above=0)
    learning_rate: float = option(5e-5, "peak learning rate of each step's KD training", above=0)


def target_names(spec: str) -> list[str]:
    names = []
    for item in (part.strip() for part in spec.split(",") if part.strip()):
        group = TARGET_GROUPS.get(item, (item,))
        for name in group:
            if name not in TARGETS:
                raise BertEmdError(f"unknown target {item!r}; choose from attention, ffn, {', '.join(TARGETS)}")
            if name not in names:
                names.append(name)
    if not names:
        raise BertEmdError("--targets is empty")
    return names


def check_hybrid_options(config: HybridConfig) -> None:
    check_training_options(config, evaluates=False)
    if not config.teacher:
        raise BertEmdError("--teacher is required (a fine-tuned model directory)")
    if config.target_ratio is None:  # the ranges of it and every other number are checked with the options
        raise BertEmdError("--target-ratio is required (> 1; 2 halves the encoder)")
    if config.rank_by == "energy" and config.prune_share >= 1.0:
        raise BertEmdError("--rank-by energy factorises; it needs --prune-share below 1")


def step_ratios(target: float, steps: int) -> list[float]:
    return [target ** ((step + 1) / steps) for step in range(steps)]


@writes_output("hybrid", HybridConfig)
def hybrid(config: HybridConfig | str | dict | None = None, **overrides) -> dict:
    """Compress ``config.teacher`` to ``config.target_ratio``; see the module docstring."""
    config = resolve_config(HybridConfig, config, overrides)
    check_hybrid_options(config)
    targets = target_names(config.targets)
    task = resolve_task(config, model_labels=label_names_of(load_config(config.teacher)))
    teacher = load_trained_classifier(config.teacher, task, role="teacher")
    student = load_trained_classifier(config.teacher, task, role="teacher")
    tokenizer = load_tokenizer(config.teacher, config.max_length)
    # every step planned before any training (the target first, so its error names it): an unreachable
    # target fails now
    ratios = step_ratios(config.target_ratio, config.steps)[::-1]
    chosen, encoder_dense, plans = plan_compression(student, targets, ratios, config.prune_share, config.rank_by,
                                                    config.energy, config.teacher)
    plans = plans[::-1]

    output = Path(config.output)
    train = tokenize(load_split(task, config, "train"), tokenizer, config.max_length, "Tokenising train")
    eval_raw = load_split(task, config, task.eval_splits[0]) if config.has_dev_set else None
    history = []
    started = time.time()
    for index, plan in enumerate(plans, start=1):
        folder = output / f"step{index}"
        if (folder / STEP_DONE).is_file():  # finished before an interruption
            history.append(json.loads((folder / STEP_DONE).read_text()))
            student = load_hybrid(folder)
            chosen = target_modules(student, targets, str(folder))
            print(f"step {index} already finished in {folder}")
            continue
        set_seed(config.seed + index)
        chosen = apply_step(student, chosen, plan, config.prune_scope)
        counts = encoder_parameter_counts(encoder_blocks(student))
        print(f"\nstep {index}/{len(plans)}: encoder ratio {encoder_dense / counts['nonzero']:.2f}x (target "
              f"{plan.ratio:.2f}x), ranks {_rank_summary(plan)}, sparsity {plan.sparsity:.3f}", flush=True)
        record = {"step": index, "target_ratio": plan.ratio, "ranks": plan.ranks, "sparsity": plan.sparsity,
                  "encoder_ratio": encoder_dense / counts["nonzero"], "encoder_nonzero": counts["nonzero"],
                  "chosen_nonzero": chosen_nonzero(chosen)}
        record["train"] = _train_step(config, task, teacher, student, tokenizer, train, folder)
        if eval_raw is not None:
            record["splits"] = evaluate_models(task, config, "dev", student, tokenizer, teacher, tokenizer,
                                               config.eval_batch_size)
            print(format_results(task, record["splits"]))
        save_hybrid(student, folder, tokenizer, extra={"step": index})
        remove_checkpoints(dataclasses.replace(config, output=str(folder)))
        write_json(folder / STEP_DONE, record)
        history.append(record)
    return _finish(config, task, student, teacher, tokenizer, encoder_dense, history, time.time() - started)


def _rank_summary(plan: StepPlan) -> str:
    ranks = sorted(set(plan.ranks.values()))
    return "dense" if not ranks else (str(ranks[0]) if len(ranks) == 1 else f"{ranks[0]}..{ranks[-1]}")


def _train_step(config: HybridConfig, task, teacher, student, tokenizer, train, folder: Path) -> dict:
    kd = DistillConfig(mapping="skip" if config.hidden_loss else "none", attention="off", hidden=True,
                       embedding=False, beta=config.hidden_weight, alpha=config.alpha,
                       kd_temperature=config.kd_temperature, weight_update=False)
    distiller = Distiller(teacher, student, kd)
    options = dataclasses.replace(config, output=str(folder))
    trainer = DistillTrainer(model=distiller, args=training_arguments(options, None), train_dataset=train,
                             data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                             compute_metrics=lambda p: compute_metrics(task, p.predictions, p.label_ids),
                             callbacks=callbacks(options, evaluate=False))
    result, checkpoint = train_resuming(trainer, options)
    return {"runtime_s": result.metrics.get("train_runtime"), "steps": result.global_step,
            "loss": result.training_loss, "resumed_from": checkpoint}


def _finish(config, task, student, teacher, tokenizer, encoder_dense, history, seconds) -> dict:
    output = Path(config.output)
    save_hybrid(student, output, tokenizer, extra={"target_ratio": config.target_ratio})
    save_dense_copy(student, output / DENSE_COPY, tokenizer)
    total = sum(parameter.numel() for parameter in student.parameters())
    counts = encoder_parameter_counts(encoder_blocks(student))
    teacher_total = sum(parameter.numel() for parameter in teacher.parameters())
    results = {"task": task.name, "teacher": config.teacher, "target_ratio": config.target_ratio,
               "encoder": {"teacher_parameters": encoder_dense, "stored_parameters": counts["dense"],
                           "nonzero_parameters": counts["nonzero"], "ratio": encoder_dense / counts["nonzero"]},
               "model": {"teacher_parameters": teacher_total, "stored_parameters": total,
                         "nonzero_parameters": total - (counts["dense"] - counts["nonzero"])},
               "dense_copy": DENSE_COPY,
               "size_mb": {"hybrid": (output / WEIGHTS).stat().st_size / 2**20,
                           "teacher": sum(p.stat().st_size for p in Path(config.teacher).glob("*.safetensors"))
                           / 2**20},
               "train_seconds": sum(step["train"]["runtime_s"] or 0 for step in history if "train" in step),
               "wall_clock_seconds": seconds, "steps": history,
               "splits": history[-1].get("splits", {}) if history else {}}
    write_json(output / "hybrid_results.json", results)
    write_json(output / "run_config.json", run_record("hybrid", config, task=task.name))
    print(f"hybrid model (encoder {results['encoder']['ratio']:.2f}x smaller in non-zero parameters, "
          f"{results['size_mb']['hybrid']:.1f} MB on disk vs {results['size_mb']['teacher']:.1f} MB) written to "
          f"{output}; `bert-emd evaluate` and `bert-emd benchmark` load it; a standard dense copy for plain "
          f"transformers is in {output / DENSE_COPY}")
    return results

