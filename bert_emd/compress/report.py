"""Stage 6 of compress: teacher, student and the exported student timed in turn in one run; report.json,
report.md, a self-contained report.html (plots embedded as PNG data, no network) and a Hugging Face model card."""

from __future__ import annotations

import base64
import html
import io
import statistics
from pathlib import Path

from bert_emd.compress.shapes import BENCHMARK_BACKEND
from bert_emd.data.tasks import GLUE_TASKS
from bert_emd.evaluation.metrics import constant_prediction_note
from bert_emd.experiment.table import percent_rounded_down
from bert_emd.runinfo import package_versions, read_json, write_json


def measure_final(config, teacher: str, students: list[Path], backend: str) -> dict:
    """p50 / p90 per model and backend at the deployment shape: `bert-emd benchmark` of the teacher and every
    student in turn, on PyTorch fp32 and the backend (it exports each student as the deploy stage did).
    Returns {"teacher": timing, "students": [timing, ...]}."""
    from bert_emd.compress.shapes import load_average
    from bert_emd.deploy.benchmark import benchmark

    backends = list(dict.fromkeys(["torch-fp32", BENCHMARK_BACKEND[backend]]))
    load = load_average()
    measured = benchmark(model=[teacher, *map(str, students)], batch_sizes=str(config.batch_size_deploy),
                         lengths=str(config.length_deploy), threads=config.threads, backends=",".join(backends),
                         repeats=max(config.latency_repeats, 5), warmup=1)
    timings = []
    for entry in measured["models"]:
        timing = {"parameters": entry["parameters"], "parameters_without_embeddings":
                  entry["parameters_without_embeddings"], "layers": entry["layers"], "backends": {}}
        for name, result in entry["backends"].items():
            (setting,) = result["settings"].values()
            ours = next(key for key, value in BENCHMARK_BACKEND.items() if value == name)
            timing["backends"][ours] = {"p50_ms": setting["p50_ms"], "p90_ms": setting["p90_ms"],
                                        "size_mb": result["size_mb"]}
        timings.append(timing)
    return {"teacher": timings[0], "students": timings[1:], "load_before": load}


INT8_LOSS_NOTE = 1.0  # points of the mean metric the int8 copy may lose before the report says so


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


SCORE_METRICS = {"token": ("f1",), "span": ("exact_match", "f1")}  # the task's score by kind (entity F1; SQuAD)


def _share(score: float, teacher_score: float) -> float | str:
    """A share of the teacher's score in percent; "n/a" when the teacher scores 0 or less (no share to give)."""
    return percent_rounded_down(score / teacher_score) if teacher_score > 0 else "n/a"


def reported_metrics(metrics: dict) -> dict:
    """The numbers among a task's metrics (a tagger's per-type F1 table is left to its eval_results.json)."""
    return {name: value for name, value in metrics.items() if isinstance(value, (int, float))}


def mean_metric(metrics: dict, task=None) -> float:
    """The task's score as the project's tables give it: the mean of its metrics (MRPC: F1 and accuracy); entity F1
    for taggers, the mean of exact match and F1 for readers."""
    names = SCORE_METRICS.get(getattr(task, "kind", "sequence"))
    return statistics.fmean(metrics[name] for name in names) if names else \
        statistics.fmean(reported_metrics(metrics).values())


