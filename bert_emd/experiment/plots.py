"""The experiment's figures (PNG): learned flows, layer weights over training, score against latency."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bert_emd.data.tasks import get_task  # noqa: E402

TERMS = ("attention", "hidden")


def _emd_states(results_dir: Path, table: dict) -> dict[str, tuple[str, dict]]:
    """Per task: (row name, distill_state.json of its first seed) for the shallowest EMD row."""
    emd_rows = sorted((entry for entry in table["rows"] if entry.get("mapping") == "emd"),
                      key=lambda entry: entry["layers"])
    states = {}
    for task in table["tasks"]:
        for entry in emd_rows:
            files = sorted((results_dir / "runs" / task / entry["name"]).glob("seed*/distill_state.json"))
            if files:
                states[task] = (entry["name"], json.loads(files[0].read_text()))
                break
    return states


def plot_flows(results_dir: Path, table: dict) -> Path | None:
    """Heat maps of the last training step's flow F (student x teacher layers), per task and term."""
    states = {task: value for task, value in _emd_states(results_dir, table).items()
              if any("last_step" in value[1].get(term, {}) for term in TERMS)}
    if not states:
        return None
    figure, axes = plt.subplots(len(states), 2, figsize=(9, 2.2 * len(states) + 0.6), squeeze=False)
    for (task, (row, state)), pair in zip(states.items(), axes):
        for term, axis in zip(TERMS, pair):
            step = state.get(term, {}).get("last_step")
            if step is None:
                axis.set_axis_off()
                continue
            flow = np.asarray(step["flow"])
            image = axis.imshow(flow, cmap="viridis", vmin=0, aspect="auto")
            for (i, j), value in np.ndenumerate(flow):
                axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                          color="white" if value < flow.max() / 2 else "black")
            axis.set_xticks(range(flow.shape[1]), [str(j + 1) for j in range(flow.shape[1])])
            axis.set_yticks(range(flow.shape[0]), [str(i + 1) for i in range(flow.shape[0])])
            axis.set_xlabel("teacher layer")
            axis.set_ylabel("student layer")
            axis.set_title(f"{get_task(task).display_name} {row}: {term} flow", fontsize=9)
            figure.colorbar(image, ax=axis, fraction=0.04)
    figure.tight_layout()
    return _save(figure, results_dir / "flows.png")


def plot_layer_weights(results_dir: Path, table: dict) -> Path | None:
    """Student and teacher layer weights against the training step (first seed of the EMD row), per task."""
    states = {task: value for task, value in _emd_states(results_dir, table).items() if value[1].get("history")}
    if not states:
        return None
    figure, axes = plt.subplots(len(states), 2, figsize=(9, 2.2 * len(states) + 0.6), squeeze=False)
    for (task, (row, state)), pair in zip(states.items(), axes):
        history = state["history"]
        term = next(term for term in TERMS if term in history[0])
        steps = [sample["step"] for sample in history]
        for side, axis in zip(("student_weights", "teacher_weights"), pair):
            weights = np.asarray([sample[term][side] for sample in history])
            for layer in range(weights.shape[1]):
                axis.plot(steps, weights[:, layer], label=f"layer {layer + 1}")
            axis.set_ylim(-0.02, 1.02)
            axis.set_xlabel("training step")
            axis.set_ylabel("weight")
            axis.set_title(f"{get_task(task).display_name} {row}: {side.split('_')[0]} layer weights ({term})",
                           fontsize=9)
            axis.legend(fontsize=6, ncol=2)
    figure.tight_layout()
    return _save(figure, results_dir / "layer_weights.png")


def plot_score_latency(results_dir: Path, table: dict) -> Path | None:
    """Task score (mean ± std over seeds) against latency for every row, one panel per task and the average."""
    rows = [entry for entry in table["rows"] if entry.get("latency_ms")]
    if len(rows) < 2:
        return None
    panels = list(table["tasks"]) + ["average"]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    for panel, axis in zip(panels, axes[0]):
        for index, entry in enumerate(rows):
            if panel == "average":
                if entry.get("average") is None:
                    continue
                mean, std = entry["average"], 0.0
            elif panel in entry["tasks"]:
                mean, std = entry["tasks"][panel]["score"]["mean"], entry["tasks"][panel]["score"]["std"]
            else:
                continue
            axis.errorbar(entry["latency_ms"], 100 * mean, yerr=100 * std, fmt="o*sD^v<>"[index % 8], capsize=3,
                          color=f"C{index % 10}", label=entry["name"])  # a row's look is the same in every panel
        axis.set_xlabel("latency ms (batch 32)")
        axis.set_title(panel if panel == "average" else get_task(panel).display_name, fontsize=9)
    axes[0][0].set_ylabel("score x 100")
    legend: dict = {}  # every row that has a point in any panel (the first panel may lack some)
    for axis in axes.flat:
        legend.update(zip(*reversed(axis.get_legend_handles_labels())))
    figure.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(len(legend), 8), fontsize=7)
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    return _save(figure, results_dir / "score_latency.png")


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_all(results_dir: Path, table: dict) -> list[Path]:
    made = [plot(results_dir, table) for plot in (plot_flows, plot_layer_weights, plot_score_latency)]
    return [path for path in made if path is not None]
