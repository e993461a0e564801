"""docs/results/summary.py --readme: the README's summary table is replaced by the generated one, nothing else."""
import importlib.util
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[1] / "docs" / "results" / "summary.py"


def load_summary():
    spec = importlib.util.spec_from_file_location("results_summary", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_copy_table_replaces_only_the_table_with_the_same_header(tmp_path):
    summary = load_summary()
    readme = tmp_path / "README.md"
    readme.write_text("intro\n\n| teacher / student | SST-2 |\n|---|---|\n| old | 1.0 |\n| older | 2.0 |\n\nafter\n"
                      "| other | table |\n|---|---|\n")
    summary.copy_table("| teacher / student | SST-2 |\n|---|---|\n| new | 3.0 |\n", readme)
    assert readme.read_text() == ("intro\n\n| teacher / student | SST-2 |\n|---|---|\n| new | 3.0 |\n\nafter\n"
                                  "| other | table |\n|---|---|\n")


def test_copy_table_refuses_a_file_without_the_table(tmp_path):
    summary = load_summary()
    readme = tmp_path / "README.md"
    readme.write_text("no table here\n")
    with pytest.raises(SystemExit, match="no table starting with"):
        summary.copy_table("| teacher / student | SST-2 |\n|---|---|\n", readme)
    assert readme.read_text() == "no table here\n"