def student_entry(config, task, backend: str, teacher: str, trained: dict, teacher_timing: dict,
                  student_timing: dict) -> dict:
    """One trained student's scores, loyalty, speed and size, as the report gives them."""
    student, deployed = Path(trained["student"]), trained["deployed"]
    split = task.eval_splits[0]
    early_exit = trained["method"] == "early-exit"
    if early_exit:  # the teacher with exits: its full model is the teacher; PyTorch is where it runs
        from bert_emd.compress.early_exit import early_exit_timing

        results = {"train": {}}
        scored = {"metrics": deployed["metrics"], "teacher_metrics": deployed["student_metrics"],
                  "num_examples": deployed["examples"], "loyalty": None}
        student_timing = early_exit_timing(deployed, teacher_timing, backend)
    else:
        if trained["method"] == "hybrid":
            from bert_emd.compress.hybrid import results_of

            results = results_of(student)
        else:
            results = read_json(student / "eval_results.json")
        scored = results["splits"][split]
    teacher_metrics, student_metrics = reported_metrics(scored["teacher_metrics"]), reported_metrics(scored["metrics"])
    teacher_score, student_score = mean_metric(teacher_metrics, task), mean_metric(student_metrics, task)
    deployed_score = mean_metric(deployed["metrics"], task)
    base = teacher_timing["backends"]["torch-fp32" if config.baseline == "teacher-torch-fp32" else backend]
    deployed_p50 = student_timing["backends"][backend]["p50_ms"]
    speedup = base["p50_ms"] / deployed_p50
    meets = deployed_p50 <= config.target_latency_ms if config.target_latency_ms is not None else \
        speedup >= config.target_speedup
    loss_points = 100 * (teacher_score - deployed_score)
    state = read_json(student / "distill_state.json") or {}
    return {
        "method": trained["method"], "chosen_layers": trained["layers"], "student": str(student),
        "chosen_shape": trained.get("shape"),
        "deployed": deployed["path"], "split": split, "examples": scored["num_examples"],
        "scores": {"teacher": teacher_metrics, "student": student_metrics,
                   "deployed": reported_metrics(deployed["metrics"]),
                   "teacher_mean": teacher_score, "student_mean": student_score, "deployed_mean": deployed_score,
                   "student_share_of_teacher_percent": _share(student_score, teacher_score),
                   "deployed_share_of_teacher_percent": _share(deployed_score, teacher_score)},
        "loyalty": scored.get("loyalty"),
        # a student that answers the same for every dev example: the report says so in words
        "constant_prediction": constant_prediction_note(task, scored["constant_prediction"])
        if scored.get("constant_prediction") else None,
        "deployed_agreement_with_student": deployed.get("prediction_agreement"),
        "deployed_int8_weight_scales": (deployed.get("export_report") or {}).get("files", {}).get(
            "model_int8.onnx", {}).get("weight_scales"),
        "deployed_max_output_difference": deployed["max_abs_output_difference"],
        "meets_target": meets,
        **({"early_exit": {key: deployed[key] for key in ("threshold", "mean_exit_layer", "measured_speedup",
                                                           "needed_speedup", "measured_on", "curve")}}
           if early_exit else {}),
        "accuracy_budget": None if config.accuracy_budget is None else {
            "points": config.accuracy_budget, "lost_points": loss_points,
            "met": loss_points <= config.accuracy_budget},
        "speed": {
            "teacher": teacher_timing, "student": student_timing, "speedup_vs_baseline": speedup,
            "speedup_vs_teacher_same_backend": teacher_timing["backends"][backend]["p50_ms"] / deployed_p50,
            "student_fp32_speedup_vs_teacher_fp32": teacher_timing["backends"]["torch-fp32"]["p50_ms"]
            / student_timing["backends"]["torch-fp32"]["p50_ms"]},
        "size_mb": {"teacher": _weights_mb(Path(teacher)), "student": _weights_mb(student),
                    "deployed": deployed["size_mb"]},
        "layer_mapping": {term: {"flow": entry.get("last_step", {}).get("flow"),
                                 "student_weights": entry.get("saved_model_weights", {}).get("student_weights"),
                                 "teacher_weights": entry.get("saved_model_weights", {}).get("teacher_weights")}
                          for term, entry in state.items() if term in ("attention", "hidden")},
        "dev_curve": [{"step": entry["step"], "score": entry.get(task.main_metric)}
                      for stage in _training_stages(results) for entry in stage.get("dev_evaluations", [])],
        "training": {"steps": sum(stage.get("steps") or 0 for stage in _training_stages(results)),
                     "best_step": next((stage["best_step"] for stage in reversed(_training_stages(results))
                                        if stage.get("best_step") is not None), None)},
    }


def _training_stages(results: dict) -> list[dict]:
    """distill's ``train`` holds one record per stage; theseus's is the record itself."""
    train = results.get("train", {})
    if "dev_evaluations" in train or "steps" in train:
        return [train]
    return [stage for stage in train.values() if isinstance(stage, dict)]


