"""LadaBERT hybrid compression: SVD factorisation, ranks for a ratio, fixed pruning masks, storage, the command."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn
from transformers import (
    AutoTokenizer,
    BertForSequenceClassification,
)

from bert_emd.cli import main
from bert_emd.errors import BertEmdError
from bert_emd.families import encoder_blocks
from bert_emd.hybrid import LowRankLinear, hybrid, load_hybrid, save_hybrid
from bert_emd.hybrid.compress import apply_step, encoder_parameter_counts, plan_step, prunable
from bert_emd.hybrid.lowrank import as_dense, rank_for_energy, rank_for_ratio, target_modules
from bert_emd.hybrid.pruning import apply_pruning
from bert_emd.hybrid.summary import main as summary_main
from bert_emd.models import load_trained_classifier
from bert_emd.runinfo import write_json
from tests.conftest import reload_without_bert_emd
from tests.test_bad_input import assert_one_line_error, run_cli

ALL = ["query", "key", "value", "attention_output", "ffn_in", "ffn_out"]


def inputs(path):
    return AutoTokenizer.from_pretrained(path)(["a fine film", "not good at all , sadly"], padding=True,
                                               return_tensors="pt")


def test_full_rank_svd_reproduces_the_layer():
    torch.manual_seed(0)
    linear = nn.Linear(48, 32)
    x = torch.randn(5, 7, 48)
    pair = LowRankLinear.from_weight(linear.weight, linear.bias, 32)
    assert isinstance(pair.down, nn.Linear) and isinstance(pair.up, nn.Linear)
    assert torch.allclose(pair(x), linear(x), atol=1e-5)
    low = LowRankLinear.from_weight(linear.weight, linear.bias, 4)  # the best rank-4 approximation (Eckart-Young)
    s = torch.linalg.svdvals(linear.weight.double())
    error = torch.linalg.matrix_norm(as_dense(low)[0].double() - linear.weight.double())
    assert error.item() == pytest.approx(s[4:].pow(2).sum().sqrt().item(), rel=1e-4)
    with pytest.raises(BertEmdError, match="rank 33 is outside 1..32"):
        LowRankLinear.from_weight(linear.weight, linear.bias, 33)


@pytest.mark.parametrize("shape, keep", [((384, 384), 0.5), ((1536, 384), 0.3), ((32, 64), 0.9)])
def test_rank_for_a_ratio_gives_that_parameter_count(shape, keep):
    out, inp = shape
    rank = rank_for_ratio(inp, out, keep)
    assert (rank - 1) * (inp + out) < keep * inp * out <= rank * (inp + out)
    pair = LowRankLinear(inp, out, rank)
    assert sum(p.numel() for p in pair.parameters()) == rank * (inp + out) + out  # weights + the bias


def test_rank_for_energy():
    weight = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.5]))
    energies = torch.tensor([9.0, 4.0, 1.0, 0.25]).cumsum(0) / 14.25
    assert rank_for_energy(weight, float(energies[1])) == 2
    assert rank_for_energy(weight, float(energies[1]) + 1e-3) == 3
    assert rank_for_energy(weight, 1.0) == 4


def test_planned_step_reaches_the_ratio(tiny_teacher):
    for ratio, share in ((2.0, 0.5), (5.0, 0.0), (10.0, 0.5), (4.0, 1.0)):
        model = BertForSequenceClassification.from_pretrained(tiny_teacher)
        layers = encoder_blocks(model)
        chosen = target_modules(model, ALL)
        shapes = {name: tuple(module.weight.shape) for name, module in chosen.items()}
        dense = encoder_parameter_counts(layers)["dense"]
        plan = plan_step(chosen, dense, ratio, share, "ratio", 0.9, shapes)
        chosen = apply_step(model, chosen, plan, "global")
        reached = dense / encoder_parameter_counts(layers)["nonzero"]
        assert reached == pytest.approx(ratio, rel=0.05), (ratio, share)
        if share == 0.0:  # factorisation only: pruning removes at most the rounding-up of one rank unit
            assert len(plan.ranks) == len(ALL) * 4
            assert 0 <= plan.sparsity <= max(1 / rank for rank in plan.ranks.values())
        if share == 1.0:  # pruning only: no factorisation
            assert not plan.ranks and isinstance(model.bert.encoder.layer[0].attention.self.query, nn.Linear)
        assert all(isinstance(module, LowRankLinear) == (name in plan.ranks) for name, module in chosen.items())
        assert len(prunable(chosen)) == len(chosen) + len(plan.ranks)


def test_pruning_masks_reach_the_sparsity_and_stay_fixed_in_training():
    torch.manual_seed(0)
    modules = [nn.Linear(40, 30), nn.Linear(30, 20)]
    apply_pruning(modules, 0.6, "global")
    total = sum(m.weight.numel() for m in modules)
    zeros = sum(int((m.weight_mask == 0).sum()) for m in modules)
    assert zeros == round(0.6 * total)
    masks = [m.weight_mask.clone() for m in modules]
    optimiser = torch.optim.AdamW([p for m in modules for p in m.parameters()], lr=0.1)
    for _ in range(5):
        loss = modules[1](torch.relu(modules[0](torch.randn(8, 40)))).pow(2).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    for module, mask in zip(modules, masks):
        assert torch.equal(module.weight_mask, mask)
        module(torch.randn(1, module.in_features))  # the pre-hook refreshes `weight`
        assert torch.all(module.weight[mask == 0] == 0)
    apply_pruning(modules[:1], 0.25, "layer")  # per layer, on a fresh start from the current weights
    assert int((modules[0].weight_mask == 0).sum()) == round(0.25 * modules[0].weight.numel())


def test_save_and_reload_give_identical_logits_and_a_smaller_file(tiny_teacher, tmp_path):
    model = BertForSequenceClassification.from_pretrained(tiny_teacher).eval()
    chosen = target_modules(model, ALL)
    shapes = {name: tuple(module.weight.shape) for name, module in chosen.items()}
    dense = encoder_parameter_counts(encoder_blocks(model))["dense"]
    apply_step(model, chosen, plan_step(chosen, dense, 5.0, 0.5, "ratio", 0.9, shapes), "global")
    with torch.inference_mode():
        expected = model(**inputs(tiny_teacher)).logits
    save_hybrid(model, tmp_path / "h", AutoTokenizer.from_pretrained(tiny_teacher))
    manifest = json.loads((tmp_path / "h" / "hybrid.json").read_text())
    assert len(manifest["factorised"]) == 4 * 6 and manifest["sparse"]
    for reloaded in (load_hybrid(tmp_path / "h"), load_trained_classifier(str(tmp_path / "h"))):
        with torch.inference_mode():
            assert torch.equal(reloaded(**inputs(tiny_teacher)).logits, expected)
    compressed = (tmp_path / "h" / "hybrid.safetensors").stat().st_size
    model_dense = (tiny_teacher / "model.safetensors").stat().st_size
    embeddings = 30522 * 32 * 4
    assert compressed - embeddings < 0.45 * (model_dense - embeddings)


def test_hybrid_command_end_to_end(tiny_teacher, glue_dir, tmp_path, capsys):
    output = tmp_path / "out"
    results = hybrid(teacher=str(tiny_teacher), task="sst2", data_dir=str(glue_dir), output=str(output),
                     target_ratio=4.0, steps=2, max_train_samples=32, max_eval_samples=16, batch_size=8,
                     hidden_loss=True, logging_steps=1)
    steps = results["steps"]
    assert [step["step"] for step in steps] == [1, 2]
    assert steps[0]["target_ratio"] == pytest.approx(2.0) and steps[1]["target_ratio"] == pytest.approx(4.0)
    assert steps[0]["encoder_ratio"] < steps[1]["encoder_ratio"]
    assert results["encoder"]["ratio"] == pytest.approx(4.0, rel=0.05)
    assert "dev" in steps[1]["splits"] and "metrics" in steps[1]["splits"]["dev"]
    assert results["model"]["nonzero_parameters"] < results["model"]["teacher_parameters"]
    for name in ("hybrid.json", "hybrid.safetensors", "config.json", "tokenizer.json", "hybrid_results.json",
                 "run_config.json"):
        assert (output / name).is_file(), name
    # the existing commands load it
    assert main(["evaluate", "--model", str(output), "--task", "sst2", "--data-dir", str(glue_dir),
                 "--max-eval-samples", "16", "--output", str(tmp_path / "eval.json")]) == 0
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated["splits"]["dev"]["metrics"] == pytest.approx(steps[1]["splits"]["dev"]["metrics"])
    # the dense copy: plain transformers loads it and gives the compact model's logits
    texts = [["a fine film", "a dull one"]]
    dense_logits = np.array(reload_without_bert_emd(output / results["dense_copy"], texts)["logits"])
    compact = load_hybrid(output)
    tokenizer = AutoTokenizer.from_pretrained(output)
    with torch.no_grad():
        compact_logits = compact(**tokenizer(*texts, padding=True, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(dense_logits, compact_logits, rtol=1e-4, atol=1e-5)
    results_dir = tmp_path / "results"
    # a GLUE-table EMD student of the same task (here a copy of the tiny model) is timed in the same run
    student = tmp_path / "table_work" / "sst2" / "emd-L2" / "seed1"
    shutil.copytree(tiny_teacher, student)
    assert main(["benchmark", "--model", str(tiny_teacher), "--model", str(output), "--model", str(student),
                 "--backends", "torch-fp32", "--batch-sizes", "2", "--lengths", "16", "--repeats", "1", "--output",
                 str(results_dir / "sst2" / "benchmark.json")]) == 0
    record = results_dir / "sst2" / "ratio4"
    record.mkdir()
    for name in ("hybrid_results.json", "run_config.json"):
        shutil.copy(output / name, record / name)
    assert summary_main([str(results_dir), "--table", str(tmp_path / "no_table.json")]) == 0
    summary = json.loads((results_dir / "summary.json").read_text())
    row = summary["tasks"]["sst2"]["hybrid"][0]
    assert row["encoder_ratio"] == pytest.approx(results["encoder"]["ratio"])
    assert row["latency"]["batch2_len16"]["p50_ms"] > 0
    assert "| hybrid 4x |" in (results_dir / "summary.md").read_text()
    assert summary["tasks"]["sst2"]["emd_students"] == []
    # with the table: its EMD rows of the task, their mean training time over the seeds' records, this latency
    table = tmp_path / "table" / "table.json"
    table.parent.mkdir()
    table.write_text(json.dumps({"rows": [
        {"name": "teacher", "mapping": None, "layers": 4, "tasks": {}, "parameters": 100},
        {"name": "emd-L2", "mapping": "emd", "layers": 2, "parameters": 60,
         "tasks": {"sst2": {"metrics": {"accuracy": {"mean": 0.8, "std": 0.01, "n": 2}}}}},
        {"name": "skip-L2", "mapping": "skip", "layers": 2, "parameters": 60,
         "tasks": {"sst2": {"metrics": {"accuracy": {"mean": 0.7, "std": 0.02, "n": 2}}}}}]}))
    for seed, seconds in ((1, 30.0), (2, 90.0)):
        write_json(table.parent / "runs" / "sst2" / "emd-L2" / f"seed{seed}" / "wall_clock.json", {"seconds": seconds})
    assert summary_main([str(results_dir), "--table", str(table), "--table-work", str(tmp_path / "table_work")]) == 0
    students = json.loads((results_dir / "summary.json").read_text())["tasks"]["sst2"]["emd_students"]
    assert [entry["name"] for entry in students] == ["emd-L2"]  # emd rows only
    assert students[0]["encoder_ratio"] == 2.0 and students[0]["train_seconds"] == 60.0
    timed = json.loads((results_dir / "sst2" / "benchmark.json").read_text())["models"][2]
    assert students[0]["latency"]["batch2_len16"]["p50_ms"] == \
        timed["backends"]["torch-fp32"]["settings"]["batch2_len16"]["p50_ms"]
    assert "| BERT-EMD emd-L2 (2 seed(s)) | 2.00x | - | 80.0 ± 1.0 |" in (results_dir / "summary.md").read_text()
    # a second run finds both steps finished and trains nothing
    again = hybrid(teacher=str(tiny_teacher), task="sst2", data_dir=str(glue_dir), output=str(output),
                   target_ratio=4.0, steps=2, max_train_samples=32, max_eval_samples=16, batch_size=8,
                   hidden_loss=True)
    assert again["steps"] == json.loads(json.dumps(steps))
    assert "already finished" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["--target-ratio", "1"], "--target-ratio must be > 1 (got 1.0)"),
    ([], "--target-ratio is required"),
    (["--target-ratio", "10", "--targets", "query"], "target ratio 10 is unreachable"),
    (["--target-ratio", "2", "--targets", "query,gate"], "unknown target 'gate'"),
    (["--target-ratio", "2", "--prune-share", "1.5"], "--prune-share must be >= 0 and <= 1 (got 1.5)"),
])
def test_bad_hybrid_options(capsys, tiny_teacher, glue_dir, tmp_path, arguments, message):
    code, err = run_cli(capsys, "hybrid", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir",
                        str(glue_dir), "--output", str(tmp_path / "out"), *arguments)
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "out").exists()  # refused before any training
