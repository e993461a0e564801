"""LadaBERT hybrid compression as one of compress's methods: the encoder compression ratio chosen from measured speed.

A hybrid model keeps the teacher's depth; its speed comes from the low-rank factorisation (magnitude pruning leaves
dense kernels as fast as before, it only shrinks the stored size). Its ranks follow from the ratio alone, so an
untrained candidate at each ratio (one SVD step of the teacher, saved in the compact form) runs as fast as the
trained model will: the candidates are timed beside the depth candidates, and the lowest ratio that meets the
target is trained with `bert-emd hybrid` on the same data and for the same number of epochs as the other methods
(split over its compression steps).
"""

from __future__ import annotations

import copy
from pathlib import Path

from bert_emd.errors import BertEmdError
from bert_emd.runinfo import read_json

RATIOS = (2.0, 4.0, 8.0, 16.0)  # encoder compression ratios timed as candidates
STEPS = 3  # `bert-emd hybrid`'s default: the ratio rises geometrically over three compression steps
RESULTS = "hybrid_results.json"


def candidate_name(ratio: float) -> str:
    return f"hybrid-{ratio:g}x"


def save_hybrid_candidates(teacher, tokenizer, folder: Path, ratios=RATIOS) -> dict[float, Path]:
    """The teacher compressed in one untrained step to each ratio (the defaults of `bert-emd hybrid`: attention and
    feed-forward layers, half the compression by pruning), saved in the compact form. A ratio the layout cannot
    reach is left out."""
    from bert_emd.hybrid.compress import apply_step, plan_compression
    from bert_emd.hybrid.run import HybridConfig, target_names
    from bert_emd.hybrid.storage import save_hybrid

    defaults = HybridConfig()
    paths = {}
    for ratio in ratios:
        model = copy.deepcopy(teacher)
        try:
            chosen, _, (plan,) = plan_compression(model, target_names(defaults.targets), [ratio], defaults.prune_share,
                                                  defaults.rank_by, defaults.energy)
        except BertEmdError:
            continue
        apply_step(model, chosen, plan, defaults.prune_scope)
        path = folder / candidate_name(ratio)
        save_hybrid(model, path, tokenizer, extra={"candidate_ratio": ratio})
        paths[ratio] = path
    return paths


def training_options(shared: dict, ratio: float) -> dict:
    """`bert-emd hybrid` on the other methods' data: their epochs spread over its compression steps."""
    options = {key: value for key, value in shared.items() if key not in ("epochs", "eval_steps")}
    return {**options, "target_ratio": ratio, "steps": STEPS, "epochs": shared["epochs"] / STEPS}


def results_of(student: Path) -> dict:
    """A hybrid output's results in the shape of `eval_results.json`: the last step's dev scores, and a dev point
    after each step (at the optimiser steps done so far)."""
    results = read_json(student / RESULTS)
    done, evaluations = 0, []
    for step in results["steps"]:
        done += (step.get("train") or {}).get("steps") or 0
        scores = (step.get("splits") or {}).get("dev", {}).get("metrics")
        if scores:
            evaluations.append({"step": done, **scores})
    return {"splits": results["splits"], "train": {"steps": done, "dev_evaluations": evaluations}}
