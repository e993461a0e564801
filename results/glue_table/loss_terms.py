"""Loss terms and student layer-1 weight over training, from the TensorBoard logs of the runs the README quotes.

    .venv/bin/python results/glue_table/loss_terms.py   # writes results/glue_table/loss_terms.json

The event logs live with the models under runs/glue_table/ (not in git); this keeps the values quoted.
"""

import json
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

WORK = Path("runs/glue_table")
RUNS = ["mrpc/emd-L2/seed1", "cola/emd-L2/seed1", "cola/emd-L2-beta0.1/seed1", "cola/skip-L2-beta0.1/seed1",
        "cola/last-L2-beta0.1/seed1", "stsb/emd-L2/seed1"]
TAGS = ["loss_prediction", "loss_attention_emd", "loss_hidden_emd", "loss_embedding", "attention_student_weight_1"]
STEPS = [50, 100, 400, 500, 800]


def scalars(run: str) -> dict:
    """tag -> {step: value}, over every event file of the run (a resumed run has several)."""
    found: dict = {tag: {} for tag in TAGS}
    for events in sorted((WORK / run / "runs").glob("*/events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in TAGS:
            if f"train/{tag}" in accumulator.Tags()["scalars"]:
                found[tag].update({event.step: event.value for event in accumulator.Scalars(f"train/{tag}")})
    return found


def main() -> None:
    out = {}
    for run in RUNS:
        values = scalars(run)
        last = max(max(steps) for steps in values.values() if steps)
        out[run] = {tag: {str(step): round(steps[step], 4) for step in STEPS + [last] if step in steps}
                    for tag, steps in values.items() if steps}
        out[run]["last_logged_step"] = last
    target = Path(__file__).with_name("loss_terms.json")
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
