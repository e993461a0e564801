"""Real-model run (about 2 minutes on 2 CPU cores): the issue's acceptance command, through the CLI."""

from __future__ import annotations

import json

import pytest

from bert_emd.cli import main


@pytest.mark.slow
def test_minilm_sst2_subset_reaches_80_percent(glue_dir, tmp_path):
    output = tmp_path / "teacher"
    code = main(["finetune", "--model", "minilm-l6", "--task", "sst2", "--data-dir", str(glue_dir),
                 "--max-train-samples", "2000", "--epochs", "1", "--output", str(output)])
    assert code == 0
    results = json.loads((output / "eval_results.json").read_text())
    dev = results["splits"]["dev"]
    assert dev["num_examples"] == 872
    assert dev["metrics"]["accuracy"] >= 0.80, dev
