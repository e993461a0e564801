"""`bert-emd compress`: the shape chosen from a latency table, the whole pipeline on a tiny teacher with every
artefact read back, resume after an interruption between stages, the dry run, and bad input."""

from __future__ import annotations

import json
import math
import re

import pytest

import bert_emd
from bert_emd.compress import recipe
from bert_emd.compress.shapes import choose_shape, latency_table
from bert_emd.errors import BertEmdError
from tests.test_bad_input import assert_one_line_error, run_cli


def row(name: str, layers: int, p50: float, base: float = 100.0) -> dict:
    return {"name": name, "layers": layers, "parameters": layers, "backend": "onnx-int8", "p50_ms": p50,
            "p90_ms": p50, "speedup": base / p50, "speedup_same_backend": base / p50}


STUB = [row("teacher", 6, 100.0), row("L1", 1, 20.0), row("L2", 2, 32.0), row("L3", 3, 45.0), row("L4", 4, 60.0),
        row("L5", 5, 80.0)]


def test_the_deepest_candidate_that_meets_the_target_is_chosen():
    assert choose_shape(STUB, target_speedup=2.0)["layers"] == 3  # 100 / 45 = 2.22; L4 gives 1.67
    assert choose_shape(STUB, target_speedup=1.25)["layers"] == 5  # exactly 100 / 80
    assert choose_shape(STUB, target_speedup=5.0)["layers"] == 1
    assert choose_shape(STUB, target_latency_ms=59.0)["layers"] == 3
    assert choose_shape(STUB, target_latency_ms=60.0)["layers"] == 4
    with pytest.raises(BertEmdError, match=r"no student depth meets --target-speedup 6 on onnx-int8: the fastest "
                                           r"candidate, 1 layer\(s\), measured 5.00x \(20.0 ms\)"):
        choose_shape(STUB, target_speedup=6.0)
    with pytest.raises(BertEmdError, match="--target-latency-ms 10"):
        choose_shape(STUB, target_latency_ms=10.0)


def test_the_latency_table_from_a_benchmark_report():
    def entry(layers, fp32, int8):
        return {"layers": layers, "parameters": 10 * layers, "backends": {
            "torch-fp32": {"settings": {"b": {"p50_ms": fp32, "p90_ms": fp32 + 1}}},
            "ort-int8": {"settings": {"b": {"p50_ms": int8, "p90_ms": int8 + 1}}}}}

    report = {"models": [entry(6, 600.0, 300.0), entry(2, 200.0, 100.0)]}
    against_fp32 = latency_table(report, "onnx-int8", "teacher-torch-fp32")
    assert [r["speedup"] for r in against_fp32] == [2.0, 6.0]  # 600 / 300, 600 / 100
    assert [r["speedup_same_backend"] for r in against_fp32] == [1.0, 3.0]
    same = latency_table(report, "onnx-int8", "teacher-same-backend")
    assert [r["speedup"] for r in same] == [1.0, 3.0]
    assert same[1]["name"] == "L2" and same[1]["torch_fp32_p50_ms"] == 200.0


SETTINGS = dict(task="sst2", max_train_samples=48, max_eval_samples=32, latency_repeats=2, eval_steps=4,
                num_augmented=1, batch_size=16, threads=1)


