"""`bert-emd compress`: one command from a fine-tuned (or pre-trained) model to a deployable student, with a report.

Stages, each under OUTPUT/ and reused on the next call when its settings match (an interrupted stage resumes
through its own command's checkpoints):

1. teacher (only with --model): `bert-emd finetune` with the recipe table's settings for the task;
2. shape: untrained students of every depth the methods can train timed against the teacher on the deployment
   backend, in one run; the deepest that meets the speed target is kept (OUTPUT/shape.json);
3. augmentation (``--augment auto``: under 10,000 training examples): `bert-emd augment`;
4. training: `bert-emd distill` with the recipe (or `bert-emd theseus`, `bert-emd hybrid` or MS-BERT exits on the
   same data and epochs), the best dev checkpoint kept (OUTPUT/student; with ``--method auto`` one per method,
   OUTPUT/student-emd, OUTPUT/student-theseus, ...);
5. deployment: `bert-emd export` to the backend (ONNX fp32 or int8), its predictions checked against the PyTorch
   student on the whole dev set, and its dev metrics;
6. measurement and report: `bert-emd benchmark` of the teacher and every student, PyTorch and exported, in turn in
   one run; the student with the best deployed dev score that meets the target is kept; report.html / report.md /
   report.json and a model card in the kept student's folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import sys
import time
from pathlib import Path

from bert_emd.compress import recipe
from bert_emd.compress.config import CompressConfig
from bert_emd.compress.shapes import (
    BUSY_LOAD,
    choose_shape,
    latency_table,
    load_average,
    measure,
    resolve_backend,
    save_candidates,
)
from bert_emd.data.loading import DataOptions, resolve_task
from bert_emd.errors import BertEmdError
from bert_emd.models import check_classifier, label_names_of, load_config, resolve_model
from bert_emd.options import resolve_config, to_dict
from bert_emd.outputs import writes_output
from bert_emd.runinfo import read_json, run_record, write_json

STATE_FILE = "compress_state.json"
STAGES = ("teacher", "shape", "augment", "train", "deploy", "report")  # train and deploy: once per method


class Stages:
    """Which stages are finished with which settings (OUTPUT/compress_state.json), and the one-line banners."""

    def __init__(self, output: Path, planned: list[str]):
        self.path = output / STATE_FILE
        self.planned = planned
        self.state = read_json(self.path) or {}

    @staticmethod
    def key(settings: dict) -> str:
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def done(self, stage: str, settings: dict) -> dict | None:
        entry = self.state.get(stage)
        return entry if entry and entry.get("key") == self.key(settings) else None

    def banner(self, stage: str, text: str, reused: bool = False) -> None:
        number = self.planned.index(stage) + 1
        print(f"[{number}/{len(self.planned)}] {text}{' (finished before: reused)' if reused else ''}", flush=True)

    def finish(self, stage: str, settings: dict, seconds: float, **results) -> dict:
        """Record a finished stage. A stage's settings hold the keys of the stages it was made from, so a stage
        made again makes the ones after it stale."""
        self.state[stage] = {"key": self.key(settings), "settings": settings, "seconds": seconds, **results}
        write_json(self.path, self.state)
        return self.state[stage]


# Data options added after compress stages were first recorded: in a stage's settings (and so its key) only when
# set, so that a stage recorded before they existed is still found finished by a later version.
LATER_DATA_OPTIONS = ("label_all_tokens", "doc_stride")


def data_options(config: CompressConfig) -> dict:
    """The data options every stage shares, as its settings record them."""
    options = {}
    for field in dataclasses.fields(DataOptions):
        value = getattr(config, field.name)
        if field.name not in LATER_DATA_OPTIONS or value != field.default:
            options[field.name] = value
    return options


def check_compress_options(config: CompressConfig):
    """Everything the stages would refuse, refused before any training. Returns the task."""
    if not config.output:
        raise BertEmdError("--output is required (the directory for the teacher, student and report)")
    if bool(config.teacher) == bool(config.model):
        raise BertEmdError("give --teacher (a fine-tuned model) or --model (a pre-trained model to fine-tune "
                           "first), one of them")
    if (config.target_speedup is None) == (config.target_latency_ms is None):
        raise BertEmdError("give the speed target: --target-speedup S (e.g. 3) or --target-latency-ms MS, one of "
                           "them")
    if not config.has_dev_set:
        raise BertEmdError("compress keeps the best checkpoint by the dev score and reports it: give a dev set "
                           "(--task with --data-dir, or --validation-file)")
    if config.teacher:
        from bert_emd.models import head_kind

        teacher_config = load_config(config.teacher)
        kind = head_kind(teacher_config)
        if kind == "sequence":
            teacher_config = check_classifier(config.teacher, role="teacher")
        task = resolve_task(config, model_labels=label_names_of(teacher_config))
        if kind != task.kind:
            raise BertEmdError(f"teacher '{config.teacher}' is a {kind} model but {task.display_name} is a "
                               f"{task.kind} task")
        if kind == "sequence":
            check_classifier(config.teacher, task, role="teacher")
        trained_for = (read_json(Path(resolve_model(config.teacher)) / "run_config.json") or {}).get("task")
        if trained_for and config.task and trained_for.lower().replace("-", "") != task.name:
            raise BertEmdError(f"teacher '{config.teacher}' was fine-tuned for task {trained_for}, not "
                               f"{task.name}; give the teacher of --task {config.task}")
    else:
        load_config(config.model)
        task = resolve_task(config)
    from bert_emd.models import check_max_length

    check_max_length(config.length_deploy, load_config(config.teacher or config.model),
                     config.teacher or config.model, flag="--length-deploy")
    from bert_emd.models import check_eval_split, count_training_examples

    count_training_examples(task, config)  # a bad file stops here, not after the teacher was trained
    check_eval_split(task, config)
    if task.kind == "span" and config.augment == "on":
        raise BertEmdError("--augment on: question-answering data is not augmented (a replaced word could move an "
                           "answer); use --augment off or auto")
    if task.kind != "sequence" and config.method in ("theseus", "early-exit", "hybrid"):
        raise BertEmdError(f"--method {config.method} takes tasks with one label per example; {task.display_name} "
                           f"is a {task.kind} task (use a layer mapping: emd, skip, last, none)")
    return task


def finetune_options(config: CompressConfig, task, output: Path) -> dict:
    settings = recipe.teacher_settings(task.name)
    return {**data_options(config), "model": config.model, "max_length": settings["max_length"],
            "learning_rate": settings["learning_rate"], "epochs": settings["epochs"],
            "batch_size": settings["batch_size"], "seed": config.seed, "output": str(output)}


def training_options(config: CompressConfig, task, method: str, teacher: str, layers: int, augmented: str | None,
                     output: Path) -> dict:
    """The options of `bert-emd distill` (a layer mapping) or `bert-emd theseus` for the student: the recipe's,
    on the same data and for the same optimiser steps whichever the method."""
    settings = recipe.distill_settings(task.name)
    if config.learning_rate is not None:
        settings["learning_rate"] = config.learning_rate
    epochs = config.epochs if config.epochs is not None else (1.0 if augmented else 3.0)
    # the augmented file was made from the first --max-train-samples originals: it is used whole
    data = {**data_options(config), **({"max_train_samples": None} if augmented else {})}
    shared = {**data, "teacher": teacher, "augmented_train": augmented or config.augmented_train,
              "epochs": epochs, "batch_size": config.batch_size, "eval_steps": config.eval_steps,
              "seed": config.seed, "output": str(output)}
    if method == "theseus":  # its own learning rate and curriculum (recipe.THESEUS), the same data and steps
        training = {key: settings[key] for key in ("lr_schedule", "warmup", "save_steps")}
        theseus = dict(recipe.THESEUS)
        if config.learning_rate is not None:
            theseus["learning_rate"] = config.learning_rate
        return {**shared, **training, **theseus, "successor_layers": layers}
    if method == "early-exit":  # its own defaults (small students, no dev evaluation during training)
        from bert_emd.compress.early_exit import train_options

        return train_options(data, teacher, augmented, config.seed, output)
    if method == "hybrid":  # the compression ratio stands where the other methods' depth does
        from bert_emd.compress import hybrid

        return hybrid.training_options(shared, layers)
    return {**shared, **settings, "student_layers": layers, "mapping": method}


def wants_augmentation(config: CompressConfig, train_examples: int, task=None) -> bool:
    if config.augmented_train:  # the user's own augmented file is used as it is
        return False
    if task is not None and task.kind == "span":  # a replaced word could move an answer: never augmented
        return False
    return config.augment == "on" or (config.augment == "auto" and train_examples < recipe.AUGMENT_BELOW)


@writes_output("compress", CompressConfig)
def compress(config: CompressConfig | str | dict | None = None, **overrides) -> dict:
    """A fine-tuned teacher (or a pre-trained model) -> the deepest student that meets the speed target, distilled,
    exported and measured, with a report; see ``CompressConfig`` and the module docstring."""
    config = resolve_config(CompressConfig, config, overrides)
    task = check_compress_options(config)
    backend = resolve_backend(config.backend)
    from bert_emd.distill import DistillConfig
    from bert_emd.finetune import FinetuneConfig

    output = Path(config.output)
    from bert_emd.models import count_training_examples

    train_examples = count_training_examples(task, config)
    augmenting = wants_augmentation(config, train_examples, task)
    planned = [*(["teacher"] if config.model else []), "shape", *(["augment"] if augmenting else []),
               *(f"{stage}-{method}" for method in methods_of(config, task) for stage in ("train", "deploy")), "report"]
    stages = Stages(output, planned)
    # the stage options are checked now too, so that a bad combination stops before any training
    if config.model:
        resolve_config(FinetuneConfig, finetune_options(config, task, output / "teacher"), {})
    from bert_emd.early_exit import EarlyExitTrainConfig
    from bert_emd.hybrid import HybridConfig
    from bert_emd.theseus import TheseusConfig

    if config.method == "early-exit" and task.is_regression:
        raise BertEmdError(f"--method early-exit needs a classification task; {task.display_name} is a regression "
                           "task")
    for method in methods_of(config, task):
        size = 2 if method == "hybrid" else 1  # a depth, or a hybrid compression ratio
        options = training_options(config, task, method, config.teacher or config.model, size, None,
                                   output / "student")
        kind = {"theseus": TheseusConfig, "early-exit": EarlyExitTrainConfig, "hybrid": HybridConfig}.get(
            method, DistillConfig)
        resolve_config(kind, options, {})
    started = time.time()
    try:
        return _run(config, task, backend, stages, output, train_examples, augmenting, started)
    except BertEmdError as error:
        if stages.state:  # finished stages stay for the next call
            raise BertEmdError(str(error), keep_output=True) from None
        raise


def _run(config, task, backend, stages: Stages, output: Path, train_examples: int, augmenting: bool,
         started: float) -> dict:
    from bert_emd.augment import augment
    from bert_emd.distill import distill
    from bert_emd.finetune import finetune
    from bert_emd.theseus import theseus

    # 1. the teacher
    teacher = config.teacher
    if config.model:
        settings = finetune_options(config, task, output / "teacher")
        teacher = str(output / "teacher")
        if stages.done("teacher", settings) and (output / "teacher" / "run_config.json").is_file():
            stages.banner("teacher", f"fine-tuning the teacher from {config.model}", reused=True)
        elif config.dry_run:
            stages.banner("teacher", f"fine-tuning the teacher from {config.model}: planned")
            teacher = config.model  # its shape stands in for the teacher's in the latency measurement
        else:
            stages.banner("teacher", f"fine-tuning the teacher from {config.model} on {task.display_name}")
            clock = time.time()
            finetune(**settings)
            stages.finish("teacher", settings, time.time() - clock)

    # 2. the shape
    shape_settings = {"teacher": teacher,
                      "backend": backend, "baseline": config.baseline, "batch_size": config.batch_size_deploy,
                      "length": config.length_deploy, "threads": config.threads, "repeats": config.latency_repeats}
    methods = methods_of(config, task)
    with_hybrid = "hybrid" in methods
    teacher_layers = load_config(teacher).num_hidden_layers
    depths = candidate_depths(methods, teacher_layers)
    every_depth = depths == list(range(1, teacher_layers))
    if not every_depth:  # only then, as for the hybrid ratios
        shape_settings["depths"] = depths
    if with_hybrid:  # only then, so that a shape stage recorded before hybrid candidates existed is still found
        from bert_emd.compress.hybrid import RATIOS

        shape_settings["hybrid_ratios"] = list(RATIOS)
    target = {"target_speedup": config.target_speedup, "target_latency_ms": config.target_latency_ms}
    reused = stages.done("shape", shape_settings)
    timed = ["untrained students of " + ("every depth" if every_depth else f"depth {', '.join(map(str, depths))}")
             ] if depths else []
    timed += ["untrained hybrid candidates"] if with_hybrid else []
    stages.banner("shape", f"timing {' and '.join(timed + ['the teacher'])} on {backend} (batch "
                  f"{config.batch_size_deploy} x {config.length_deploy}, {config.threads} threads)", bool(reused))
    if reused:
        table = reused["table"]
    else:
        clock, load = time.time(), load_average()
        table = _measure_shapes(config, task, teacher, backend, output, depths, with_hybrid)
        stages.finish("shape", shape_settings, time.time() - clock, table=table, load_before=load)
        if load is not None and load > BUSY_LOAD:
            print(f"warning: {load:.2f} cores were busy with other work before timing: it shared the CPU and "
                  "the chosen depth may be wrong; measure again on an idle machine (remove the shape entry of "
                  f"{stages.path.name} or use another --output)", file=sys.stderr)
    shapes, unmet = {}, []
    for method in methods:
        if method == "early-exit":
            continue
        try:
            shapes[method] = choose_shape(table, **target, method=method,
                                          allowed=theseus_depths(teacher_layers) if method == "theseus" else None)
        except BertEmdError as error:  # with --method auto, a method whose shapes all miss the target is left out
            if config.method != "auto" or method == "emd":
                raise
            print(f"{method}: {error}; left out", flush=True)
            unmet.append({"method": method, "why": str(error)})
    for method, chosen in shapes.items():
        print(format_shapes(table, chosen, backend, config.baseline, method), flush=True)
    if "early-exit" in methods:  # the teacher itself with exits; its threshold meets the target
        shapes["early-exit"] = {"name": "teacher", "layers": teacher_layers}

    if config.dry_run:
        return _plan(config, task, teacher, shapes, stages, train_examples, augmenting, table)

    # 3. augmentation
    augmented = None
    augment_key = None
    if augmenting:
        augmented = str(output / "augmented" / "train.jsonl")
        settings = {**data_options(config), "output": augmented, "num_augmented": config.num_augmented,
                    "seed": config.seed}
        if stages.done("augment", settings) and Path(augmented).is_file():
            stages.banner("augment", f"augmenting the {train_examples:,} training examples", reused=True)
        else:
            stages.banner("augment", f"augmenting the {train_examples:,} training examples (N = "
                          f"{config.num_augmented}, word vectors)")
            clock = time.time()
            augment(**settings, overwrite=True)
            stages.finish("augment", settings, time.time() - clock)
        augment_key = stages.key(settings)

    # 4. training and 5. deployment, per method
    from bert_emd.compress.deploy import deploy
    from bert_emd.compress.early_exit import deploy_early_exit
    from bert_emd.early_exit import train_early_exit
    from bert_emd.hybrid import hybrid

    trained = []
    for method, chosen in shapes.items():
        single = len(shapes) == 1
        student = output / ("student" if single else f"student-{method}")
        size = chosen["hybrid_ratio"] if method == "hybrid" else chosen["layers"]
        settings = {**training_options(config, task, method, teacher, size, augmented, student),
                    "augmented_file": augment_key}
        stage = f"train-{method}"
        what = {"early-exit": "exit students on the teacher (early exit)",
                "hybrid": f"the teacher compressed {size:g}x by hybrid pruning and factorisation"}.get(
            method, f"the {chosen['layers']}-layer student by {method}")
        finished = student / {"early-exit": "early_exit_results.json", "hybrid": "hybrid_results.json"}.get(
            method, "eval_results.json")
        if stages.done(stage, settings) and finished.is_file():
            stages.banner(stage, f"training {what}", reused=True)
        else:
            stages.banner(stage, f"training {what} ({settings['epochs']:g} epoch(s))")
            clock = time.time()
            run = {"theseus": theseus, "early-exit": train_early_exit, "hybrid": hybrid}.get(method, distill)
            run(**{key: value for key, value in settings.items() if key != "augmented_file"})
            stages.finish(stage, settings, time.time() - clock)
        deploy_settings = {"student": str(student), "trained": stages.state[stage]["key"], "backend": backend,
                           "data": data_options(config)}
        stage = f"deploy-{method}"
        done = stages.done(stage, deploy_settings)
        stages.banner(stage, "sweeping the early-exit threshold on dev, timed at the deployment batch size (PyTorch: "
                      "early exit has no ONNX form)" if method == "early-exit" else
                      f"exporting {what} to {backend} and checking it on dev", bool(done))
        if done:
            deployed = done["deployed"]
        else:
            clock = time.time()
            try:
                deployed = deploy_early_exit(config, task, student, table) if method == "early-exit" else \
                    deploy(config, task, student, backend, output / ("onnx" if single else f"onnx-{method}"))
            except BertEmdError as error:
                if single:
                    raise
                print(f"{method}: {error}; left out", flush=True)
                unmet.append({"method": method, "why": str(error)})
                continue
            stages.finish(stage, deploy_settings, time.time() - clock, deployed=deployed)
        trained.append({"method": method, "layers": chosen["layers"], "shape": chosen["name"], "student": student,
                        "deployed": deployed})

    # 6. measurement and report
    from bert_emd.compress.report import measure_final, write_report

    stages.banner("report", "timing the teacher and the students, PyTorch and exported, in turn; writing the report")
    clock = time.time()
    timings = measure_final(config, teacher, [entry["student"] for entry in trained if entry["method"] != "early-exit"],
                            backend)
    report = write_report(config, task, backend, teacher, table, trained, timings, stages, output,
                          time.time() - started, unmet)
    stages.finish("report", {"at": time.time()}, time.time() - clock)
    write_json(output / "run_config.json", run_record("compress", config, task=task.name))
    if config.records_dir:
        copy_records(output, Path(config.records_dir))
    from bert_emd.compress.report import summary_lines

    for line in summary_lines(report):
        if line.startswith("WARNING"):
            print(line, file=sys.stderr)
    print(f"report written to {output / 'report.html'} (and report.md, report.json); the kept student "
          f"({report['method']}) is in {report['student']} (model card README.md), its {backend} form in "
          f"{report['deployed']}")
    return report


RECORDS = ("report.json", "report.md", "report.html", STATE_FILE, "run_config.json", "eval_results.json",
           "distill_state.json", "README.md", "export_report.json", "augmented/train.jsonl.manifest.json")


def copy_records(output: Path, target: Path) -> list[Path]:
    """The small files of a compress output (no weights, no data) into ``target``, in the same layout."""
    copied = []
    for path in sorted(output.rglob("*")):
        relative = path.relative_to(output)
        if path.is_file() and (path.name in RECORDS or str(relative) in RECORDS) and "checkpoint-" not in str(relative):
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
            copied.append(destination)
    return copied


def methods_of(config: CompressConfig, task=None) -> list[str]:
    """``auto``: emd, theseus, hybrid and, for classification, early exit (token and span tasks: emd)."""
    if config.method != "auto":
        return [config.method]
    if task is not None and task.kind != "sequence":
        return ["emd"]
    return ["emd", "theseus", "hybrid", *(["early-exit"] if task is not None and not task.is_regression else [])]


def theseus_depths(teacher_layers: int) -> list[int]:
    """Successor depths that split the teacher's layers into equal modules."""
    return [layers for layers in range(1, teacher_layers) if teacher_layers % layers == 0]


