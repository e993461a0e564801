"""Options of `bert-emd experiment`: which tasks, student rows and seeds, and the settings they share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from bert_emd.data.tasks import get_task
from bert_emd.distill.emd import MAPPINGS
from bert_emd.errors import BertEmdError
from bert_emd.experiment.robustness import check_attack_options
from bert_emd.experiment.teacher_grid import check_grid
from bert_emd.options import option

METHODS = (*MAPPINGS, "theseus")  # a row's method: a layer mapping of distill, or BERT-of-Theseus

# Settings fixed by the runner itself (each run gets its own), so a config may not set them.
TEACHER_OWNED = {"task", "output", "model", "data_dir", "max_train_samples", "max_eval_samples"}
STUDENT_OWNED = {"task", "teacher", "output", "seed", "student_layers", "mapping", "data_dir", "max_train_samples",
                 "max_eval_samples", "augmented_train"}
AUGMENT_OWNED = {"task", "output", "data_dir", "max_train_samples", "max_eval_samples", "overwrite", "train_file",
                 "validation_file", "test_file"}
GENERAL_OWNED = {"teacher", "output", "student_layers", "data_dir", "max_train_samples", "max_eval_samples"}


@dataclass
class ExperimentConfig:
    name: str = option("glue_table", "experiment name: results go to RESULTS_DIR/NAME, models to WORK_DIR/NAME")
    tasks: str | list = option("sst2,cola,mrpc,rte,stsb", "comma-separated GLUE tasks")
    methods: str | list = option("emd,skip,last,none", "comma-separated layer mappings, one student row each")
    student_layers: str | list = option("2", "comma-separated student depths; every depth x method is a row")
    seeds: str | list = option("1,2,3", "comma-separated seeds of every student row")
    rows: list | None = option(None, "config file only: more rows, each a mapping with methods, student_layers and "
                               "optionally tasks, seeds (a list, or a mapping task -> list for the tasks whose "
                               "seeds differ from their default), label (row name suffix), distill (option "
                               "overrides) and "
                               "augment (`bert-emd augment` options: the row trains on augmented data, one file "
                               "per task and settings, made once) and general (`bert-emd general-distill` "
                               "options: the row's students start from a general student of the teacher model, "
                               "one per depth and settings, made once)", cli=False)
    task_settings: dict | None = option(None, "config file only: per task, overrides of seeds, teacher and "
                                        "distill options, e.g. {sst2: {seeds: [1], teacher: {epochs: 1}}}", cli=False)
    teacher_model: str = option("minilm-l6", "model each task's teacher is fine-tuned from")
    teacher: dict | None = option(None, "config file only: `bert-emd finetune` options of every "
                           "teacher", cli=False)
    teacher_grid: dict | None = option(None, "config file only: `bert-emd finetune` options -> lists of values, e.g. "
                                       "{learning_rate: [5.0e-5, 1.0e-4], epochs: [3, 6]}; every combination is "
                                       "trained and the best on the dev set is the task's teacher", cli=False)
    distill: dict | None = option(None, "config file only: `bert-emd distill` options of every "
                           "student run", cli=False)
    attack: dict | None = option(None, "config file only: `bert-emd attack` options ({} for its defaults, e.g. "
                                 "{max_examples: 200}); the teacher and every student of a classification task are "
                                 "then attacked on the same dev examples and the table gets accuracy under attack "
                                 "and attack success rate", cli=False)
    data_dir: str = option("../shared/glue", "directory in the original GLUE TSV layout")
    work_dir: str = option("runs", "where models and checkpoints go (WORK_DIR/NAME/...; not for git)")
    results_dir: str = option("results", "where records, table and plots go (RESULTS_DIR/NAME/...)")
    max_train_samples: int | None = option(None, "use only the first N training examples everywhere (smoke runs)",
                                           at_least=1)
    max_eval_samples: int | None = option(None, "use only the first N dev examples everywhere (smoke runs)", at_least=1)
    latency_batch_size: int = option(32, "batch size of the latency measurement", at_least=1)
    latency_length: int = option(128, "sequence length of the latency measurement", at_least=1)
    threads: int = option(2, "CPU threads of the latency measurement", at_least=1)
    latency_repeats: int = option(10, "timed forward passes per model", at_least=1)
    measure_latency: bool = option(True, "measure the teacher and one student per depth for the report "
                                         "(--no-measure-latency: keep the results folder's latency.json, e.g. "
                                         "when rows are added to a table measured before)")
    only: str | list | None = option(None, "comma-separated row names (e.g. emd-L3,emd-L3-aug10): work on these rows "
                                     "only this time (the report still shows every row)")
    dry_run: bool = option(False, "list the runs (done / to do) and stop")
    teachers_only: bool = option(False, "train (or pick from the grid) the teacher of every task chosen, even "
                                        "one whose runs are all recorded, then stop")
    report_only: bool = option(False, "train nothing: latency, table and plots from the records there are")
    report: bool = option(True, "after training, measure latency and write table and plots (--no-report: train "
                                "only, e.g. several jobs side by side; build the report later with --report-only)")


def as_list(value, kind=str, what: str = "a list option") -> list:
    """`"a,b"` or `["a", "b"]` -> a list of ``kind``; ``what`` names the option in the error."""
    if value is None:
        return []
    if isinstance(value, (int, float)):
        value = [value]
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        return [kind(item.strip()) if isinstance(item, str) else kind(item) for item in items
                if not (isinstance(item, str) and not item.strip())]
    except ValueError:
        kind_name = {int: "whole numbers", float: "numbers"}.get(kind, kind.__name__)
        raise BertEmdError(f"{what}: cannot read {value!r} as a comma-separated list of {kind_name}") from None


@dataclass(frozen=True)
class Row:
    """One student configuration of the table: a mapping at a depth, with optional option overrides."""
    mapping: str
    layers: int
    tasks: tuple[str, ...]
    seeds: tuple[int, ...] | None  # None: the task's seeds
    distill: tuple[tuple[str, object], ...] = ()
    label: str = ""
    augment: tuple[tuple[str, object], ...] | None = None  # None: the task's own training data
    general: tuple[tuple[str, object], ...] | None = None  # None: --student-init as the distill options say
    task_seeds: tuple[tuple[str, tuple[int, ...]], ...] = ()  # per task, seeds other than ``seeds``

    @property
    def name(self) -> str:
        return f"{self.mapping}-L{self.layers}" + (f"-{self.label}" if self.label else "")


def check_overrides(options: dict, where: str, runner_owned: set = STUDENT_OWNED) -> None:
    if not isinstance(options, dict):
        raise BertEmdError(f"{where} must be a mapping of option names to values")
    owned = sorted(set(options) & runner_owned)
    if owned:
        raise BertEmdError(f"{where}: {', '.join(owned)} are set by the experiment runner for each run")


def build_rows(config: ExperimentConfig) -> list[Row]:
    tasks = [get_task(name).name for name in as_list(config.tasks, str, "--tasks")]
    if not tasks:
        raise BertEmdError("--tasks is empty")
    rows = []
    specs = [{"methods": config.methods, "student_layers": config.student_layers}] + list(config.rows or [])
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise BertEmdError(f"rows[{index - 1}] must be a mapping (methods, student_layers, ...)")
        unknown = sorted(set(spec) - {"methods", "student_layers", "tasks", "seeds", "distill", "label", "augment",
                                      "general"})
        if unknown:
            raise BertEmdError(f"rows[{index - 1}]: unknown key(s) {', '.join(unknown)}")
        # a row's own tasks are narrowed to --tasks, so one sitting can work on a subset of a config's table
        named = [get_task(name).name for name in as_list(spec.get("tasks"), str, f"rows[{index - 1}].tasks")]
        row_tasks = [task for task in named or tasks if task in tasks]
        if not row_tasks:
            continue
        overrides = dict(spec.get("distill") or {})
        check_overrides(overrides, f"rows[{index - 1}].distill")
        augment = None
        if "augment" in spec:
            check_overrides(spec["augment"] or {}, f"rows[{index - 1}].augment", AUGMENT_OWNED)
            augment = tuple(sorted((spec["augment"] or {}).items()))
        general = None
        if "general" in spec:
            check_overrides(spec["general"] or {}, f"rows[{index - 1}].general", GENERAL_OWNED)
            if "student_init" in overrides:
                raise BertEmdError(f"rows[{index - 1}]: a general student is where the row's students start; "
                                   "leave out distill.student_init")
            general = tuple(sorted((key, tuple(value) if isinstance(value, list) else value)
                                   for key, value in (spec["general"] or {}).items()))
        seeds, task_seeds = row_seeds(spec.get("seeds"), row_tasks, f"rows[{index - 1}].seeds")
        for layers in as_list(spec.get("student_layers", "2"), int,
                              "--student-layers" if index == 0 else f"rows[{index - 1}].student_layers"):
            if layers < 1:
                raise BertEmdError("student layers must be at least 1")
            for mapping in as_list(spec.get("methods", "emd")):
                if mapping not in METHODS:
                    raise BertEmdError(f"unknown method {mapping!r}; choose from {', '.join(METHODS)}")
                if mapping == "theseus" and general is not None:
                    raise BertEmdError(f"rows[{index - 1}]: a theseus row starts from the teacher's own layers; "
                                       "leave out general")
                if mapping == "theseus":
                    check_theseus_options(overrides, f"rows[{index - 1}].distill")
                rows.append(Row(mapping, layers, tuple(row_tasks), seeds, tuple(sorted(overrides.items())),
                                str(spec.get("label", "")), augment, general, task_seeds))
    names = [row.name for row in rows]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BertEmdError(f"row(s) {', '.join(repeated)} appear twice; give one of them a label")
    return rows


def check_theseus_options(options: dict, where: str) -> None:
    """A theseus row's own options must be `bert-emd theseus` options (the shared distill settings are filtered)."""
    from bert_emd.theseus import TheseusConfig

    unknown = sorted(set(options) - {field.name for field in dataclasses.fields(TheseusConfig)})
    if unknown:
        raise BertEmdError(f"{where}: {', '.join(unknown)} not an option of `bert-emd theseus`")