def keep(entries: list[dict]) -> dict:
    """The student with the best deployed dev score among those that meet the target in the final measurement
    (all of them when none does; the report says so)."""
    meeting = [entry for entry in entries if entry["meets_target"]] or entries
    return max(meeting, key=lambda entry: entry["scores"]["deployed_mean"])


def build_report(config, task, backend: str, teacher: str, table: list[dict], trained: list[dict], timings: dict,
                 stages, seconds: float, unmet: list[dict] | None = None) -> dict:
    measured = iter(timings["students"])  # early exit has no benchmark run of its own (PyTorch, derived)
    entries = [student_entry(config, task, backend, teacher, entry, timings["teacher"],
                             None if entry["method"] == "early-exit" else next(measured)) for entry in trained]
    kept = keep(entries)
    summaries = [{"method": entry["method"], "layers": entry["chosen_layers"], "shape": entry["chosen_shape"],
                  "student": entry["student"],
                  "deployed_mean": entry["scores"]["deployed_mean"],
                  "deployed_share_of_teacher_percent": entry["scores"]["deployed_share_of_teacher_percent"],
                  "speedup_vs_baseline": entry["speed"]["speedup_vs_baseline"], "meets_target": entry["meets_target"],
                  "constant_prediction": entry["constant_prediction"], "kept": entry is kept} for entry in entries]
    return {
        "task": task.name, "main_metric": task.main_metric, "teacher": teacher, "backend": backend,
        "baseline": config.baseline, "method_option": config.method,
        "deployment_shape": {"batch_size": config.batch_size_deploy, "length": config.length_deploy,
                             "threads": config.threads},
        "target": {"speedup": config.target_speedup, "latency_ms": config.target_latency_ms},
        **kept, "methods": summaries, "candidates": table,
        "other_cpu_use_before_timing": {"candidates": stages.state.get("shape", {}).get("load_before"),
                                       "final": timings.get("load_before")},
        "stages": {name: {"seconds": stages.state[name].get("seconds"), "settings": stages.state[name].get("settings")}
                   for name in stages.planned if name in stages.state},
        "commands": {name: (read_json(path / "run_config.json") or {}).get("argv")
                     for name, path in (("teacher", Path(teacher)), *((entry["method"], Path(entry["student"]))
                                                                       for entry in entries))},
        "methods_left_out": unmet or [],
        "wall_clock_seconds": seconds, "versions": package_versions(),
    }


def _is_chosen(row: dict, report: dict) -> bool:
    """Whether a candidate row is the kept student's shape (records made before shapes were named: by depth)."""
    if row["name"] == "teacher":
        return False
    shape = report.get("chosen_shape")
    return row["name"] == shape if shape else row["layers"] == report["chosen_layers"]


def _shape_words(entry: dict) -> str:
    return entry["shape"] if entry["method"] == "hybrid" else f"{entry['layers']} layers"


def _student_words(report: dict) -> str:
    """'3-layer student (emd)'; a hybrid model keeps the teacher's depth: 'hybrid-4x student (hybrid)'."""
    if report["method"] == "hybrid":
        return f"{report['chosen_shape']} student (hybrid, {report['chosen_layers']} layers)"
    return f"{report['chosen_layers']}-layer student ({report['method']})"


def _weights_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.glob("*.safetensors")) / 2**20


def write_report(config, task, backend, teacher, table, trained, timings, stages, output: Path,
                 seconds: float, unmet: list[dict] | None = None) -> dict:
    report = build_report(config, task, backend, teacher, table, trained, timings, stages, seconds, unmet)
    figures = {"score_latency": score_latency_plot(report), "layer_mapping": layer_mapping_plot(report),
               "dev_curve": dev_curve_plot(report)}
    write_json(output / "report.json", report)
    (output / "report.md").write_text(markdown(report), encoding="utf-8")
    (output / "report.html").write_text(page(report, figures), encoding="utf-8")
    model_card(report, task, Path(report["student"]))
    return report