def candidate_depths(methods: list[str], teacher_layers: int) -> list[int]:
    """The student depths worth timing for these methods: every depth for a layer mapping, the depths that divide
    the teacher's layers for Theseus, none for hybrid compression and early exit (they keep the teacher's depth)."""
    depths: set[int] = set()
    for method in methods:
        if method == "theseus":
            depths.update(theseus_depths(teacher_layers))
        elif method not in ("hybrid", "early-exit"):
            depths.update(range(1, teacher_layers))
    return sorted(depths)


def _measure_shapes(config, task, teacher: str, backend: str, output: Path, depths: list[int],
                    with_hybrid: bool = False) -> list[dict]:
    """Untrained candidates (the given depths; with ``with_hybrid`` the hybrid ratios too) saved in a scratch folder
    under OUTPUT, timed, then removed."""
    from bert_emd.models import load_task_model, load_tokenizer, new_task_model

    folder = output / "shape_candidates"
    shutil.rmtree(folder, ignore_errors=True)
    try:
        tokenizer = load_tokenizer(teacher)
        if config.dry_run and config.model:  # no teacher yet: the pre-trained model with a new head has its shape
            model = new_task_model(config.model, task)
            teacher = str(folder / "teacher")
            model.save_pretrained(teacher)
            tokenizer.save_pretrained(teacher)
        else:
            model = load_task_model(teacher, task, role="teacher")
        candidates = save_candidates(model, tokenizer, folder, depths)
        described = [{} for _ in candidates]
        if with_hybrid:
            from bert_emd.compress.hybrid import candidate_name, save_hybrid_candidates

            for ratio, path in save_hybrid_candidates(model, tokenizer, folder).items():
                candidates.append(path)
                described.append({"name": candidate_name(ratio), "hybrid_ratio": ratio})
        report = measure(teacher, candidates, backend, config.batch_size_deploy, config.length_deploy,
                         config.threads, config.latency_repeats)
        return latency_table(report, backend, config.baseline, described)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def format_shapes(table: list[dict], chosen: dict, backend: str, baseline: str, method: str) -> str:
    against = "teacher in PyTorch fp32" if baseline == "teacher-torch-fp32" else f"teacher on {backend}"
    lines = [f"{'shape':10s} {'parameters':>12s} {'p50 ms':>9s} {'p90 ms':>9s} {'speedup':>8s}  (vs {against}; "
             f"{method})"]
    for row in table:
        if ("hybrid_ratio" in row) != (method == "hybrid") and row["name"] != "teacher":
            continue
        mark = "  <- chosen" if row["name"] == chosen["name"] else ""
        lines.append(f"{row['name']:10s} {row['parameters']:12,d} {row['p50_ms']:9.1f} {row['p90_ms']:9.1f} "
                     f"{row['speedup']:7.2f}x{mark}")
    return "\n".join(lines)


