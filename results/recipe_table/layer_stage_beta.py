"""Does the task's beta, which scales the two-stage rows' layer-stage loss, change what that stage trains?

    OMP_NUM_THREADS=1 .venv/bin/python results/recipe_table/layer_stage_beta.py \
        --record results/recipe_table/runs/cola/emd-L2-tinybert/seed1 --work /tmp/layer_stage_beta
    # writes results/recipe_table/layer_stage_beta.json

`bert-emd distill --schedule two-stage` trains the layer stage on beta x (theta x (attention + hidden) +
embedding); TinyBERT's layer stage has no such factor. AdamW cancels a constant factor on the loss except where
the scaled gradients come near its epsilon (1e-8), and the Trainer's gradient clipping (max norm 1) acts on the
scaled norm. This runs the recorded row's layer stage for its first --steps optimiser steps, with the same seed,
data and settings, at the recorded beta twice (the second run is the control: a deterministic run moves the
same way), at beta 0.1 (gradients still under the clipping norm, 100 times further from epsilon) and at beta 1
(TinyBERT's loss), and compares how far each moved the student from its copied start against the first run
(relative difference and cosine of the parameter changes, per module group and in all), with the gradient norms
the Trainer logged.
"""

import argparse
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file
from transformers import set_seed

from bert_emd.distill import distill
from bert_emd.distill.student import build_student
from bert_emd.models import load_trained_classifier

HERE = Path(__file__).parent


def grad_norms(folder: Path) -> list[float]:
    """The gradient norms the Trainer logged in a stage (TensorBoard), before clipping."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    norms = []
    for events in sorted((folder / "runs").rglob("events.out.tfevents*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if "train/grad_norm" in accumulator.Tags()["scalars"]:
            norms += [round(event.value, 5) for event in accumulator.Scalars("train/grad_norm")]
    return norms


def student_state(folder: Path) -> dict:
    """The student's parameters as the layer stage left them (the distiller's state, prefix student.)."""
    state = load_file(folder / "intermediate" / "model.safetensors")
    return {name.removeprefix("student."): value for name, value in state.items() if name.startswith("student.")}


def group_of(name: str) -> str:
    for part in ("embeddings", "layer.0.", "layer.1.", "layer.2.", "pooler", "classifier"):
        if part in name:
            return part.rstrip(".")
    return "other"


def compare(start: dict, scaled: dict, unscaled: dict) -> dict:
    """How differently two runs moved the student from its start: ||change_1 - change_2|| / ||change_2||
    and the cosine of the two changes."""
    groups: dict = {}
    for name, initial in start.items():
        if name not in scaled:
            continue
        moved_scaled, moved_unscaled = scaled[name] - initial, unscaled[name] - initial
        entry = groups.setdefault(group_of(name), {"dot": 0.0, "scaled": 0.0, "unscaled": 0.0, "gap": 0.0})
        entry["dot"] += float((moved_scaled * moved_unscaled).sum())
        entry["scaled"] += float((moved_scaled ** 2).sum())
        entry["unscaled"] += float((moved_unscaled ** 2).sum())
        entry["gap"] += float(((moved_scaled - moved_unscaled) ** 2).sum())
    total = {key: sum(entry[key] for entry in groups.values()) for key in ("dot", "scaled", "unscaled", "gap")}
    out = {}
    for name, entry in {**groups, "all": total}.items():
        if entry["scaled"] == 0 and entry["unscaled"] == 0:
            continue  # untouched in the layer stage (pooler, classifier)
        out[name] = {"change_norm": entry["scaled"] ** 0.5, "change_norm_reference": entry["unscaled"] ** 0.5,
                     "relative_difference": (entry["gap"] / entry["unscaled"]) ** 0.5,
                     "cosine": entry["dot"] / (entry["scaled"] * entry["unscaled"]) ** 0.5}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, required=True, help="a two-stage row's record folder")
    parser.add_argument("--work", type=Path, required=True, help="a scratch folder for the two short runs")
    parser.add_argument("--steps", type=int, default=50, help="layer-stage optimiser steps to compare")
    arguments = parser.parse_args()
    recorded = json.loads((arguments.record / "run_config.json").read_text())["config"]
    batches = arguments.steps * recorded["batch_size"]
    betas = {"recorded_beta": recorded["beta"], "recorded_beta_again": recorded["beta"], "beta_0.1": 0.1,
             "beta_1": 1.0}
    runs = {}
    for label, beta in betas.items():
        options = {**recorded, "beta": beta, "output": str(arguments.work / label), "max_train_samples": batches,
                   "intermediate_epochs": 1.0, "prediction_epochs": 0.01, "eval_steps": None, "save_steps": 10_000,
                   "logging_steps": 10, "resume": False, "overwrite": True}
        shutil.rmtree(options["output"], ignore_errors=True)  # a finished layer stage there would be reused
        results = distill(**options)
        runs[label] = {"beta": beta, "layer_stage": results["train"]["intermediate"],
                       "grad_norms": grad_norms(arguments.work / label / "intermediate")}
    teacher = load_trained_classifier(recorded["teacher"], None, role="teacher")
    set_seed(recorded["seed"])  # as distill does before building the student
    start = build_student(teacher, recorded["student_init"], recorded["student_layers"]).state_dict()
    first = student_state(arguments.work / "recorded_beta")
    report = {"record": str(arguments.record), "steps": arguments.steps, "runs": runs,
              "parameter_change_against_recorded_beta": {
                  label: compare(start, student_state(arguments.work / label), first) for label in list(betas)[1:]}}
    (HERE / "layer_stage_beta.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for label, groups in report["parameter_change_against_recorded_beta"].items():
        print(label, {name: (round(entry["relative_difference"], 4), round(entry["cosine"], 4))
                      for name, entry in groups.items()}, "grad norms", runs[label]["grad_norms"])


if __name__ == "__main__":
    main()