# ----- plots (PNG bytes)
def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def score_latency_plot(report: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backend = report["backend"]
    speed, scores = report["speed"], report["scores"]
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    points = [("teacher, PyTorch fp32", speed["teacher"]["backends"]["torch-fp32"]["p50_ms"], scores["teacher_mean"],
               "tab:blue"),
              ("student, PyTorch fp32", speed["student"]["backends"]["torch-fp32"]["p50_ms"], scores["student_mean"],
               "tab:green"),
              (f"student, {backend}", speed["student"]["backends"][backend]["p50_ms"], scores["deployed_mean"],
               "tab:red")]
    if backend != "torch-fp32":
        points.insert(1, (f"teacher, {backend}", speed["teacher"]["backends"][backend]["p50_ms"],
                          scores["teacher_mean"], "tab:cyan"))
    for label, latency, score, colour in points:
        axis.scatter([latency], [100 * score], color=colour, label=label, zorder=3)
    low = min(100 * score for _, _, score, _ in points)
    for row in report["candidates"]:
        if row["name"] != "teacher":
            marker = "v" if _is_chosen(row, report) else "|"
            axis.scatter([row["p50_ms"]], [low - 2], marker=marker, color="grey", zorder=2)
            axis.annotate(row["name"], (row["p50_ms"], low - 2), textcoords="offset points", xytext=(0, -12),
                          ha="center", fontsize=7, color="grey")
    if report["target"]["latency_ms"] or report["target"]["speedup"]:
        base = speed["teacher"]["backends"]["torch-fp32" if report["baseline"] == "teacher-torch-fp32" else
                                            backend]["p50_ms"]
        limit = report["target"]["latency_ms"] or base / report["target"]["speedup"]
        axis.axvline(limit, color="grey", linestyle="--", linewidth=1, label="target latency")
    axis.set_xlabel(f"p50 latency, ms (batch {report['deployment_shape']['batch_size']} x "
                    f"{report['deployment_shape']['length']}, {report['deployment_shape']['threads']} threads)")
    axis.set_ylabel(f"{report['task']} dev score (mean of metrics) x 100")
    axis.set_title("score against measured latency (grey: untrained candidates' latency)", fontsize=9)
    axis.legend(fontsize=7, loc="best")
    axis.grid(alpha=0.3)
    return _png(figure)


def layer_mapping_plot(report: dict) -> bytes | None:
    mapping = report["layer_mapping"].get("hidden") or report["layer_mapping"].get("attention")
    if not mapping or not mapping.get("flow"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    flow = np.asarray(mapping["flow"])
    figure, axes = plt.subplots(1, 2, figsize=(8, 2.8), gridspec_kw={"width_ratios": [3, 2]})
    image = axes[0].imshow(flow, cmap="viridis", aspect="auto")
    axes[0].set_xticks(range(flow.shape[1]), [str(i + 1) for i in range(flow.shape[1])])
    axes[0].set_yticks(range(flow.shape[0]), [str(i + 1) for i in range(flow.shape[0])])
    axes[0].set_xlabel("teacher layer")
    axes[0].set_ylabel("student layer")
    axes[0].set_title("EMD flow of the last training step", fontsize=9)
    figure.colorbar(image, ax=axes[0])
    for side, colour in (("student_weights", "tab:green"), ("teacher_weights", "tab:blue")):
        weights = mapping.get(side) or []
        axes[1].plot(range(1, len(weights) + 1), weights, marker="o", color=colour, label=side.split("_")[0])
    axes[1].set_title("layer weights (cost attention)", fontsize=9)
    axes[1].set_xlabel("layer")
    axes[1].legend(fontsize=7)
    return _png(figure)


def dev_curve_plot(report: dict) -> bytes | None:
    curve = [point for point in report["dev_curve"] if point["score"] is not None]
    if not curve:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 2.8))
    axis.plot([p["step"] for p in curve], [100 * p["score"] for p in curve], marker=".", color="tab:green",
              label="student")
    axis.axhline(100 * report["scores"]["teacher"][report["main_metric"]], color="tab:blue", linestyle="--",
                 label="teacher")
    axis.set_xlabel("optimiser step")
    axis.set_ylabel(f"dev {report['main_metric']} x 100")
    axis.set_title("the student on dev during distillation (the best evaluation is kept)", fontsize=9)
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    return _png(figure)


# ----- text
def _metrics_rows(report: dict) -> list[tuple[str, str, str, str]]:
    scores = report["scores"]
    return [(name, f"{100 * scores['teacher'][name]:.2f}", f"{100 * scores['student'][name]:.2f}",
             f"{100 * scores['deployed'][name]:.2f}") for name in scores["teacher"]]