def _plan(config, task, teacher, shapes: dict, stages: Stages, train_examples: int, augmenting: bool,
          table) -> dict:
    """`--dry-run`: the stages, the chosen shapes and the time they would take from step rates measured here."""
    from bert_emd.compress.estimate import planned_seconds

    depths = {method: chosen["layers"] for method, chosen in shapes.items()}
    estimate, lengths = planned_seconds(config, task, teacher, depths, train_examples, augmenting)
    lines = ["plan:"]
    for stage in stages.planned:
        seconds = estimate.get(stage)
        method = stage.partition("-")[2]
        if stage.startswith(("train-", "deploy-")) and method not in shapes:
            lines.append(f"  {stage:15s} left out: no shape of {method} meets the target")
            continue
        lines.append(f"  {stage:15s} " + (f"about {_minutes(seconds)}" if seconds is not None else ""))
    timed_at = ", ".join(f"{who} {length}" for who, length in lengths.items())
    lines.append(f"  total           about {_minutes(sum(value for value in estimate.values() if value))} "
                 f"(step rates measured on this machine, {config.threads} threads, at the mean padded batch length "
                 f"of the training data: {timed_at} tokens)")
    print("\n".join(lines))
    return {"dry_run": True, "task": task.name, "stages": stages.planned, "chosen": shapes, "table": table,
            "estimated_seconds": estimate, "timed_lengths": lengths}


def _minutes(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def config_dict(config: CompressConfig) -> dict:
    return to_dict(config)