def row_seeds(value, tasks: list[str], where: str) -> tuple[tuple[int, ...] | None, tuple]:
    """A row's ``seeds``: a list for all its tasks, or a mapping task -> list (other tasks: their default)."""
    if not value:
        return None, ()
    if not isinstance(value, dict):
        return tuple(as_list(value, int, where)), ()
    named = {get_task(task).name: tuple(as_list(seeds, int, f"{where}.{task}")) for task, seeds in value.items()}
    empty = sorted(task for task, seeds in named.items() if not seeds)
    if empty:
        raise BertEmdError(f"{where}: no seeds for {', '.join(empty)}")
    return None, tuple(sorted((task, seeds) for task, seeds in named.items() if task in tasks))


def select_rows(rows: list[Row], only) -> list[Row]:
    """The rows named by --only (every row when it is not given)."""
    names = as_list(only, str, "--only")
    if not names:
        return rows
    known = [row.name for row in rows]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BertEmdError(f"--only: no row {', '.join(unknown)} among the tasks chosen; rows: {', '.join(known)}")
    return [row for row in rows if row.name in names]


def task_setting(config: ExperimentConfig, task: str, key: str, default=None):
    settings = (config.task_settings or {}).get(task, {}) or {}
    unknown = sorted(set(settings) - {"seeds", "teacher", "teacher_grid", "distill"})
    if unknown:
        raise BertEmdError(f"task_settings.{task}: unknown key(s) {', '.join(unknown)} "
                           "(seeds, teacher, teacher_grid, distill)")
    return settings.get(key, default)


def finetune_options() -> set[str]:
    from bert_emd.finetune import FinetuneConfig

    return {field.name for field in fields(FinetuneConfig)}


def check_experiment(config: ExperimentConfig) -> list[Row]:
    if not config.name or "/" in config.name:
        raise BertEmdError("--name must be a plain folder name")
    check_overrides(config.teacher or {}, "teacher", TEACHER_OWNED)
    check_grid(config.teacher_grid, "teacher_grid", TEACHER_OWNED, finetune_options())
    check_overrides(config.distill or {}, "distill")
    check_attack_options(config.attack)
    for task in (config.task_settings or {}):
        get_task(task)
        check_overrides(task_setting(config, task, "teacher", {}), f"task_settings.{task}.teacher", TEACHER_OWNED)
        check_grid(task_setting(config, task, "teacher_grid"), f"task_settings.{task}.teacher_grid", TEACHER_OWNED,
                   finetune_options())
        check_overrides(task_setting(config, task, "distill", {}), f"task_settings.{task}.distill")
    if not as_list(config.seeds, int, "--seeds"):
        raise BertEmdError("--seeds is empty")
    return build_rows(config)