def summary_lines(report: dict) -> list[str]:
    scores, speed = report["scores"], report["speed"]
    against = "the teacher in PyTorch fp32" if report["baseline"] == "teacher-torch-fp32" else \
        f"the teacher on {report['backend']}"
    lines = [f"{_student_words(report)} of a "
             f"{report['speed']['teacher']['layers']}-layer teacher on {report['task']} ({report['split']}, "
             f"{report['examples']} examples), deployed on {report['backend']}"
             + (f" ({scales} weight scales)." if (scales := report.get("deployed_int8_weight_scales")) else "."),
             f"Score (mean of metrics): teacher {100 * scores['teacher_mean']:.2f}, student "
             f"{100 * scores['student_mean']:.2f} ({scores['student_share_of_teacher_percent']}% of the teacher), "
             f"deployed {100 * scores['deployed_mean']:.2f} ({scores['deployed_share_of_teacher_percent']}%).",
             f"Speed: {speed['speedup_vs_baseline']:.2f}x against {against} (target "
             + (f"{report['target']['speedup']:g}x" if report["target"]["speedup"] else
                f"{report['target']['latency_ms']:g} ms") + f"), {speed['speedup_vs_teacher_same_backend']:.2f}x "
             f"against the teacher on {report['backend']}; size {report['size_mb']['deployed']:.1f} MB against "
             f"{report['size_mb']['teacher']:.1f} MB."]
    training, settings = report.get("training") or {}, report["stages"].get(f"train-{report['method']}", {}).get(
        "settings", {})
    if training.get("steps") and settings.get("epochs") is not None:
        epochs = settings["epochs"]
        lines.append(f"Training: {training['steps']:,} steps, {epochs:g} epoch{'' if epochs == 1 else 's'} over the "
                     + ("augmented " if settings.get("augmented_train") else "") + "training data"
                     + (f"; the kept student is step {training['best_step']:,}'s (best dev score)."
                        if training.get("best_step") is not None else "."))
    if report.get("early_exit"):
        exit_ = report["early_exit"]
        lines.append(f"Early exit at entropy threshold {exit_['threshold']:g} (mean exit layer "
                     f"{exit_['mean_exit_layer']:.2f}) measured {exit_['measured_speedup']:.2f}x against the full "
                     f"model ({exit_['measured_on']}); it has no ONNX form, so it runs in PyTorch and its latency "
                     "here is the teacher's PyTorch p50 divided by that speedup.")
    for entry in report["methods"]:
        if entry.get("constant_prediction"):
            lines.append(f"WARNING, {entry['method']} ({_shape_words(entry)}"
                         f"{', the kept student' if entry['kept'] else ''}): {entry['constant_prediction']}.")
    for left in report.get("methods_left_out", []):
        lines.append(f"{left['method']} was left out: {left['why']}.")
    if len(report["methods"]) > 1:
        lines.append("Methods tried: " + "; ".join(
            f"{entry['method']} ({_shape_words(entry)}) {100 * entry['deployed_mean']:.2f} deployed, "
            f"{entry['speedup_vs_baseline']:.2f}x" + (" (kept)" if entry["kept"] else "")
            for entry in report["methods"]) + ".")
    from bert_emd.compress.shapes import BUSY_LOAD

    busy = {name: load for name, load in report["other_cpu_use_before_timing"].items()
            if load is not None and load > BUSY_LOAD}  # cores busy with other work
    if busy:
        lines.append("The machine was busy before timing (" + ", ".join(
            f"{load:.2f} cores busy with other work before the {name} measurement" for name, load in busy.items())
            + "): other work shared the CPU, so these latencies and speedups may be off; measure again on an idle "
            "machine.")
    if not report["meets_target"]:
        lines.append("The kept student does NOT meet the target in the final measurement (it did when the untrained "
                     "candidates were timed): the two measurements differ by the machine's noise.")
    lost = 100 * (scores["student_mean"] - scores["deployed_mean"])
    if report["backend"] == "onnx-int8" and lost > INT8_LOSS_NOTE:
        lines.append(f"Int8 costs {lost:.2f} points of the mean metric here: the exported copy scores below the "
                     "PyTorch student; --backend onnx-fp32 keeps the PyTorch student's score, at the speed it "
                     "measures.")
    if report["deployed_agreement_with_student"] is not None:
        lines.append(f"The deployed model predicts the PyTorch student's label on "
                     f"{100 * report['deployed_agreement_with_student']:.1f}% of the dev examples.")
    budget = report["accuracy_budget"]
    if budget:
        lines.append(f"Accuracy budget {budget['points']:g} points: " + (
            f"met (the deployed student loses {budget['lost_points']:.2f})" if budget["met"] else
            f"NOT met: the deployed student loses {budget['lost_points']:.2f} points, and no deeper student "
            "meets the speed target"))
    stage_seconds = sum(entry["seconds"] or 0 for entry in report["stages"].values())
    lines.append(f"Wall-clock of this call: {report['wall_clock_seconds'] / 60:.1f} min; the stages' own times add up "
                 f"to {stage_seconds / 60:.1f} min (a stage reused from an earlier call counts the time it took then; "
                 "one resumed after an interruption, its last sitting).")
    return lines


