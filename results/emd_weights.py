"""Where an EMD run's cost-attention weights sat over training, and what its last logged update did.

    .venv/bin/python results/emd_weights.py [RUN_RECORD_FOLDER ...]
    # prints, and writes results/emd_weights.md; without folders, the runs results/JOURNAL.md quotes

For each run record (a folder with `distill_state.json`): the range of every student and teacher layer weight of the
attention term over the logged steps before the last one, the weights at the last logged step, and for each layer
term's last step its flow, its cost (distance) matrix and the unnormalised inverse-cost weights the update
normalised (`bert_emd.distill.emd.inverse_cost_weights`), with the update recomputed from them and checked against
the weights the run recorded after that step.
"""

import json
import sys
from pathlib import Path

import numpy as np

from bert_emd.distill.emd import cost_attention_update, inverse_cost_weights

RESULTS = Path(__file__).parent
QUOTED = ["recipe_mpnet/runs/mrpc/emd-L4/seed1", "recipe_mpnet/runs/rte/emd-L4/seed1",
          "recipe_table/runs/stsb/emd-L2-tinybert/seed1",
          "recipe_table/runs/stsb/emd-L2-tinybert/seed2"]


def _fmt(values, digits: int = 3) -> str:
    return "[" + ", ".join(f"{value:.{digits}f}" for value in values) + "]"


def ranges(history: list[dict], side: str) -> str:
    weights = np.array([entry["attention"][side] for entry in history])
    return ", ".join(f"{layer + 1}: {low:.3f}-{high:.3f}"
                     for layer, (low, high) in enumerate(zip(weights.min(axis=0), weights.max(axis=0))))


def last_step(name: str, term: dict, method: str, temperature: float) -> list[str]:
    step = term["last_step"]
    flow, cost = np.array(step["flow"]), np.array(step["cost"])
    raw_student, raw_teacher = inverse_cost_weights(flow, cost, step["student_weights_before"],
                                                    step["teacher_weights_before"])
    student, teacher = cost_attention_update(flow, cost, step["student_weights_before"],
                                             step["teacher_weights_before"], method, temperature)
    gap = max(np.abs(student - step["student_weights_after"]).max(),
              np.abs(teacher - step["teacher_weights_after"]).max())
    lines = [f"- {name} term, last step: flow (student layer per row, teacher layer per column)"]
    lines += [f"  - student {row + 1}: {_fmt(values)}" for row, values in enumerate(flow)]
    lines.append("  cost (distance)")
    lines += [f"  - student {row + 1}: {_fmt(values, 2)}" for row, values in enumerate(cost)]
    lines += [f"  inverse-cost weights before normalisation: student {_fmt(raw_student, 1)}, teacher "
              f"{_fmt(raw_teacher, 1)}",
              f"  after {method} (T = {temperature:g}): student {_fmt(student)}, teacher {_fmt(teacher)}; largest "
              f"difference from the recorded weights after the step {gap:.1e}"]
    return lines


def describe(folder: Path) -> list[str]:
    state = json.loads((folder / "distill_state.json").read_text())
    # the stage that trains the layer terms (a two-stage run logs unchanged weights through its prediction stage)
    history = [entry for entry in state["history"]
               if "attention" in entry and entry.get("stage", "joint") in ("joint", "intermediate")]
    before, final = history[:-1], history[-1]
    method, temperature = state["weight_norm"], state["emd_temperature"]
    lines = [f"\n## {folder.relative_to(RESULTS) if folder.is_relative_to(RESULTS) else folder}\n",
             f"weight normalisation {method}, T = {temperature:g}; {len(history)} logged steps of the "
             f"{final.get('stage', 'joint')} stage, its last step {final['step']}; shared weights: "
             f"{state.get('shared_weights')}\n",
             f"- attention weights over steps {before[0]['step']}-{before[-1]['step']}: student layers "
             f"{ranges(before, 'student_weights')}; teacher layers {ranges(before, 'teacher_weights')}",
             f"- at step {final['step']}: student {_fmt(final['attention']['student_weights'])}, teacher "
             f"{_fmt(final['attention']['teacher_weights'])}"]
    for name in ("attention", "hidden"):
        if "last_step" in state.get(name, {}):
            lines += last_step(name, state[name], method, temperature)
    return lines


def main() -> None:
    folders = [Path(argument) for argument in sys.argv[1:]] or [RESULTS / run for run in QUOTED]
    lines = ["# EMD layer weights over training and at the last step",
             "\n`.venv/bin/python results/emd_weights.py` (see its docstring)"]
    for folder in folders:
        lines += describe(folder.resolve())
    text = "\n".join(lines) + "\n"
    print(text)
    if not sys.argv[1:]:
        (RESULTS / "emd_weights.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
