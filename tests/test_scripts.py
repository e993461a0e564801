"""Every benchmark and results script runs, on tiny inputs or on the committed records, and its output is read
back: an API change that breaks one fails here. The scripts that rebuild a committed report from committed
records run on a copy of results and must give exactly the committed report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def run_script(script: Path, *arguments: str, cwd: Path = REPO, timeout: int = 600) -> str:
    result = subprocess.run([sys.executable, str(script), *map(str, arguments)], capture_output=True, text=True,
                            cwd=cwd, env=ENV, timeout=timeout)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    return result.stdout


def every_script() -> list[Path]:
    return sorted([*REPO.glob("benchmarks/*.py"), *RESULTS.rglob("*.py")])


@pytest.fixture(scope="module")
def results_copy(tmp_path_factory) -> Path:
    """results copied, so that a script writing its report beside itself leaves the repository alone."""
    copy = tmp_path_factory.mktemp("results") / "results"
    shutil.copytree(RESULTS, copy)
    return copy


# scripts that rebuild a committed report from committed records only: (script, arguments, files it writes)
REBUILT = [
    ("seed_comparisons.py", [], ["seed_comparisons.json"]),
    ("summary.py", [], ["summary.json", "summary.md"]),
    ("emd_weights.py", [], ["emd_weights.md"]),
    ("glue_table/with_without.py", [], ["glue_table/with_without.md"]),
    ("recipe_table/compare.py", [], ["recipe_table/compare.json", "recipe_table/compare.md"]),
    ("compress/summary.py", [], ["compress/summary.md", "compress/table.md"]),
    ("conll2003/summary.py", [], ["conll2003/table.md"]),
    ("attack/summary.py", [], ["attack/table.md"]),
    ("recipe_table/theseus_grid.py", [], ["recipe_table/theseus_grid.md"]),
]
COVERED = {name for name, _, _ in REBUILT} | {"glue_table/loss_terms.py", "glue_table/augment_label_shift.py",
                                              "recipe_table/label_counts.py", "recipe_table/layer_stage_beta.py"}


def test_every_script_has_a_smoke_test():
    names = {str(path.relative_to(RESULTS)) if path.is_relative_to(RESULTS) else f"benchmarks/{path.name}"
             for path in every_script()}
    assert names == COVERED | {"benchmarks/emd_overhead.py", "benchmarks/augment_rate.py",
                               "benchmarks/onnx_int8_schemes.py"}


@pytest.mark.parametrize("script, arguments, written", REBUILT, ids=[name for name, _, _ in REBUILT])
def test_a_results_script_rebuilds_its_committed_report(results_copy, script, arguments, written):
    for name in written:
        (results_copy / name).unlink()
    run_script(results_copy / script, *arguments)
    for name in written:
        assert (results_copy / name).read_text() == (RESULTS / name).read_text(), name


def test_loss_terms_reads_tensorboard_logs(results_copy, tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    spec = {}
    exec(compile((results_copy / "glue_table/loss_terms.py").read_text(), "loss_terms", "exec"), spec)
    for number, run in enumerate(spec["RUNS"]):
        writer = SummaryWriter(tmp_path / "runs" / "glue_table" / run / "runs" / "first")
        for step in (50, 100, 120):
            writer.add_scalar("train/loss_prediction", number + step / 1000, step)
            writer.add_scalar("train/loss_hidden_emd", 2.0 * step, step)
        writer.close()
    run_script(results_copy / "glue_table/loss_terms.py", cwd=tmp_path)
    written = json.loads((results_copy / "glue_table/loss_terms.json").read_text())
    first = written[spec["RUNS"][1]]
    assert first["last_logged_step"] == 120
    assert first["loss_prediction"] == {"50": 1.05, "100": 1.1, "120": 1.12}
    assert first["loss_hidden_emd"]["100"] == 200.0


def test_augment_label_shift(tiny_teacher, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = {True: ("a fine film", "1"), False: ("a dull film", "0")}  # originals positive, new rows negative
    rows = [{"text_a": texts[i % 2 == 0][0], "label": texts[i % 2 == 0][1], "source": i // 2, "original": i % 2 == 0}
            for i in range(12)]
    augmented = tmp_path / "augmented.jsonl"
    augmented.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "shift.json"
    run_script(RESULTS / "glue_table/augment_label_shift.py", "--task", "sst2", "--augmented", augmented,
               "--teacher", tiny_teacher, "--sample", 4, "--output", output)
    report = json.loads(output.read_text())
    model = AutoModelForSequenceClassification.from_pretrained(tiny_teacher).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    for part, original in (("originals", True), ("augmented", False)):
        with torch.no_grad():
            says_positive = model(**tokenizer(texts[original][0], return_tensors="pt")).logits.argmax(-1).item()
        assert report[part] == {"teacher_predicts_positive": float(says_positive),
                                "copied_label_positive": 1.0 if original else 0.0, "examples": 4}


def test_label_counts(tiny_teacher, glue_dir):
    printed = run_script(RESULTS / "recipe_table/label_counts.py", "--task", "sst2", "--data-dir", glue_dir,
                         "--max-length", 32, f"tiny={tiny_teacher}")
    from collections import Counter

    labels = Counter(line.rsplit("\t", 1)[1] for line in (glue_dir / "SST-2/dev.tsv").read_text().splitlines()[1:])
    assert f"dev set: {dict(sorted(labels.items()))} ({sum(labels.values())} examples)" in printed
    counts = printed.splitlines()[-1]
    assert counts.startswith("tiny: {") and "accuracy" in counts


def test_layer_stage_beta_control_run_moves_the_same_way(results_copy, tiny_teacher, glue_dir, tmp_path):
    import bert_emd

    record = tmp_path / "record"
    bert_emd.distill(teacher=str(tiny_teacher), task="sst2", data_dir=str(glue_dir), student_layers=2,
                     schedule="two-stage", intermediate_epochs=1, prediction_epochs=1, max_train_samples=16,
                     max_eval_samples=8, batch_size=4, max_length=32, beta=0.01, output=str(record))
    run_script(results_copy / "recipe_table/layer_stage_beta.py", "--record", record, "--work", tmp_path / "work",
               "--steps", 2)
    report = json.loads((results_copy / "recipe_table/layer_stage_beta.json").read_text())
    assert report["steps"] == 2 and set(report["runs"]) == {"recorded_beta", "recorded_beta_again", "beta_0.1",
                                                            "beta_1"}
    control = report["parameter_change_against_recorded_beta"]["recorded_beta_again"]["all"]
    assert control["relative_difference"] < 1e-6 and control["cosine"] > 0.999999  # a deterministic re-run
    assert all(run["layer_stage"]["steps"] == 2 for run in report["runs"].values())


def test_emd_overhead_benchmark(tiny_bert, tmp_path):
    run_script(REPO / "benchmarks/emd_overhead.py", "--teacher", tiny_bert, "--lengths", 16, "--steps", 1,
               "--warmup", 0, "--batch-size", 2, "--threads", 1, "--output", tmp_path, "--no-memory")
    record = json.loads((tmp_path / "emd_overhead.json").read_text())
    text = json.dumps(record)
    for row in ("none", "skip-maps", "emd-maps", "skip-factorised", "emd-factorised"):
        assert f'"{row}"' in text
    assert "emd_factorised_over_none" in text


def test_augment_rate_benchmark(glue_dir, tmp_path):
    run_script(REPO / "benchmarks/augment_rate.py", "--data-dir", glue_dir, "--glove-pairs", 5, "--mlm-pairs", 3,
               "--threads", 1, "--output", tmp_path)
    record = json.loads((tmp_path / "augment_rate.json").read_text())
    assert record["runs"]["glove"]["originals"] == 5 and record["runs"]["tiny_mlm"]["originals"] == 3
    assert record["runs"]["tiny_mlm"]["candidate_sources"]["words_from_mlm"] > 0
    assert record["runs"]["glove"]["written"] > 5


def test_onnx_int8_schemes_benchmark(tiny_teacher, glue_dir, tmp_path):
    run_script(REPO / "benchmarks/onnx_int8_schemes.py", "--task", "sst2", "--data-dir", glue_dir, "--models",
               tiny_teacher, "--batch-size", 2, "--length", 16, "--threads", 1, "--rounds", 1, "--output", tmp_path)
    record = json.loads((tmp_path / "results.json").read_text())
    (entry,) = record["results"]
    assert entry["examples"] == 872 and set(entry["schemes"]) == {"fp32", "int8 per tensor", "int8 per channel"}
    fp32, per_tensor, per_channel = (entry["schemes"][name] for name in entry["schemes"])
    assert fp32["agreement_with_fp32"] == 1.0 and fp32["max_abs_logit_difference"] == 0.0
    assert per_tensor["size_mb"] < fp32["size_mb"] and per_tensor["size_mb"] <= per_channel["size_mb"]
    assert entry["timing"]["fp32"]["speedup_over_fp32"] == 1.0 and record["settings"]["rounds"] == 1
    assert (tmp_path / "table.md").read_text().count(f"| {Path(tiny_teacher).name} |") == 3  # one row per graph


def test_the_robustness_table_marks_a_model_that_answers_one_class(tmp_path):
    copy = tmp_path / "attack"
    shutil.copytree(RESULTS / "attack", copy)
    record = copy / "mrpc" / "L3-emd" / "eval_results.json"
    entry = json.loads(record.read_text())
    assert not entry["splits"]["dev"].get("constant_prediction")
    entry["splits"]["dev"]["constant_prediction"] = {"label": 1}
    record.write_text(json.dumps(entry))
    run_script(copy / "summary.py")
    table = (copy / "table.md").read_text()
    mrpc = table[table.index("### MRPC"):table.index("### RTE")]
    assert "| BERT-EMD, 3 layers * |" in mrpc and "| skip mapping, 3 layers |" in mrpc
    assert "answers one class for every dev example" in mrpc
    sst2 = table[table.index("### SST-2"):table.index("### MRPC")]
    assert " * |" not in sst2 and "answers one class" not in sst2


def test_the_robustness_table_derives_predicted_positives_from_f1_and_accuracy():
    import importlib.util

    spec = importlib.util.spec_from_file_location("attack_summary", RESULTS / "attack" / "summary.py")
    summary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summary)
    # a hand confusion matrix: 10 examples, 6 positive; the model labels 7 positive, 5 of them correctly
    tp, fp, fn, tn = 5, 2, 1, 2
    metrics = {"f1": 2 * tp / (2 * tp + fp + fn), "accuracy": (tp + tn) / 10}
    assert summary.predicted_positives(metrics, examples=10, positives=6) == tp + fp