def markdown(report: dict) -> str:
    lines = [f"# Compression report: {report['task']}", "", *summary_lines(report), "", "## Scores (x 100)", "",
             "| metric | teacher | student (PyTorch) | student (deployed) |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {t} | {s} | {d} |" for name, t, s, d in _metrics_rows(report)]
    if report["loyalty"]:
        lines += ["", "Loyalty of the student to the teacher: " + ", ".join(
            f"{name} {value:.4f}" for name, value in report["loyalty"].items())]
    if len(report["methods"]) > 1:
        lines += ["", "## Methods", "",
                  "| method | layers | deployed score | share of teacher | speedup | meets target | kept |",
                  "|---|---:|---:|---:|---:|---|---|"]
        lines += [f"| {m['method']} | {m['layers']} | {100 * m['deployed_mean']:.2f} | "
                  f"{m['deployed_share_of_teacher_percent']}% | {m['speedup_vs_baseline']:.2f}x | "
                  f"{'yes' if m['meets_target'] else 'no'} | {'yes' if m['kept'] else ''} |" for m in report["methods"]]
    lines += ["", "## Speed and size", "", "| model | backend | p50 ms | p90 ms | size MB |",
              "|---|---|---:|---:|---:|"]
    for role in ("teacher", "student"):
        for backend, timing in report["speed"][role]["backends"].items():
            lines.append(f"| {role} | {backend} | {timing['p50_ms']:.1f} | {_ms(timing['p90_ms'])} | "
                         f"{timing['size_mb']:.1f} |")
    lines += ["", "## Candidates (untrained, timed before training)", "",
              "| shape | parameters | p50 ms | p90 ms | speedup |", "|---|---:|---:|---:|---:|"]
    for row in report["candidates"]:
        chosen = " (chosen)" if _is_chosen(row, report) else ""
        lines.append(f"| {row['name']}{chosen} | {row['parameters']:,} | {row['p50_ms']:.1f} | {row['p90_ms']:.1f} | "
                     f"{row['speedup']:.2f}x |")
    lines += ["", "## Stages", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {name} | {entry['seconds']:.0f} |" for name, entry in report["stages"].items()
              if entry.get("seconds") is not None]
    lines += ["", "Resolved settings of every stage and the package versions are in report.json.", ""]
    return "\n".join(lines)


