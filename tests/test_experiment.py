"""`bert-emd experiment`: the runner end to end on a tiny teacher, skipping finished runs, and bad configs."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from bert_emd.cli import main
from bert_emd.errors import BertEmdError
from bert_emd.experiment import experiment
from bert_emd.experiment import runner as runner_module
from bert_emd.experiment.config import ExperimentConfig
from bert_emd.experiment.estimate import recorded_rates
from bert_emd.options import resolve_config


def tiny_experiment(tiny_bert, glue_dir, tmp_path, **overrides) -> dict:
    options = dict(name="tiny", tasks="mrpc,stsb", methods="emd,skip", seeds="1,2", teacher_model=str(tiny_bert),
                   rows=[{"methods": ["emd"], "student_layers": 3, "tasks": ["mrpc"], "seeds": [1]}],
                   teacher={"epochs": 1, "batch_size": 8}, distill={"epochs": 1, "batch_size": 8},
                   data_dir=str(glue_dir), work_dir=str(tmp_path / "work"), results_dir=str(tmp_path / "results"),
                   max_train_samples=24, max_eval_samples=16, latency_repeats=1, latency_length=16)
    options.update(overrides)
    return options


@pytest.fixture(scope="module")
def finished(tiny_bert, glue_dir, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("experiment")
    options = tiny_experiment(tiny_bert, glue_dir, tmp_path)
    return options, experiment(**options), tmp_path / "results" / "tiny"


def test_table_cells_are_mean_and_std_of_the_seed_records(finished):
    _, table, results = finished
    names = [row["name"] for row in table["rows"]]
    assert names == ["teacher", "emd-L2", "skip-L2", "emd-L3"]
    skip = table["rows"][2]
    for task, metrics in (("mrpc", ("f1", "accuracy")), ("stsb", ("pearson", "spearman"))):
        records = [json.loads((results / "runs" / task / "skip-L2" / f"seed{seed}" / "eval_results.json").read_text())
                   for seed in (1, 2)]
        values = np.array([[record["splits"]["dev"]["metrics"][metric] for metric in metrics] for record in records])
        cell = skip["tasks"][task]
        assert cell["score"]["mean"] == pytest.approx(values.mean())
        assert cell["score"]["std"] == pytest.approx(np.std(values.mean(axis=1), ddof=1))
        first = next(iter(cell["metrics"].values()))
        assert first["mean"] == pytest.approx(values[:, 0].mean())
        assert first["values"] == pytest.approx(values[:, 0].tolist())
    assert skip["average"] == pytest.approx(statistics.fmean(skip["tasks"][t]["score"]["mean"] for t in ("mrpc",
                                                                                                        "stsb")))
    assert table["rows"][3]["average"] is None  # the 3-layer row covers one task only
    assert set(table["rows"][3]["tasks"]) == {"mrpc"}


def test_records_latency_and_plots_are_written(finished):
    _, table, results = finished
    for task in ("mrpc", "stsb"):
        teacher = json.loads((results / "teachers" / task / "run_config.json").read_text())
        assert teacher["config"]["epochs"] == 1 and teacher["config"]["task"] == task
        for seed in (1, 2):
            folder = results / "runs" / task / "emd-L2" / f"seed{seed}"
            assert {path.name for path in folder.iterdir()} == {"eval_results.json", "distill_state.json",
                                                                "run_config.json", "wall_clock.json"}
            assert json.loads((folder / "run_config.json").read_text())["config"]["seed"] == seed
    assert not list(results.rglob("*.safetensors"))  # no weights in the results folder
    latency = json.loads((results / "latency.json").read_text())
    assert set(latency["models"]) == {"teacher", "L2", "L3"}
    teacher_ms = latency["models"]["teacher"]["p50_ms"]
    row = next(row for row in table["rows"] if row["name"] == "emd-L3")
    assert row["speedup"] == pytest.approx(teacher_ms / latency["models"]["L3"]["p50_ms"])
    assert row["parameters"] == latency["models"]["L3"]["parameters"]  # both count the whole MRPC model
    markdown = (results / "table.md").read_text()
    assert "| skip-L2 |" in markdown and "MRPC f1" in markdown and "STS-B spearman" in markdown
    for name in ("flows.png", "layer_weights.png", "score_latency.png"):
        image = matplotlib.image.imread(results / name)
        assert image.ndim == 3 and image.shape[0] > 100


def test_report_only_trains_nothing_and_rebuilds_the_table(finished, monkeypatch):
    options, table, results = finished
    monkeypatch.setattr(runner_module.Experiment, "run_student", lambda *args: pytest.fail("student trained"))
    monkeypatch.setattr(runner_module.Experiment, "ensure_teacher", lambda *args: pytest.fail("teacher touched"))
    (results / "table.md").unlink()
    rows = options["rows"] + [{"methods": ["none"], "label": "new"}]  # a row without records yet
    rebuilt = experiment(**{**options, "rows": rows}, report_only=True)
    by_name = {row["name"]: row for row in rebuilt["rows"]}
    assert by_name["none-L2-new"]["tasks"] == {} and by_name["none-L2-new"]["average"] is None
    old = next(row for row in table["rows"] if row["name"] == "skip-L2")
    assert by_name["skip-L2"]["tasks"]["mrpc"]["score"] == old["tasks"]["mrpc"]["score"]
    assert "| none-L2-new |" in (results / "table.md").read_text()
    recorded = json.loads((results / "experiment_config.json").read_text())
    assert recorded["rows"] == [row["name"] for row in rebuilt["rows"][1:]]  # the config the report was built with



def test_report_only_can_keep_the_latency_measured_before(finished, monkeypatch):
    options, _, results = finished
    measured = (results / "latency.json").read_text()
    kept = json.loads(measured)
    kept["models"]["L3"].update(p50_ms=4 * kept["models"]["teacher"]["p50_ms"], speedup=0.25)  # marked
    (results / "latency.json").write_text(json.dumps(kept))
    import bert_emd.deploy.benchmark  # noqa: F401 (the module, reached through sys.modules: the package's
    # attribute of that name is the function)

    monkeypatch.setattr(sys.modules["bert_emd.deploy.benchmark"], "benchmark",
                        lambda **kwargs: pytest.fail("latency measured"))
    rebuilt = experiment(**options, report_only=True, measure_latency=False)
    assert json.loads((results / "latency.json").read_text()) == kept
    row = next(row for row in rebuilt["rows"] if row["name"] == "emd-L3")
    assert row["speedup"] == 0.25 and row["latency_ms"] == kept["models"]["L3"]["p50_ms"]  # from the kept file
    (results / "latency.json").write_text(measured)  # the module's other tests read the measured file
    experiment(**options, report_only=True, measure_latency=False)

def test_finished_runs_are_skipped_and_a_missing_record_is_run_again(finished, monkeypatch):
    options, _, results = finished
    calls = []
    monkeypatch.setattr(runner_module.Experiment, "run_student",
                        lambda self, task, row, seed: calls.append((task, row.name, seed)))
    monkeypatch.setattr(sys.modules["bert_emd.finetune"], "finetune",
                        lambda *args, **kwargs: pytest.fail("teacher retrained"))
    experiment(**options)
    assert calls == []
    (results / "runs" / "stsb" / "skip-L2" / "seed2" / "eval_results.json").unlink()
    experiment(**options, dry_run=True)  # lists; runs nothing
    assert calls == []
    table_md = (results / "table.md").read_text()
    config_json = (results / "experiment_config.json").read_text()
    monkeypatch.setattr(runner_module.Experiment, "finish", lambda self: pytest.fail("report built"))
    experiment(**options, report=False)  # trains what is missing, builds no report
    assert calls == [("stsb", "skip-L2", 2)]
    assert (results / "table.md").read_text() == table_md
    assert (results / "experiment_config.json").read_text() == config_json  # names the report's config only


def test_teacher_trained_with_other_settings_is_refused(finished):
    options, _, results = finished
    # a run left to train, so the teacher is needed (the test before leaves the same one; this one must not rely
    # on running after it)
    (results / "runs" / "stsb" / "skip-L2" / "seed2" / "eval_results.json").unlink(missing_ok=True)
    with pytest.raises(BertEmdError, match="other settings: epochs 1 \\(wanted 2"):
        experiment(**{**options, "teacher": {"epochs": 2, "batch_size": 8}})


@pytest.mark.parametrize("overrides, message", [
    ({"methods": "emd,pkd"}, "unknown method 'pkd'"),
    ({"tasks": "mrpc,snli"}, "unknown task 'snli'"),
    ({"rows": [{"methods": ["emd"], "student_layers": 3, "tasks": ["rtee"]}]}, "unknown task 'rtee'"),
    ({"rows": [{"methods": ["emd"], "layers": 3}]}, "unknown key\\(s\\) layers"),
    ({"distill": {"mapping": "skip"}}, "mapping are set by the experiment runner"),
    ({"teacher": {"task": "rte"}}, "task are set by the experiment runner"),
    ({"task_settings": {"mrpc": {"epochs": 2}}}, "task_settings.mrpc: unknown key"),
    ({"seeds": "one"}, "--seeds: cannot read 'one' as a comma-separated list of whole numbers"),
    ({"rows": [{"methods": ["theseus"], "distill": {"beta": 0.1}}]}, "rows\\[0\\].distill: beta not an option of "
                                                                    "`bert-emd theseus`"),
    ({"rows": [{"methods": ["theseus"], "general": {}}]}, "a theseus row starts from the teacher's own layers"),
    ({"rows": [{"methods": ["emd", "skip"], "student_layers": 2}]}, "emd-L2, skip-L2 appear twice"),
    ({"rows": [{"methods": ["emd"], "label": "aug", "augment": {"output": "x.jsonl"}}]},
     "output are set by the experiment runner"),
])
def test_bad_experiment_configs(tiny_bert, glue_dir, tmp_path, overrides, message):
    with pytest.raises(BertEmdError, match=message):
        experiment(**tiny_experiment(tiny_bert, glue_dir, tmp_path, **overrides))
    assert not (tmp_path / "work").exists()  # refused before any training


def test_cli_dry_run_lists_the_runs(capsys, tiny_bert, glue_dir, tmp_path):
    config = tmp_path / "table.yaml"
    config.write_text(f"name: cli\ntasks: [rte]\nmethods: [none, last]\nseeds: [3]\nteacher_model: {tiny_bert}\n"
                      f"data_dir: {glue_dir}\nwork_dir: {tmp_path / 'w'}\nresults_dir: {tmp_path / 'r'}\n")
    assert main(["experiment", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 task(s), 2 row(s), 2 student run(s), 0 already finished" in out
    assert "to do  rte    last-L2" in out
    assert main(["experiment", "--config", str(config), "--methods", "emd,bogus"]) == 2
    assert "unknown method 'bogus'" in capsys.readouterr().err


def test_narrowing_tasks_narrows_the_extra_rows(capsys, tiny_bert, glue_dir, tmp_path):
    config = tmp_path / "table.yaml"
    config.write_text(f"name: cli\ntasks: [rte, mrpc]\nmethods: [none]\nseeds: [1]\nteacher_model: {tiny_bert}\n"
                      "rows:\n  - {methods: [emd], student_layers: 3, tasks: [rte, mrpc]}\n"
                      "  - {methods: [skip], student_layers: 3, tasks: [mrpc]}\n"
                      f"data_dir: {glue_dir}\nwork_dir: {tmp_path / 'w'}\nresults_dir: {tmp_path / 'r'}\n")
    assert main(["experiment", "--config", str(config), "--tasks", "rte", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 task(s), 2 row(s), 2 student run(s)" in out  # none-L2 and emd-L3 on rte; skip-L3 (mrpc only) dropped
    assert "to do  rte    emd-L3" in out and "mrpc" not in out.split("already finished")[1]


def test_augmented_rows_train_on_one_shared_augmented_file(tiny_bert, glue_dir, tmp_path):
    rows = [{"methods": ["emd", "none"], "label": "aug", "augment": {"num_augmented": 2}, "seeds": [1]}]
    options = tiny_experiment(tiny_bert, glue_dir, tmp_path, tasks="mrpc", methods="emd", seeds="1", rows=rows,
                              report=False)
    experiment(**options)
    files = sorted((tmp_path / "work" / "tiny" / "augmented").glob("*.jsonl"))
    assert [path.name.split("-")[0] for path in files] == ["mrpc"]  # one file for both augmented rows
    written = len(files[0].read_text().splitlines())
    assert 24 < written <= 24 * 3  # the first 24 originals, each kept with up to 2 new versions
    results = tmp_path / "results" / "tiny"
    manifest = json.loads((results / "augmented" / (files[0].name + ".manifest.json")).read_text())
    assert manifest["counts"]["originals"] == 24 and manifest["counts"]["written"] == written
    for row, examples in (("emd-L2-aug", written), ("none-L2-aug", written), ("emd-L2", 24)):
        record = json.loads((results / "runs" / "mrpc" / row / "seed1" / "eval_results.json").read_text())
        assert record["train"]["joint"]["steps"] == -(-examples // 8), row  # batch 8, one epoch
        config = json.loads((results / "runs" / "mrpc" / row / "seed1" / "run_config.json").read_text())["config"]
        assert (config["augmented_train"] is not None) == row.endswith("aug")


def test_reusing_an_augmented_file_keeps_its_committed_manifest(tiny_bert, glue_dir, tmp_path):
    rows = [{"methods": ["none"], "label": "aug", "augment": {"num_augmented": 2}}]
    options = tiny_experiment(tiny_bert, glue_dir, tmp_path, tasks="mrpc", methods=[], seeds="1", rows=rows,
                              report=False)
    experiment(**options)
    (data,) = (tmp_path / "work" / "tiny" / "augmented").glob("*.jsonl")
    committed = tmp_path / "results" / "tiny" / "augmented" / (data.name + ".manifest.json")
    edited = {**json.loads(committed.read_text()), "time": "the first making's"}
    committed.write_text(json.dumps(edited))  # stands for a manifest committed from another sitting
    experiment(**{**options, "seeds": "2"})  # the file is in the work folder: reused, not made again
    assert json.loads(committed.read_text()) == edited
    data.unlink()  # a new machine: the file is made again, and its manifest replaces the record
    experiment(**{**options, "seeds": "3"})
    assert json.loads(committed.read_text())["time"] != "the first making's"


def test_general_rows_start_from_one_shared_general_student(tiny_bert, glue_dir, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"Sentence number {i} tells of films, plots and actors." for i in range(200)),
                      encoding="utf-8")
    general = {"corpus": [str(corpus)], "epochs": 1, "max_length": 32, "batch_size": 8}
    rows = [{"methods": ["emd", "skip"], "label": "general", "general": general, "seeds": [1]}]
    options = tiny_experiment(tiny_bert, glue_dir, tmp_path, tasks="mrpc", methods="emd", seeds="1", rows=rows,
                              report=False)
    experiment(**options)
    folders = sorted((tmp_path / "work" / "tiny" / "general").iterdir())
    assert [folder.name.split("-")[0] for folder in folders] == ["L2"]  # one general student for both rows
    record = tmp_path / "results" / "tiny" / "general" / folders[0].name / "general_distill_results.json"
    assert json.loads(record.read_text())["sequences"] > 0
    results = tmp_path / "results" / "tiny" / "runs" / "mrpc"
    for row, start in (("emd-L2-general", str(folders[0])), ("skip-L2-general", str(folders[0])),
                       ("emd-L2", "teacher")):
        config = json.loads((results / row / "seed1" / "run_config.json").read_text())["config"]
        assert config["student_init"] == start, row
    with pytest.raises(BertEmdError, match="leave out distill.student_init"):
        experiment(**{**options, "rows": [{**rows[0], "distill": {"student_init": "random"}}]})


def record_rte_run(results, teacher_model=None) -> None:
    """The records of one finished 2-layer RTE run: 50 steps in 100 s (and, when given, the experiment's teacher
    model, as its report writes it)."""
    if teacher_model is not None:
        results.mkdir(parents=True, exist_ok=True)
        (results / "experiment_config.json").write_text(json.dumps({"config": {"teacher_model": teacher_model}}))
    finished = results / "runs" / "rte" / "none-L2" / "seed1"
    finished.mkdir(parents=True)
    (finished / "eval_results.json").write_text(json.dumps({"task": "rte", "train": {
        "joint": {"runtime_s": 100.0, "steps": 50}}}))
    (finished / "run_config.json").write_text(json.dumps({"config": {"student_layers": 2}}))


def test_dry_run_estimates_the_time_left_from_recorded_step_rates(capsys, tiny_bert, glue_dir, tmp_path):
    results = tmp_path / "r" / "est"
    record_rte_run(results)  # one run recorded: 2.0 s per step
    (results / "teachers" / "rte").mkdir(parents=True)
    (results / "teachers" / "rte" / "wall_clock.json").write_text(json.dumps({"seconds": 30.0}))
    summary = experiment(name="est", tasks="rte", methods="none,emd", seeds="1,2", teacher_model=str(tiny_bert),
                                  data_dir=str(glue_dir), work_dir=str(tmp_path / "w"),
                                  results_dir=str(tmp_path / "r"), max_train_samples=64, dry_run=True,
                                  distill={"batch_size": 16, "epochs": 2.0})
    # three runs left (none seed 2, emd seeds 1 and 2), each 64 / 16 x 2 = 8 steps x 2.0 s; the teacher 30 s
    assert summary["done"] == 1 and summary["without_estimate"] == 0
    assert summary["estimated_seconds"] == pytest.approx(30.0 + 3 * 8 * 2.0)
    out = capsys.readouterr().out
    assert "8 steps x 2.00 s from 1 rte L2 run(s)" in out and "estimated time left" in out


def test_per_task_seeds_and_only_some_rows(capsys, tiny_bert, glue_dir, tmp_path):
    config = tmp_path / "table.yaml"
    config.write_text(f"name: cli\ntasks: [rte, mrpc]\nmethods: [none]\nseeds: [1, 2]\nteacher_model: {tiny_bert}\n"
                      "rows:\n  - {methods: [emd, skip], student_layers: 3, seeds: {mrpc: [3]}}\n"
                      f"data_dir: {glue_dir}\nwork_dir: {tmp_path / 'w'}\nresults_dir: {tmp_path / 'r'}\n")
    assert main(["experiment", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    # none-L2: 2 tasks x 2 seeds; emd-L3 and skip-L3: rte at the default seeds 1, 2 and mrpc at seed 3 only
    assert "2 task(s), 3 row(s), 10 student run(s)" in out
    assert "to do  mrpc   emd-L3               seed 3" in out and "mrpc   emd-L3               seed 1" not in out
    assert "to do  rte    skip-L3              seed 2" in out
    assert main(["experiment", "--config", str(config), "--dry-run", "--only", "emd-L3"]) == 0
    out = capsys.readouterr().out
    assert "3 row(s), 3 student run(s)" in out and "skip-L3" not in out and "none-L2" not in out
    assert main(["experiment", "--config", str(config), "--dry-run", "--only", "emd-L9"]) == 2
    assert "--only: no row emd-L9" in capsys.readouterr().err


def test_a_task_with_every_run_finished_needs_no_teacher(finished, monkeypatch):
    options, _, _ = finished
    # the records are all there, the models (work dir) are not: mrpc's teacher is neither trained nor estimated
    options = {**options, "tasks": "mrpc", "work_dir": options["work_dir"] + "-elsewhere"}
    monkeypatch.setattr(runner_module.Experiment, "ensure_teacher", lambda self, task: pytest.fail("teacher needed"))
    summary = experiment(**options, dry_run=True)
    assert summary["runs"] == 5 and summary["done"] == 5 and summary["estimated_seconds"] == 0.0
    monkeypatch.setattr(runner_module.Experiment, "finish", lambda self: {"report": True})
    assert experiment(**options) == {"report": True}


def test_dry_run_adds_a_general_stage_once_from_its_records(capsys, tiny_bert, glue_dir, tmp_path):
    results = tmp_path / "r" / "est"
    record_rte_run(results)  # 2.0 s per step
    (results / "general" / "L2-abc").mkdir(parents=True)  # a general student of another depth: 600 s
    (results / "general" / "L2-abc" / "wall_clock.json").write_text(json.dumps({"seconds": 600.0}))
    general = {"mapping": "skip", "corpus": [str(tmp_path / "c.txt")], "epochs": 1}
    summary = experiment(name="est", tasks="rte", methods="none", seeds="1", teacher_model=str(tiny_bert),
                         rows=[{"methods": ["emd", "skip"], "student_layers": 2, "label": "gen", "general": general}],
                         data_dir=str(glue_dir), work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"),
                         max_train_samples=64, dry_run=True, distill={"batch_size": 16, "epochs": 2.0})
    # two runs of 8 steps x 2.0 s; the shared general stage (depth 2 has a record: 600 s) counted once
    assert summary["estimated_seconds"] == pytest.approx(2 * 8 * 2.0 + 600.0)
    assert "the general stage (10 min from 1 record(s) of depth 2)" in capsys.readouterr().out


def test_a_new_experiment_is_estimated_from_the_other_experiments_records(capsys, tiny_bert, glue_dir, tmp_path):
    other = tmp_path / "r" / "old"
    record_rte_run(other, teacher_model=str(tiny_bert))  # 2.0 s per step at 2 layers
    (other / "teachers" / "rte").mkdir(parents=True)
    (other / "teachers" / "rte" / "wall_clock.json").write_text(json.dumps({"seconds": 30.0}))
    (other / "teachers" / "rte" / "run_config.json").write_text(json.dumps({"config": {"model": str(tiny_bert)}}))
    summary = experiment(name="new", tasks="rte", methods="emd", student_layers="3", seeds="1",
                         teacher_model=str(tiny_bert), data_dir=str(glue_dir), work_dir=str(tmp_path / "w"),
                         results_dir=str(tmp_path / "r"), max_train_samples=64, dry_run=True,
                         distill={"batch_size": 16, "epochs": 2.0})
    # 8 steps x 2.0 s x 3 / 2 (rte at another depth, scaled) + the other experiment's rte teacher
    assert summary["estimated_seconds"] == pytest.approx(8 * 3.0 + 30.0) and summary["without_estimate"] == 0
    out = capsys.readouterr().out
    assert "1 rte run(s), scaled by depth (records of other experiments)" in out
    assert "the recorded wall-clock of old's rte teacher" in out


def test_other_experiments_with_another_teacher_model_are_not_gone_by(capsys, tiny_bert, glue_dir, tmp_path):
    record_rte_run(tmp_path / "r" / "same", teacher_model=str(tiny_bert))  # 2.0 s per step
    slower = tmp_path / "r" / "twelve"  # the same task and depth under a bigger teacher: 9.0 s per step, 900 s teacher
    record_rte_run(slower)
    (slower / "teachers" / "rte").mkdir(parents=True)
    (slower / "teachers" / "rte" / "wall_clock.json").write_text(json.dumps({"seconds": 900.0}))
    (slower / "teachers" / "rte" / "run_config.json").write_text(json.dumps({"config": {"model": "mpnet-base"}}))
    record = json.loads((slower / "runs" / "rte" / "none-L2" / "seed1" / "eval_results.json").read_text())
    record["train"]["joint"]["runtime_s"] = 450.0
    (slower / "runs" / "rte" / "none-L2" / "seed1" / "eval_results.json").write_text(json.dumps(record))
    options = dict(name="new", tasks="rte", methods="emd", seeds="1", data_dir=str(glue_dir),
                   work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"), max_train_samples=64,
                   dry_run=True, distill={"batch_size": 16, "epochs": 2.0})
    summary = experiment(**options, teacher_model=str(tiny_bert))
    # the tiny teacher's experiment only: 8 steps x 2.0 s; its rte teacher has no record, so no teacher estimate
    assert summary["estimated_seconds"] == pytest.approx(8 * 2.0) and summary["without_estimate"] == 1
    assert "8 steps x 2.00 s from 1 rte L2 run(s)" in capsys.readouterr().out
    summary = experiment(**options, teacher_model="mpnet-base")
    # the records under the same teacher model (its run_config names it): 8 steps x 9.0 s and its 900 s teacher
    assert summary["estimated_seconds"] == pytest.approx(8 * 9.0 + 900.0) and summary["without_estimate"] == 0
    assert "the recorded wall-clock of twelve's rte teacher" in capsys.readouterr().out


def test_records_of_another_kind_of_device_and_the_training_slice_shape_the_estimate(capsys, tiny_bert, glue_dir,
                                                                                     tmp_path):
    results = tmp_path / "r" / "est"
    record_rte_run(results)  # 2.0 s per step on this (CPU) machine
    teacher = results / "teachers" / "rte"
    teacher.mkdir(parents=True)
    (teacher / "wall_clock.json").write_text(json.dumps({"seconds": 90.0}))  # 1 epoch over 192 examples
    (teacher / "run_config.json").write_text(json.dumps({"config": {"epochs": 1}}))
    (teacher / "eval_results.json").write_text(json.dumps({"train": {"examples": 192}}))
    options = dict(name="est", tasks="rte", seeds="1", teacher_model=str(tiny_bert), data_dir=str(glue_dir),
                   work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"), max_train_samples=64,
                   dry_run=True, teacher={"epochs": 2}, distill={"batch_size": 16, "epochs": 1.0})
    rows = [{"methods": ["emd"], "label": "aug", "augment": {"num_augmented": 3}}]
    summary = experiment(**options, methods="", rows=rows)
    # the augmented file will hold the first 64 originals x (1 + 3): 256 / 16 = 16 steps x 2.0 s; the teacher
    # 90 s x 64 / 192 examples x 2 / 1 epochs
    assert summary["estimated_seconds"] == pytest.approx(16 * 2.0 + 60.0) and summary["without_estimate"] == 0
    assert "(1 epochs, 192 examples), scaled" in capsys.readouterr().out
    run = results / "runs" / "rte" / "none-L2" / "seed1" / "run_config.json"
    for record in ({"accelerator": "NVIDIA H100 80GB HBM3"}, {"platform": "Linux-6.18.44-fc-v657-gpu-x86_64"}):
        run.write_text(json.dumps({"config": {"student_layers": 2}, **record}))  # a GPU's step rate, then an
        summary = experiment(**options, methods="emd")  # older record that names its GPU machine only
        assert summary["without_estimate"] == 1, record  # not gone by on a CPU
        assert "no finished run to go by" in capsys.readouterr().out


def test_a_run_resumed_over_sittings_is_rated_by_its_wall_clock_over_all_of_them(tmp_path):
    results = tmp_path / "results"
    record_rte_run(results)  # the Trainer's runtime: 100 s for 50 steps
    rates = recorded_rates(results)
    assert [rate.seconds_per_step for rate in rates] == [pytest.approx(2.0)]
    clock = results / "runs" / "rte" / "none-L2" / "seed1" / "wall_clock.json"
    clock.write_text(json.dumps({"seconds": 101.0}))  # one sitting: the Trainer's own runtime still counts
    assert recorded_rates(results)[0].seconds_per_step == pytest.approx(2.0)
    clock.write_text(json.dumps({"seconds": 400.0, "sittings": 2}))  # resumed: its runtime is the last sitting's
    assert recorded_rates(results)[0].seconds_per_step == pytest.approx(8.0)


def test_a_task_this_experiment_has_not_run_is_estimated_from_the_other_experiments(capsys, tiny_bert, glue_dir,
                                                                                      tmp_path):
    record_rte_run(tmp_path / "r" / "old", teacher_model=str(tiny_bert))  # rte in another experiment: 2.0 s/step
    own = tmp_path / "r" / "new" / "runs" / "mrpc" / "none-L2" / "seed1"  # this experiment ran mrpc only: 5.0 s
    own.mkdir(parents=True)
    (own / "eval_results.json").write_text(json.dumps({"task": "mrpc", "train": {
        "joint": {"runtime_s": 50.0, "steps": 10}}}))
    (own / "run_config.json").write_text(json.dumps({"config": {"student_layers": 2}}))
    experiment(name="new", tasks="rte,mrpc", methods="emd", seeds="1", teacher_model=str(tiny_bert),
               data_dir=str(glue_dir), work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"),
               max_train_samples=64, dry_run=True, distill={"batch_size": 16, "epochs": 2.0})
    out = capsys.readouterr().out
    assert "rte    emd-L2               seed 1  ~0 min (8 steps x 2.00 s from 1 rte L2 run(s) (records of other " \
           "experiments))" in out  # the same task elsewhere before another task here
    assert "8 steps x 5.00 s from 1 mrpc L2 run(s))" in out


def test_teacher_grid_trains_every_point_and_the_best_on_dev_teaches(capsys, tiny_bert, glue_dir, tmp_path):
    grid = {"learning_rate": [1.0e-2, 1.0e-5], "epochs": [1, 2]}
    options = tiny_experiment(tiny_bert, glue_dir, tmp_path, tasks="mrpc", methods="emd", seeds="1", rows=[],
                              teacher={"batch_size": 8}, teacher_grid=grid, report=False)
    # before anything is trained: the four grid points estimated from a recorded 1-epoch teacher, scaled by epochs
    (tmp_path / "results" / "tiny" / "teachers" / "mrpc").mkdir(parents=True)
    (tmp_path / "results" / "tiny" / "teachers" / "mrpc" / "wall_clock.json").write_text('{"seconds": 10.0}')
    (tmp_path / "results" / "tiny" / "teachers" / "mrpc" / "run_config.json").write_text('{"config": {"epochs": 1}}')
    summary = experiment(**options, dry_run=True)
    assert "4 grid point(s) from its recorded wall-clock (1 epochs), scaled" in capsys.readouterr().out
    assert summary["without_estimate"] == 1  # the student: no step rate recorded
    assert summary["estimated_seconds"] == pytest.approx(10.0 * (1 + 2 + 1 + 2))
    for name in ("wall_clock.json", "run_config.json"):
        (tmp_path / "results" / "tiny" / "teachers" / "mrpc" / name).unlink()

    assert experiment(**options, teachers_only=True) == {"runs": 1, "done": 0}
    records = tmp_path / "results" / "tiny" / "teachers" / "mrpc"
    names = sorted(path.name for path in (records / "grid").iterdir())
    assert names == ["learning_rate-0.01_epochs-1", "learning_rate-0.01_epochs-2", "learning_rate-1e-05_epochs-1",
                     "learning_rate-1e-05_epochs-2"]
    assert not (tmp_path / "work" / "tiny" / "mrpc").exists()  # --teachers-only: no student yet
    scores = {}
    for name in names:
        result = json.loads((records / "grid" / name / "eval_results.json").read_text())
        config = json.loads((records / "grid" / name / "run_config.json").read_text())["config"]
        assert f"learning_rate-{config['learning_rate']:g}_epochs-{config['epochs']:g}" == name
        assert config["batch_size"] == 8 and len(result["train"]["dev_per_epoch"]) == config["epochs"]
        scores[name] = (result["splits"]["dev"]["metrics"]["f1"] + result["splits"]["dev"]["metrics"]["accuracy"]) / 2
    best = max(names, key=lambda name: scores[name])  # sorted names = grid order here
    chosen = json.loads((records / "grid.json").read_text())
    assert chosen["chosen"] == best
    assert [point["score"] for point in chosen["points"]] == pytest.approx([scores[name] for name in names])
    assert (records / "eval_results.json").read_text() == (records / "grid" / best / "eval_results.json").read_text()
    assert "| chosen |" in (records / "grid.md").read_text()

    experiment(**options)  # the grid is reused, the student learns from the chosen teacher
    assert "reusing" in capsys.readouterr().out
    config = json.loads((tmp_path / "results" / "tiny" / "runs" / "mrpc" / "emd-L2" / "seed1" /
                         "run_config.json").read_text())["config"]
    assert config["teacher"] == str(tmp_path / "work" / "tiny" / "teachers" / "mrpc" / "grid" / best)
    plain = runner_module.Experiment(resolve_config(ExperimentConfig, None, {
        **options, "task_settings": {"mrpc": {"teacher_grid": None}}}))
    assert plain.teacher_dir("mrpc") == tmp_path / "work" / "tiny" / "teachers" / "mrpc"  # null: no grid for mrpc
    assert [name for name, _, _ in plain.teacher_points("mrpc")] == [""]
    table = experiment(**{**options, "report": True, "report_only": True})
    clocks = [json.loads((records / "grid" / name / "wall_clock.json").read_text())["seconds"] for name in names]
    assert table["compute_seconds"]["teachers"] == pytest.approx(sum(clocks))


def test_on_a_new_machine_only_the_chosen_grid_point_is_trained_again(capsys, tiny_bert, glue_dir, tmp_path,
                                                                      monkeypatch):
    grid = {"learning_rate": [1.0e-2, 1.0e-5]}
    options = tiny_experiment(tiny_bert, glue_dir, tmp_path, tasks="mrpc", methods="emd", seeds="1", rows=[],
                              teacher={"batch_size": 8, "epochs": 1}, teacher_grid=grid, report=False)
    experiment(**options, teachers_only=True)
    records = tmp_path / "results" / "tiny" / "teachers" / "mrpc"
    chosen = json.loads((records / "grid.json").read_text())["chosen"]
    before = {path: path.read_bytes() for path in (records / "grid").rglob("*.json")}

    shutil.rmtree(tmp_path / "work")  # a new machine: the committed records are there, the models are not
    summary = experiment(**options, dry_run=True)
    assert "1 grid point(s) from its recorded wall-clock" in capsys.readouterr().out  # the chosen point only
    assert summary["estimated_seconds"] == pytest.approx(json.loads((records / "wall_clock.json").read_text())
                                                         ["seconds"])
    trained = []
    real = runner_module.Experiment.train_teacher
    monkeypatch.setattr(runner_module.Experiment, "train_teacher",
                        lambda self, task, name, *rest: trained.append(name) or real(self, task, name, *rest))
    experiment(**options, teachers_only=True)
    assert trained == [chosen]
    out = capsys.readouterr().out
    assert "scored by its record" in out
    assert {path: path.read_bytes() for path in (records / "grid").rglob("*.json")} == before  # grid records kept
    work = tmp_path / "work" / "tiny" / "teachers" / "mrpc" / "grid"
    assert [path.name for path in work.iterdir()] == [chosen]
    again = (work / chosen / "eval_results.json").read_text()
    assert (records / "eval_results.json").read_text() == again  # the table's teacher row: the model that teaches
    assert (records / "retrained" / chosen / "1" / "eval_results.json").read_text() == again
    scores = json.loads(again)["splits"]["dev"]["metrics"]  # the grid's score: the mean of MRPC's F1 and accuracy
    assert f"teacher mrpc: trained again, dev score {50 * (scores['f1'] + scores['accuracy']):.2f} as its grid " \
        "record" in out
    # a second new machine: the chosen point is trained once more, and both re-trainings keep their records;
    # a re-training that does not reproduce the grid record (here: the record edited to score higher, so it stays
    # the chosen point) is said so
    shutil.rmtree(tmp_path / "work")
    trained.clear()
    grid_record = records / "grid" / chosen / "eval_results.json"
    edited = json.loads(grid_record.read_text())
    edited["splits"]["dev"]["metrics"]["f1"] = (1 + scores["f1"]) / 2
    grid_record.write_text(json.dumps(edited))
    experiment(**options, teachers_only=True)
    assert trained == [chosen]
    assert (f"WARNING: trained again, dev score {50 * (scores['f1'] + scores['accuracy']):.2f} against its grid "
            f"record's {50 * ((1 + scores['f1']) / 2 + scores['accuracy']):.2f}") in capsys.readouterr().out
    assert sorted(path.name for path in (records / "retrained" / chosen).iterdir()) == ["1", "2"]
    table = experiment(**{**options, "report": True, "report_only": True})
    clocks = [json.loads(path.read_text())["seconds"] for path in sorted(records.glob("grid/*/wall_clock.json"))
              + sorted(records.glob("retrained/*/*/wall_clock.json"))]
    assert len(clocks) == 4 and table["compute_seconds"]["teachers"] == pytest.approx(sum(clocks))

    # points whose settings changed are not scored by the old records: they are trained
    shutil.rmtree(tmp_path / "work")
    trained.clear()
    experiment(**{**options, "teacher": {"batch_size": 4, "epochs": 1}}, teachers_only=True)
    assert sorted(trained) == sorted(name for name, _ in runner_module.grid_points(grid))


def test_teachers_only_trains_the_teacher_of_a_finished_task(tiny_bert, glue_dir, tmp_path, capsys):
    """A table whose runs are all recorded, on a machine without its teacher: --teachers-only still makes the
    teacher (to compress from it, say), and trains no student."""
    from transformers import AutoModelForSequenceClassification

    options = tiny_experiment(tiny_bert, glue_dir, tmp_path, tasks="mrpc", methods="emd", seeds="1", report=False)
    experiment(**options)
    shutil.rmtree(tmp_path / "work" / "tiny" / "teachers")
    student = tmp_path / "work" / "tiny" / "mrpc"
    shutil.rmtree(student)
    assert experiment(**options, teachers_only=True) == {"runs": 2, "done": 2}
    teacher = tmp_path / "work" / "tiny" / "teachers" / "mrpc"
    assert AutoModelForSequenceClassification.from_pretrained(teacher).config.num_labels == 2
    assert not student.exists()
    assert f"teachers ready: mrpc in {teacher}; 0 student run(s) left" in capsys.readouterr().out


@pytest.mark.parametrize("grid", [None, {"learning_rate": [1.0e-2, 1.0e-5]}], ids=["one teacher", "grid"])
def test_reusing_a_teacher_model_keeps_its_committed_records(tiny_bert, glue_dir, tmp_path, grid):
    options = tiny_experiment(tiny_bert, glue_dir, tmp_path, tasks="mrpc", methods="emd", seeds="1", rows=[],
                              teacher={"batch_size": 8, "epochs": 1}, teacher_grid=grid, report=False)
    experiment(**options, teachers_only=True)
    records = tmp_path / "results" / "tiny" / "teachers" / "mrpc"
    committed = records / "run_config.json"
    edited = {**json.loads(committed.read_text()), "time": "the first training's"}
    committed.write_text(json.dumps(edited))  # stands for a record committed from another sitting
    experiment(**options, teachers_only=True)  # the model is in the work folder: reused, not trained
    assert json.loads(committed.read_text()) == edited
    shutil.rmtree(tmp_path / "work")  # a new machine: trained again, so the teacher row is the new model's
    experiment(**options, teachers_only=True)
    assert json.loads(committed.read_text())["time"] != "the first training's"


def test_a_grid_point_is_scored_by_another_experiments_teacher_with_its_settings(capsys, tiny_bert, glue_dir,
                                                                                  tmp_path, monkeypatch):
    teacher = {"batch_size": 8, "epochs": 1, "learning_rate": 1.0e-5}
    old = tiny_experiment(tiny_bert, glue_dir, tmp_path, name="old", tasks="mrpc", methods="emd", seeds="1",
                          rows=[], teacher=teacher, report=False)
    experiment(**old, teachers_only=True)
    old_record = tmp_path / "results" / "old" / "teachers" / "mrpc"
    options = tiny_experiment(tiny_bert, glue_dir, tmp_path, tasks="mrpc", methods="emd", seeds="1", rows=[],
                              teacher={"batch_size": 8, "epochs": 1}, report=False,
                              teacher_grid={"learning_rate": [1.0e-2, 1.0e-5]})
    trained = []
    real = runner_module.Experiment.train_teacher
    monkeypatch.setattr(runner_module.Experiment, "train_teacher",
                        lambda self, task, name, *rest: trained.append(name) or real(self, task, name, *rest))
    capsys.readouterr()
    experiment(**options, teachers_only=True)
    records = tmp_path / "results" / "tiny" / "teachers" / "mrpc"
    summary = json.loads((records / "grid.json").read_text())
    assert "learning_rate-1e-05" not in trained or summary["chosen"] == "learning_rate-1e-05"
    assert "learning_rate-0.01" in trained
    point = records / "grid" / "learning_rate-1e-05"
    assert (point / "eval_results.json").read_text() == (old_record / "eval_results.json").read_text()
    assert json.loads((point / "record_of.json").read_text())["record_of"] == str(old_record)
    assert "trained with the same settings" in capsys.readouterr().out
    old_score = json.loads((old_record / "eval_results.json").read_text())["splits"]["dev"]["metrics"]
    score = next(row["score"] for row in summary["points"] if row["name"] == "learning_rate-1e-05")
    assert score == pytest.approx((old_score["f1"] + old_score["accuracy"]) / 2)


@pytest.mark.parametrize("grid, message", [
    ({"learning_rate": 1e-4}, ".learning_rate must be a non-empty list"),
    ({"epochs": [3, 3]}, ".epochs lists a value twice"),
    ({"task": ["rte"]}, ".task is set by the experiment runner"),
    ({"learnin_rate": [1e-4]}, ": unknown `bert-emd finetune` option 'learnin_rate'"),
    ([1e-4], " must be a mapping"),
    ({"epochs": []}, ".epochs must be a non-empty list"),
])
def test_bad_teacher_grids(tiny_bert, glue_dir, tmp_path, grid, message):
    with pytest.raises(BertEmdError, match=re.escape("teacher_grid" + message)):
        experiment(**tiny_experiment(tiny_bert, glue_dir, tmp_path, teacher_grid=grid))
    with pytest.raises(BertEmdError, match=re.escape("task_settings.mrpc.teacher_grid" + message)):
        experiment(**tiny_experiment(tiny_bert, glue_dir, tmp_path, task_settings={"mrpc": {"teacher_grid": grid}}))
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "experiments").glob("*.yaml")),
                         ids=lambda path: path.name)
def test_the_shipped_experiment_configs_are_valid(path):
    from bert_emd.experiment.config import check_experiment

    config = resolve_config(ExperimentConfig, path, {})
    rows = check_experiment(config)
    assert config.name == path.stem and rows  # each names its results folder after its file


def test_theseus_rows_train_with_the_same_budget_as_the_distilled_rows(tiny_bert, glue_dir, tmp_path):
    rows = [{"methods": ["theseus"], "label": "p7", "distill": {"replacing_rate": 0.7}, "seeds": [1]}]
    options = tiny_experiment(tiny_bert, glue_dir, tmp_path, tasks="mrpc", methods="emd,theseus", seeds="1",
                              rows=rows, distill={"epochs": 1, "batch_size": 8, "beta": 0.01, "learning_rate": 3e-4})
    experiment(**options)
    results = tmp_path / "results" / "tiny"
    runs = {row: json.loads((results / "runs" / "mrpc" / row / "seed1" / "eval_results.json").read_text())
            for row in ("emd-L2", "theseus-L2", "theseus-L2-p7")}
    assert runs["theseus-L2"]["train"]["steps"] == runs["emd-L2"]["train"]["joint"]["steps"] == 3  # 24 / 8
    assert runs["theseus-L2-p7"]["schedule"]["rate"] == 0.7 and runs["theseus-L2"]["schedule"]["rate"] == 0.5
    config = json.loads((results / "runs" / "mrpc" / "theseus-L2" / "seed1" / "run_config.json").read_text())
    assert config["command"] == "theseus" and config["config"]["successor_layers"] == 2
    assert config["config"]["learning_rate"] == 3e-4 and "beta" not in config["config"]  # distill-only: left out
    table = json.loads((results / "table.json").read_text())
    theseus = next(row for row in table["rows"] if row["name"] == "theseus-L2")
    assert theseus["tasks"]["mrpc"]["score"]["mean"] == pytest.approx(statistics.fmean(
        runs["theseus-L2"]["splits"]["dev"]["metrics"].values()))


def test_attack_columns_attack_the_teacher_once_and_every_classification_student(tiny_bert, glue_dir, tmp_path,
                                                                                 tiny_vectors_file, monkeypatch):
    attack = {"max_examples": 4, "vectors": str(tiny_vectors_file), "sentence_encoder": str(tiny_bert),
              "min_sentence_similarity": 0.0, "max_length": 32}
    options = tiny_experiment(tiny_bert, glue_dir, tmp_path, methods="emd", seeds="1", rows=[], attack=attack)
    experiment(**options)
    results, work = tmp_path / "results" / "tiny", tmp_path / "work" / "tiny"
    teacher = json.loads((results / "teachers" / "mrpc" / "attack_results.json").read_text())
    record = json.loads((results / "runs" / "mrpc" / "emd-L2" / "seed1" / "attack_results.json").read_text())
    assert not (results / "runs" / "stsb" / "emd-L2" / "seed1" / "attack_results.json").exists()  # regression
    assert record["examples"] == teacher["examples"] and len(record["examples"]) == 4
    # the student's teacher figures are the teacher's own attack, read back rather than attacked again
    assert record["models"]["teacher"] | {"model": ""} == teacher["models"]["model"] | {"model": ""}
    assert (work / "mrpc" / "emd-L2" / "seed1" / "attack" / "adversarial_teacher.jsonl").read_text() == \
        (work / "attack" / "mrpc" / "teacher" / "adversarial_model.jsonl").read_text()
    assert set(record["transfer"]) == {"teacher_to_model", "model_to_teacher"}
    table = json.loads((results / "table.json").read_text())
    student = next(row for row in table["rows"] if row["name"] == "emd-L2")
    cell = student["tasks"]["mrpc"]["attack"]
    assert cell["accuracy_under_attack"]["mean"] == pytest.approx(record["models"]["model"]["accuracy_under_attack"])
    assert "attack" not in student["tasks"]["stsb"]
    assert table["rows"][0]["tasks"]["mrpc"]["attack"]["accuracy_under_attack"]["mean"] == pytest.approx(
        teacher["models"]["model"]["accuracy_under_attack"])
    header = (results / "table.md").read_text().splitlines()[0]
    assert "MRPC under attack" in header and "MRPC attack success" in header and "STS-B under attack" not in header

    def no_attack(*args, **kwargs):
        raise AssertionError("attacked again")

    monkeypatch.setattr(sys.modules["bert_emd.attack"], "attack", no_attack)
    experiment(**options)  # everything finished: nothing trained or attacked again


@pytest.mark.parametrize("attack, message", [
    ({"output": "x"}, "attack: output are set by the experiment runner"),
    ({"bogus": 1}, "attack: bogus not an option of `bert-emd attack`"),
    ([1], "attack must be a mapping"),
])
def test_bad_attack_settings(tiny_bert, glue_dir, tmp_path, attack, message):
    with pytest.raises(BertEmdError, match=re.escape(message)):
        experiment(**tiny_experiment(tiny_bert, glue_dir, tmp_path, attack=attack, dry_run=True))


def test_theseus_records_give_their_own_step_rate(tmp_path):
    """A theseus record (one training, its figures at the top; successor_layers) is rated as theseus, a distill
    record per stage: a theseus row is estimated from theseus runs where there are some."""
    runs = tmp_path / "runs" / "mrpc"
    records = {"theseus-L3": ("theseus", {"successor_layers": 3}, {"runtime_s": 300.0, "steps": 100}),
               "emd-L3": ("distill", {"student_layers": 3}, {"joint": {"runtime_s": 600.0, "steps": 100}})}
    for row, (command, config, train) in records.items():
        folder = runs / row / "seed1"
        folder.mkdir(parents=True)
        (folder / "eval_results.json").write_text(json.dumps({"task": "mrpc", "train": train}))
        (folder / "run_config.json").write_text(json.dumps({"command": command, "config": config,
                                                            "accelerator": "cpu"}))
    rates = {rate.method: rate for rate in recorded_rates(tmp_path)}
    assert rates["theseus"].layers == rates["distill"].layers == 3
    assert rates["theseus"].seconds_per_step == 3.0 and rates["distill"].seconds_per_step == 6.0


def test_an_attack_figure_the_attack_could_not_give_is_left_out_of_the_cell(tmp_path):
    """A model that got no attacked example right has no success rate: the cell keeps accuracy under attack only."""
    from bert_emd.experiment.table import attack_cell

    paths = []
    for seed, (under, success) in enumerate(((0.25, 0.5), (0.0, None)), start=1):
        path = tmp_path / f"seed{seed}" / "attack_results.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"models": {"model": {"accuracy_under_attack": under,
                                                         "attack_success_rate": success}}}))
        paths.append(path)
    cell = attack_cell(paths + [tmp_path / "seed3" / "attack_results.json"])  # seed 3: not attacked
    assert cell["attack"]["accuracy_under_attack"]["values"] == [0.25, 0.0]
    assert cell["attack"]["attack_success_rate"]["values"] == [0.5]
    assert attack_cell([paths[1]])["attack"].keys() == {"accuracy_under_attack"}
    assert attack_cell([tmp_path / "none.json"]) == {}


def test_a_cell_of_a_constant_model_is_marked(finished):
    _, table, results = finished
    text = (results / "table.md").read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    marked = False
    for row in table["rows"][1:]:
        for task, cell in row["tasks"].items():
            records = [json.loads(path.read_text()) for path in
                       sorted((results / "runs" / task / row["name"]).glob("seed*/eval_results.json"))]
            constant = sum("constant_prediction" in record["splits"]["dev"] for record in records)
            assert cell["constant_seeds"] == constant
            marked |= constant > 0
        cells = rows[row["name"]].split(" | ")
        flagged = any(cell["constant_seeds"] for cell in row["tasks"].values())
        assert any(part.endswith("*") for part in cells) == flagged
    assert ("\\* At least one seed's model answered one class" in text) == marked


def test_the_constant_mark_and_its_legend(finished):
    import copy

    from bert_emd.experiment.table import format_table

    _, table, _ = finished
    plain = copy.deepcopy(table)
    for row in plain["rows"]:
        for cell in row["tasks"].values():
            cell["constant_seeds"] = 0
    text = format_table(plain)
    assert "*" not in text.replace("\\*", "") and "answered one class" not in text
    plain["rows"][1]["tasks"]["mrpc"]["constant_seeds"] = 1
    text = format_table(plain)
    line = next(line for line in text.splitlines() if line.startswith(f"| {plain['rows'][1]['name']} |"))
    assert [part.endswith("*") for part in line.strip("| ").split(" | ")[2:4]] == [True, True]  # MRPC F1, accuracy
    assert "\\* At least one seed's model answered one class" in text