@pytest.fixture(scope="module")
def compressed(tiny_teacher, glue_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("compress") / "out"
    # a tiny model is faster in PyTorch than in ONNX Runtime int8: the speedup is against the teacher on the
    # same backend here
    report = bert_emd.compress(teacher=str(tiny_teacher), data_dir=str(glue_dir), output=str(output),
                               backend="onnx-int8", baseline="teacher-same-backend", target_speedup=1.1,
                               accuracy_budget=5.0, **SETTINGS)
    return output, report


def test_the_pipeline_writes_a_student_an_onnx_int8_copy_and_a_report(compressed):
    output, report = compressed
    assert report["chosen_layers"] == choose_shape(report["candidates"], target_speedup=1.1)["layers"]
    student = json.loads((output / "student" / "eval_results.json").read_text())
    assert student["splits"]["dev"]["metrics"] == report["scores"]["student"]
    assert student["splits"]["dev"]["teacher_metrics"] == report["scores"]["teacher"]
    assert report["loyalty"] == student["splits"]["dev"]["loyalty"]
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(output / "student").num_hidden_layers == report["chosen_layers"]
    assert (output / "onnx" / "model_int8.onnx").is_file() and report["deployed"].endswith("model_int8.onnx")
    assert 0.0 <= report["deployed_agreement_with_student"] <= 1.0
    assert report["deployed_int8_weight_scales"] == "per channel"  # export's default, as its report records
    assert set(report["speed"]["student"]["backends"]) == {"torch-fp32", "onnx-int8"}
    speed = report["speed"]
    assert report["speed"]["speedup_vs_baseline"] == pytest.approx(
        speed["teacher"]["backends"]["onnx-int8"]["p50_ms"] / speed["student"]["backends"]["onnx-int8"]["p50_ms"])
    assert report["accuracy_budget"]["met"] == (report["accuracy_budget"]["lost_points"] <= 5.0)
    assert json.loads((output / "report.json").read_text()) == json.loads(json.dumps(report, default=str))
    written = json.loads((output / "augmented" / "train.jsonl.manifest.json").read_text())["counts"]["written"]
    config = json.loads((output / "student" / "run_config.json").read_text())["config"]
    assert config["max_train_samples"] is None and config["augmented_train"].endswith("train.jsonl")
    assert student["train"]["joint"]["steps"] == -(-written // 16)  # the whole augmented file, batch 16
    markdown = (output / "report.md").read_text()
    assert f"{report['chosen_layers']}-layer student (emd)" in markdown
    assert "deployed on onnx-int8 (per channel weight scales)." in markdown
    assert report["training"] == {"steps": student["train"]["joint"]["steps"],
                                  "best_step": student["train"]["joint"]["best_step"]}
    assert (f"Training: {report['training']['steps']:,} steps, 1 epoch over the augmented training data; the kept "
            f"student is step {report['training']['best_step']:,}'s (best dev score).") in markdown
    for row in report["candidates"]:  # the candidate table, the chosen shape marked (which one depends on timing)
        chosen = " (chosen)" if row["name"] == f"L{report['chosen_layers']}" else ""
        assert f"| {row['name']}{chosen} | {row['parameters']:,} |" in markdown


def test_the_html_report_is_self_contained(compressed):
    output, report = compressed
    page = (output / "report.html").read_text()
    images = re.findall(r'<img alt="(\w+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert {name for name, _ in images} >= {"score_latency", "layer_mapping", "dev_curve"}
    import base64

    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for _, data in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network


def test_the_model_card_carries_the_dev_metrics(compressed):
    from huggingface_hub import ModelCard

    output, report = compressed
    card = ModelCard.load(output / "student" / "README.md")
    results = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert results == {name: round(value, 4) for name, value in report["scores"]["student"].items()}
    assert card.data.eval_results[0].dataset_split == "dev" and "bert-emd" in card.data.tags


def test_records_without_weights_are_copied(compressed, tmp_path):
    from bert_emd.compress.run import copy_records

    output, report = compressed
    copied = {str(path.relative_to(tmp_path / "records")) for path in copy_records(output, tmp_path / "records")}
    assert {"report.json", "report.md", "report.html", "compress_state.json", "student/eval_results.json",
            "student/README.md", "student/distill_state.json", "onnx/export_report.json"} <= copied
    assert not [name for name in copied if name.endswith((".safetensors", ".onnx", ".jsonl", ".bin", ".pt"))]
    assert json.loads((tmp_path / "records" / "report.json").read_text()) == json.loads(
        (output / "report.json").read_text())


def test_a_second_call_reuses_every_stage(compressed, tiny_teacher, glue_dir, monkeypatch, capsys):
    output, first = compressed

    def refuse(*args, **kwargs):
        raise AssertionError("a finished stage was run again")

    import sys

    monkeypatch.setattr(sys.modules["bert_emd.distill"], "distill", refuse)  # what compress calls
    monkeypatch.setattr(sys.modules["bert_emd.augment"], "augment", refuse)
    capsys.readouterr()
    again = bert_emd.compress(teacher=str(tiny_teacher), data_dir=str(glue_dir), output=str(output),
                              backend="onnx-int8", baseline="teacher-same-backend", target_speedup=1.1,
                              accuracy_budget=5.0, **SETTINGS)
    printed = capsys.readouterr().out
    assert printed.count("(finished before: reused)") == 4  # shape, augment, distill, deploy
    assert again["scores"] == first["scores"] and again["candidates"] == first["candidates"]


def test_an_interrupted_run_picks_up_at_its_stage(tiny_teacher, glue_dir, tmp_path, monkeypatch, capsys):
    from bert_emd.compress import deploy as deploy_module

    output = tmp_path / "out"
    arguments = ["compress", "--teacher", str(tiny_teacher), "--data-dir", str(glue_dir), "--task", "sst2",
                 "--max-train-samples", "32", "--max-eval-samples", "16", "--latency-repeats", "1", "--eval-steps",
                 "4", "--augment", "off", "--backend", "torch-fp32", "--target-speedup", "1.05", "--threads", "1",
                 "--output", str(output)]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy_module, "deploy", interrupted)
    code, _ = run_cli(capsys, *arguments)
    assert code == 130 and (output / "student" / "model.safetensors").is_file()
    monkeypatch.undo()
    distilled = (output / "student" / "model.safetensors").stat().st_mtime_ns
    code, err = run_cli(capsys, *arguments)
    assert code == 0, err[-2000:]
    assert (output / "student" / "model.safetensors").stat().st_mtime_ns == distilled  # not trained again
    assert (output / "report.json").is_file() and json.loads((output / "report.json").read_text())["stages"]


def test_a_dry_run_trains_nothing(tiny_teacher, glue_dir, tmp_path, capsys):
    output = tmp_path / "out"
    plan = bert_emd.compress(model=str(tiny_teacher), data_dir=str(glue_dir), output=str(output), backend="torch-fp32",
                             target_speedup=1.05, dry_run=True, **SETTINGS)
    assert plan["dry_run"] and plan["stages"] == ["teacher", "shape", "augment", "train-emd", "deploy-emd", "report"]
    assert plan["estimated_seconds"]["teacher"] > 0 and plan["estimated_seconds"]["train-emd"] > 0
    assert 2 < plan["timed_lengths"]["students"] < 64 and 2 < plan["timed_lengths"]["teacher"] < 128  # SST-2 is short
    assert not (output / "teacher").exists() and not (output / "student").exists()
    assert "plan:" in capsys.readouterr().out
    every = bert_emd.compress(teacher=str(tiny_teacher), data_dir=str(glue_dir), output=str(tmp_path / "auto"),
                              backend="torch-fp32", target_latency_ms=1e6, method="auto", dry_run=True, **SETTINGS)
    assert every["chosen"]["hybrid"]["name"] == "hybrid-2x"  # the lowest ratio: every candidate meets this target
    assert all(every["estimated_seconds"][f"train-{method}"] > 0 for method in ("emd", "theseus", "hybrid",
                                                                                "early-exit"))
    assert not [path.name for path in (tmp_path / "auto").iterdir() if path.name.startswith("student")]


def test_steps_are_timed_at_the_length_the_training_batches_are_padded_to(tiny_teacher, tmp_path):
    """The collator pads each batch to its longest example: the dry run times a step at the mean over shuffled
    batches of each batch's longest tokenised example, at most max_length, not at max_length."""
    from transformers import AutoTokenizer

    from bert_emd.compress.estimate import padded_length
    from bert_emd.data.loading import DataOptions, resolve_task

    sentences = [" ".join(["word"] * words) for words in (1, 2, 3, 5, 8, 13, 21, 34)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": text, "label": str(i % 2)}) + "\n" for i, text in enumerate(sentences)))
    options = DataOptions(train_file=str(path))
    task = resolve_task(options)
    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    lengths = [len(tokenizer(text)["input_ids"]) for text in sentences]
    assert padded_length(task, options, tokenizer, batch_size=len(sentences), max_length=128) == max(lengths)
    assert padded_length(task, options, tokenizer, batch_size=1, max_length=128) == math.ceil(sum(lengths) / 8)
    assert padded_length(task, options, tokenizer, batch_size=1, max_length=10) == \
        math.ceil(sum(min(length, 10) for length in lengths) / 8)
    assert padded_length(task, options, tokenizer, batch_size=4, max_length=128) > \
        padded_length(task, options, tokenizer, batch_size=1, max_length=128)


def test_a_dry_run_says_which_methods_are_left_out(tiny_teacher, glue_dir, tmp_path, capsys, monkeypatch):
    """auto with a target the hybrid ratios miss (a stubbed measurement of the 4-layer teacher's candidates): the
    plan names hybrid's stages as left out and estimates only the others."""
    from bert_emd.compress import run as run_module

    measured = [row("teacher", 4, 100.0, base=100.0), row("L1", 1, 25.0), row("L2", 2, 45.0), row("L3", 3, 70.0),
                *({**row(f"hybrid-{r}x", 4, p50), "hybrid_ratio": float(r)} for r, p50 in ((2, 90.0), (4, 80.0)))]
    monkeypatch.setattr(run_module, "_measure_shapes", lambda *args, **kwargs: measured)
    plan = bert_emd.compress(teacher=str(tiny_teacher), data_dir=str(glue_dir), output=str(tmp_path / "out"),
                             backend="torch-fp32", target_speedup=2.0, method="auto", dry_run=True, **SETTINGS)
    assert set(plan["chosen"]) == {"emd", "theseus", "early-exit"} and plan["chosen"]["emd"]["name"] == "L2"
    assert "train-hybrid" not in plan["estimated_seconds"]
    out = capsys.readouterr().out
    assert re.search(r"train-hybrid +left out: no shape of hybrid meets the target", out)
    assert re.search(r"train-emd +about ", out)


@pytest.mark.parametrize("extra, message", [
    (["--target-speedup", "1"], "--target-speedup must be > 1 (got 1.0)"),
    (["--target-speedup", "2", "--target-latency-ms", "5"], "give the speed target: --target-speedup S"),
    ([], "give the speed target"),
    (["--target-speedup", "2", "--accuracy-budget", "-1"], "--accuracy-budget must be >= 0"),
    (["--target-speedup", "2", "--model", "minilm-l6"], "give --teacher (a fine-tuned model) or --model"),
    (["--target-speedup", "2", "--length-deploy", "1000"], "--length-deploy 1000 is more than"),
    (["--target-speedup", "2", "--backend", "gpu"], "invalid choice: 'gpu'"),
])
def test_bad_compress_options(capsys, tiny_teacher, glue_dir, tmp_path, extra, message):
    output = tmp_path / "out"
    try:
        code, err = run_cli(capsys, "compress", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir",
                            str(glue_dir), "--output", str(output), *extra)
    except SystemExit as stop:  # argparse's own
        code, err = stop.code, capsys.readouterr().err.strip()
    assert_one_line_error(code, err, message)
    assert not output.exists()


def test_a_teacher_of_another_task_is_refused(capsys, tiny_teacher, glue_dir, tmp_path):
    import shutil

    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_teacher, teacher)
    (teacher / "run_config.json").write_text(json.dumps({"command": "finetune", "task": "sst2"}))
    code, err = run_cli(capsys, "compress", "--teacher", str(teacher), "--task", "mrpc", "--data-dir", str(glue_dir),
                        "--target-speedup", "2", "--output", str(tmp_path / "out"))
    assert_one_line_error(code, err, "was fine-tuned for task sst2, not mrpc")


def test_a_backend_without_its_extra_names_the_extra(capsys, tiny_teacher, glue_dir, tmp_path, monkeypatch):
    import importlib

    real = importlib.import_module

    def without_onnxruntime(name, *args):
        if name == "onnxruntime":
            raise ImportError(name="onnxruntime")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_onnxruntime)
    code, err = run_cli(capsys, "compress", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir",
                        str(glue_dir), "--target-speedup", "2", "--backend", "onnx-int8", "--output",
                        str(tmp_path / "out"))
    assert_one_line_error(code, err, "pip install 'bert-emd[deploy]'")


def test_auto_trains_emd_theseus_and_hybrid_and_keeps_the_best(tiny_teacher, glue_dir, tmp_path, capsys):
    output = tmp_path / "out"
    report = bert_emd.compress(teacher=str(tiny_teacher), data_dir=str(glue_dir), output=str(output),
                               backend="torch-fp32", target_speedup=1.05, method="auto",
                               **{**SETTINGS, "num_augmented": 1})
    methods = {entry["method"]: entry for entry in report["methods"]}
    left_out = {entry["method"] for entry in report["methods_left_out"]}
    assert {"emd", "theseus"} <= set(methods) and "early-exit" in set(methods) | left_out  # early exit tried too
    assert "hybrid" in set(methods) | left_out
    hybrid_rows = [row for row in report["candidates"] if "hybrid_ratio" in row]
    assert [row["name"] for row in hybrid_rows] == ["hybrid-2x", "hybrid-4x", "hybrid-8x", "hybrid-16x"]
    assert all(row["layers"] == 4 for row in hybrid_rows)  # the teacher's depth: speed from the factorisation
    if "hybrid" in methods:  # the lowest measured ratio that met the target (tiny layers are rarely faster factorised)
        assert methods["hybrid"]["shape"] == choose_shape(report["candidates"], target_speedup=1.05,
                                                          method="hybrid")["name"]
        config = json.loads((output / "student-hybrid" / "run_config.json").read_text())["config"]
        emd_config = json.loads((output / "student-emd" / "run_config.json").read_text())["config"]
        assert config["augmented_train"] == emd_config["augmented_train"]
        assert config["epochs"] * 3 == pytest.approx(emd_config["epochs"])  # the same epochs over its three steps
    else:
        why = next(entry["why"] for entry in report["methods_left_out"] if entry["method"] == "hybrid")
        assert "no hybrid ratio (2x to 16x) meets --target-speedup 1.05" in why
    assert methods["theseus"]["layers"] in (1, 2)  # a depth that divides the teacher's 4 layers
    assert methods["emd"]["layers"] == choose_shape(report["candidates"], target_speedup=1.05)["layers"]
    kept = [entry for entry in report["methods"] if entry["kept"]]
    assert len(kept) == 1 and kept[0]["method"] == report["method"]
    meeting = [entry for entry in report["methods"] if entry["meets_target"]] or report["methods"]
    assert kept[0]["deployed_mean"] == max(entry["deployed_mean"] for entry in meeting)
    for method in ("emd", "theseus"):
        record = json.loads((output / f"student-{method}" / "run_config.json").read_text())
        assert record["command"] == ("theseus" if method == "theseus" else "distill")
    theseus_config = json.loads((output / "student-theseus" / "run_config.json").read_text())["config"]
    emd_config = json.loads((output / "student-emd" / "run_config.json").read_text())["config"]
    for same in ("augmented_train", "epochs", "batch_size", "seed"):  # the same data and budget
        assert theseus_config[same] == emd_config[same], same
    # its own learning rate and curriculum, p = 1 at the recipe's share of the run's steps
    for key, value in recipe.THESEUS.items():
        assert theseus_config[key] == value, key
    theseus_results = json.loads((output / "student-theseus" / "eval_results.json").read_text())
    steps = theseus_results["schedule"]["planned_steps"]
    assert theseus_results["schedule"]["successor_alone_from_step"] == round(
        recipe.THESEUS["replacing_share_to_one"] * steps)
    assert (output / f"student-{report['method']}" / "README.md").is_file()
    assert "| theseus |" in (output / "report.md").read_text()


def test_hybrid_compression_end_to_end_to_onnx_int8(tiny_teacher, glue_dir, tmp_path):
    """--method hybrid: the lowest ratio that meets the target (any, at a latency limit every candidate meets) is
    trained by `bert-emd hybrid`, exported to ONNX int8 from its compact form and checked on dev; the timed
    candidate has the trained model's ranks, so its speed."""
    from bert_emd.compress.hybrid import save_hybrid_candidates
    from bert_emd.hybrid.storage import MANIFEST, load_hybrid
    from bert_emd.models import load_trained_classifier

    output = tmp_path / "out"
    report = bert_emd.compress(teacher=str(tiny_teacher), data_dir=str(glue_dir), output=str(output),
                               backend="onnx-int8", target_latency_ms=1e6, method="hybrid", augment="off",
                               **SETTINGS)
    assert report["method"] == "hybrid" and report["chosen_shape"] == "hybrid-2x"
    from bert_emd.compress.hybrid import RATIOS, candidate_name

    # no depth candidate is timed for hybrid compression: it keeps the teacher's depth
    assert [row["name"] for row in report["candidates"]] == ["teacher", *map(candidate_name, RATIOS)]
    student = output / "student"
    results = json.loads((student / "hybrid_results.json").read_text())
    assert results["target_ratio"] == 2.0 and len(results["steps"]) == 3
    assert report["scores"]["student"] == {name: pytest.approx(value) for name, value in
                                           results["splits"]["dev"]["metrics"].items()}
    assert report["deployed"].endswith("model_int8.onnx") and report["deployed_agreement_with_student"] is not None
    assert len(report["dev_curve"]) == 3  # a dev score after each compression step
    teacher = load_trained_classifier(str(tiny_teacher))
    timed = save_hybrid_candidates(teacher, None, tmp_path / "again", [2.0])[2.0]
    assert json.loads((timed / MANIFEST).read_text())["factorised"] == \
        json.loads((student / MANIFEST).read_text())["factorised"]
    assert load_hybrid(student).config.num_hidden_layers == 4
    from huggingface_hub import ModelCard

    card = ModelCard.load(student / "README.md")
    assert "hybrid" in card.data.tags and "load_hybrid(PATH)" in card.text
    assert "hybrid-2x (chosen)" in (output / "report.md").read_text()


def test_the_lowest_hybrid_ratio_that_meets_the_target_is_chosen():
    hybrid = [{**row(f"hybrid-{r}x", 6, p50), "hybrid_ratio": float(r)} for r, p50 in ((2, 70.0), (4, 52.0), (8, 40.0))]
    table = STUB + hybrid
    assert choose_shape(table, target_speedup=1.25, method="hybrid")["name"] == "hybrid-2x"
    assert choose_shape(table, target_speedup=2.0, method="hybrid")["name"] == "hybrid-8x"  # 100 / 52 = 1.92
    assert choose_shape(table, target_speedup=2.0)["name"] == "L3"  # depth candidates only for the layer mappings
    with pytest.raises(BertEmdError, match=r"no hybrid ratio \(2x to 8x\) meets --target-speedup 3 on onnx-int8: "
                                           r"the fastest candidate, hybrid-8x, measured 2.50x"):
        choose_shape(table, target_speedup=3.0, method="hybrid")
    with pytest.raises(BertEmdError, match="no hybrid candidate"):
        choose_shape(STUB, target_speedup=2.0, method="hybrid")


def test_hybrid_candidates_are_compressed_to_their_ratio(tiny_teacher, tmp_path):
    """Each candidate, loaded back from its compact form, has the encoder compression ratio it is named by
    (dense encoder parameters / non-zero ones, counted here on the loaded weights), and its factorised layers."""
    from bert_emd.compress.hybrid import save_hybrid_candidates
    from bert_emd.hybrid.lowrank import LowRankLinear
    from bert_emd.hybrid.storage import load_hybrid
    from bert_emd.models import load_trained_classifier

    teacher = load_trained_classifier(str(tiny_teacher))
    dense = sum(p.numel() for p in teacher.bert.encoder.parameters())
    paths = save_hybrid_candidates(teacher, None, tmp_path)
    assert sorted(paths) == [2.0, 4.0, 8.0, 16.0]
    for ratio, path in paths.items():
        model = load_hybrid(path)
        nonzero = sum(int(p.count_nonzero()) if p.dim() == 2 else p.numel() for p in model.bert.encoder.parameters())
        assert dense / nonzero == pytest.approx(ratio, rel=0.02), ratio
        assert any(isinstance(module, LowRankLinear) for module in model.modules())
    assert teacher.bert.encoder.layer[0].attention.self.query.weight.count_nonzero() == 32 * 32  # teacher untouched


def test_theseus_needs_a_depth_that_divides_the_teacher(tiny_teacher, glue_dir, tmp_path, capsys):
    """L3 meets a small target but 3 does not divide 4 layers; the deepest dividing depth that meets it is taken."""
    from bert_emd.compress.run import theseus_depths

    assert theseus_depths(4) == [1, 2] and theseus_depths(12) == [1, 2, 3, 4, 6] and theseus_depths(6) == [1, 2, 3]
    assert choose_shape(STUB, target_speedup=1.25, allowed=theseus_depths(6))["layers"] == 3
    with pytest.raises(BertEmdError, match=r"no student depth for theseus \(depths 1, 2, 3\) meets"):
        choose_shape(STUB, target_speedup=6.0, allowed=theseus_depths(6), method="theseus")


def test_only_the_depths_a_method_can_train_are_timed():
    from bert_emd.compress.run import candidate_depths

    assert candidate_depths(["emd"], 6) == [1, 2, 3, 4, 5] and candidate_depths(["skip"], 4) == [1, 2, 3]
    assert candidate_depths(["theseus"], 12) == [1, 2, 3, 4, 6]
    assert candidate_depths(["hybrid"], 12) == [] and candidate_depths(["early-exit"], 12) == []
    assert candidate_depths(["theseus", "hybrid", "early-exit"], 6) == [1, 2, 3]
    assert candidate_depths(["emd", "theseus", "hybrid", "early-exit"], 12) == list(range(1, 12))


def test_the_report_renders_in_a_headless_browser(compressed, tmp_path):
    """Chromium (Debian's package) opens report.html with no network: no script error, every plot decoded."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (apt install chromium); the page is checked without it above")
    output, _ = compressed
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=5000"]
    page = (output / "report.html").as_uri()
    result = subprocess.run([browser, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    images = len(re.findall(r"<img ", (output / "report.html").read_text()))
    assert f'data-images-loaded="{images}/{images}"' in result.stdout
    assert "Uncaught" not in result.stderr
    shot = tmp_path / "report.png"
    subprocess.run([browser, *flags, "--window-size=1100,1800", f"--screenshot={shot}", page], capture_output=True,
                   timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_says_when_the_machine_was_busy_while_timing(compressed):
    from bert_emd.compress.report import summary_lines

    _, report = compressed
    idle = {**report, "other_cpu_use_before_timing": {"candidates": 0.1, "final": 0.2}}
    assert not any("busy" in line for line in summary_lines(idle))
    busy = {**report, "other_cpu_use_before_timing": {"candidates": 1.9, "final": 0.2}}
    assert any("1.90 cores busy with other work before the candidates measurement" in line
               for line in summary_lines(busy))


def test_other_cpu_use_is_sampled_while_compress_sleeps():
    import subprocess
    import sys

    from bert_emd.compress.shapes import load_average

    quiet = load_average(0.5)
    assert quiet is None or quiet >= 0.0
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # one core kept busy by another process
    try:
        busy = load_average(1.0)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is None or busy > 0.6


def test_early_exit_takes_the_best_threshold_that_meets_the_target(monkeypatch, tmp_path):
    """The threshold choice, against a stubbed curve: the best score among thresholds fast enough, else one line."""
    import bert_emd.early_exit as early_exit_package
    from bert_emd.compress.config import CompressConfig
    from bert_emd.compress.early_exit import deploy_early_exit, needed_speedup
    from bert_emd.data.tasks import get_task

    table = [{"name": "teacher", "layers": 6, "p50_ms": 200.0, "torch_fp32_p50_ms": 400.0}]
    config = CompressConfig(teacher="t", task="sst2", target_speedup=2.0, batch_size_deploy=32)
    assert needed_speedup(config, table) == 2.0
    assert needed_speedup(CompressConfig(teacher="t", task="sst2", target_speedup=2.0,
                                         baseline="teacher-same-backend"), table) == 4.0  # 2 x 400 / 200
    assert needed_speedup(CompressConfig(teacher="t", task="sst2", target_latency_ms=100.0), table) == 4.0

    def point(threshold, accuracy, speedup):
        return {"threshold": threshold, "metrics": {"accuracy": accuracy}, "mean_exit_layer": 6 - 10 * threshold,
                "latency_speedup": {"32": speedup}}

    curve = {"split": "dev", "num_examples": 100, "latency_samples": 256, "full_model": {"metrics": {"accuracy": 0.9}},
             "curves": {"entropy": [point(0.0, 0.9, 1.0), point(0.1, 0.88, 1.9), point(0.2, 0.87, 2.1),
                                    point(0.3, 0.85, 2.6), point(0.4, 0.8, 3.5)]}}
    monkeypatch.setattr(early_exit_package, "evaluate_early_exit", lambda **options: curve)
    deployed = deploy_early_exit(config, get_task("sst2"), tmp_path, table)
    assert deployed["threshold"] == 0.2 and deployed["metrics"] == {"accuracy": 0.87}  # the best of 2.1x, 2.6x, 3.5x
    assert deployed["student_metrics"] == {"accuracy": 0.9} and deployed["measured_speedup"] == 2.1
    with pytest.raises(BertEmdError, match="early exit meets no target here: its fastest threshold \\(0.4\\) "
                                           "measured 3.50x against the full model at batch 32, 5.00x was needed"):
        deploy_early_exit(CompressConfig(teacher="t", task="sst2", target_speedup=5.0, batch_size_deploy=32),
                          get_task("sst2"), tmp_path, table)


def test_the_report_says_when_int8_costs_points(compressed):
    from bert_emd.compress.report import summary_lines

    _, report = compressed
    scores = report["scores"]
    close = {**report, "backend": "onnx-int8", "scores": {**scores, "deployed_mean": scores["student_mean"] - 0.005}}
    assert not any("Int8 costs" in line for line in summary_lines(close))
    far = {**report, "backend": "onnx-int8", "scores": {**scores, "deployed_mean": scores["student_mean"] - 0.04}}
    assert any("Int8 costs 4.00 points" in line for line in summary_lines(far))


def test_the_report_warns_of_a_student_that_answers_one_class(compressed):
    from bert_emd.compress.report import summary_lines
    from bert_emd.data import get_task
    from bert_emd.evaluation.metrics import constant_prediction_note

    output, report = compressed
    dev = json.loads((output / "student" / "eval_results.json").read_text())["splits"]["dev"]
    constant = dev.get("constant_prediction")  # the tiny student may well answer one class
    assert report["constant_prediction"] == (constant_prediction_note(get_task("sst2"), constant) if constant
                                             else None)
    assert report["methods"][0]["constant_prediction"] == report["constant_prediction"]
    note = constant_prediction_note(get_task("sst2"), {"label": 1})
    flagged = {**report, "methods": [{**report["methods"][0], "constant_prediction": note}]}
    layers = report["methods"][0]["layers"]
    assert f"WARNING, emd ({layers} layers, the kept student): {note}." in summary_lines(flagged)
    varied = {**report, "methods": [{**report["methods"][0], "constant_prediction": None}]}
    assert not any(line.startswith("WARNING") for line in summary_lines(varied))


def test_data_options_added_later_leave_recorded_stage_keys_as_they_were():
    """A stage recorded before --label-all-tokens and --doc-stride existed is still found finished: at their
    defaults they are not in a stage's settings (so not in its key); set, they are."""
    import dataclasses

    from bert_emd.compress.config import CompressConfig
    from bert_emd.compress.run import LATER_DATA_OPTIONS, Stages, data_options

    config = CompressConfig(task="sst2", data_dir="glue", output="out", target_speedup=2)
    options = data_options(config)
    assert not set(LATER_DATA_OPTIONS) & set(options) and {"task", "data_dir", "max_length"} <= set(options)
    recorded = {**options, "output": "out/teacher"}  # as a stage recorded before the options existed
    assert Stages.key({**data_options(config), "output": "out/teacher"}) == Stages.key(recorded)
    changed = data_options(dataclasses.replace(config, doc_stride=64, label_all_tokens=True))
    assert changed["doc_stride"] == 64 and changed["label_all_tokens"] is True