# marks on the page how many plots decoded, for a headless browser check (the page needs nothing from the network)
LOAD_CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter((image) => image.complete && image.naturalWidth > 0).length;
  document.body.dataset.imagesLoaded = `${loaded}/${images.length}`;
});
</script>"""


def page(report: dict, figures: dict) -> str:
    """One self-contained HTML page: the plots are embedded as PNG data URIs, nothing is fetched."""
    def table(header: list[str], rows: list) -> str:
        head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
                       for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    images = "".join(f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                     f"</figure>" for name, png in figures.items() if png)
    speed_rows = [(role, backend, f"{t['p50_ms']:.1f}", _ms(t["p90_ms"]), f"{t['size_mb']:.1f}")
                  for role in ("teacher", "student") for backend, t in report["speed"][role]["backends"].items()]
    method_rows = [(m["method"], m["layers"], f"{100 * m['deployed_mean']:.2f}", f"{m['speedup_vs_baseline']:.2f}x",
                    "yes" if m["kept"] else "") for m in report["methods"]]
    candidate_rows = [(row["name"], f"{row['parameters']:,}", f"{row['p50_ms']:.1f}", f"{row['speedup']:.2f}x")
                      for row in report["candidates"]]
    summary = "".join(f"<p>{html.escape(line)}</p>" for line in summary_lines(report))
    settings = html.escape(__import__("json").dumps(report["stages"], indent=1, default=str))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bert-emd compress: {html.escape(report['task'])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:0.2em 0.6em;text-align:right}}
th{{background:#f3f3f3}}img{{max-width:100%}}pre{{background:#f7f7f7;padding:1em;overflow:auto;font-size:0.8em}}
</style></head><body>
<h1>Compression report: {html.escape(report['task'])}</h1>
{summary}
<h2>Scores (x 100)</h2>
{table(["metric", "teacher", "student (PyTorch)", "student (deployed)"], _metrics_rows(report))}
{"<h2>Methods</h2>" + table(["method", "layers", "deployed score", "speedup", "kept"], method_rows)
 if len(report["methods"]) > 1 else ""}
<h2>Speed and size</h2>
{table(["model", "backend", "p50 ms", "p90 ms", "size MB"], speed_rows)}
<h2>Candidates (untrained, timed before training)</h2>
{table(["shape", "parameters", "p50 ms", "speedup"], candidate_rows)}
<h2>Plots</h2>
{images}
<h2>Stages and their settings</h2>
<pre>{settings}</pre>
{LOAD_CHECK}
</body></html>
"""


def model_card(report: dict, task, student: Path) -> Path:
    """OUTPUT/student/README.md: a Hugging Face model card whose ``model-index`` holds the dev metrics."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    pipeline, auto_class = {"token": ("token-classification", "AutoModelForTokenClassification"),
                            "span": ("question-answering", "AutoModelForQuestionAnswering")}.get(
        task.kind, ("text-classification", "AutoModelForSequenceClassification"))
    own = task.name.startswith("custom")
    family = "glue" if task.name in GLUE_TASKS else task.name
    dataset = "custom" if own else (f"glue/{task.name}" if family == "glue" else task.name)
    results = [EvalResult(task_type=pipeline, dataset_type="custom" if own else family,
                          dataset_name=task.display_name, dataset_config=task.name,
                          dataset_split=report["split"], metric_type=name, metric_value=round(value, 4))
               for name, value in report["scores"]["student"].items()]
    data = ModelCardData(model_name=student.name, library_name="transformers", pipeline_tag=pipeline,
                         tags=["bert-emd", "distillation", report["method"]], datasets=[dataset],
                         metrics=list(report["scores"]["student"]), eval_results=results)
    title = _student_words(report)
    body = "\n".join([f"# {title[0].upper()}{title[1:]} for {task.display_name}", "",
                      "Made with bert-emd compress: " + {
                          "theseus": "BERT-of-Theseus module replacing.",
                          "hybrid": "LadaBERT hybrid weight pruning and matrix factorisation, with distillation.",
                          "early-exit": "MS-BERT early exit (exit students on the teacher, an entropy threshold)."}.get(
                          report["method"], f"distillation with the {report['method']} layer mapping (BERT-EMD: "
                                            "many-to-many)."), "",
                      *summary_lines(report), "", "## Use", "", "```python", *(
                          ["import bert_emd",
                           "model = bert_emd.EarlyExitModel.from_pretrained(PATH)  # the exits need bert-emd"]
                          if report["method"] == "early-exit" else
                          ["from bert_emd.hybrid.storage import load_hybrid",
                           "model = load_hybrid(PATH)  # the compact form (low-rank pairs, sparse weights)",
                           "# plain transformers: AutoModelForSequenceClassification.from_pretrained(PATH + '/dense')"]
                          if report["method"] == "hybrid" else
                          [f"from transformers import {auto_class}, AutoTokenizer",
                           f"model = {auto_class}.from_pretrained(PATH)",
                           "tokenizer = AutoTokenizer.from_pretrained(PATH)"]), "```", ""])
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
    path = student / "README.md"
    card.save(path)
    return path
