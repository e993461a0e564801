"""results/summary.py --readme: the README's summary table is replaced by the generated one, nothing else."""
import importlib.util
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[1] / "results" / "summary.py"


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


def test_shares_are_rounded_down_so_a_goal_missed_by_a_little_reads_as_missed():
    summary = load_summary()
    best = {"mrpc": {"row": "last-L4", "score": 0.78, "seeds": 1, "tied": 0, "of_teacher": 0.78 / 0.8658},
            "rte": {"row": "skip-L4", "score": 0.5884, "seeds": 3, "tied": 1, "of_teacher": 0.95}}
    shares = [cell["of_teacher"] for cell in best.values()]
    table = summary.markdown([{"teacher": "T", "tasks": ["mrpc", "rte"], "teacher_scores": {"mrpc": 0.8658, "rte": 0.6},
                               "teacher_speed": None,
                               "depths": [{"layers": 4, "best": best, "speed": {"fp32": 2.9}, "tasks_with_a_row": 2,
                                           "mean_of_teacher": sum(shares) / 2}]}])
    row = table.splitlines()[-1].split(" | ")
    assert row[1] == "78.0 (90.0%) `last-L4`"  # 90.09% rounded down
    assert row[2] == "58.8 (95.0%) `skip-L4` (3 seeds) (= 1 other row)"  # exactly 95% stays 95.0%
    assert row[3] == "92.5%"  # the mean of 90.09% and 95%, 92.545%, rounded down; never rounded up
    assert row[4] == "2.90x"


def test_percent_rounded_down_the_convention_of_summary_and_compare():
    from bert_emd.experiment.table import percent_rounded_down
    share = (3 / 277) / (4 / 277)  # two accuracies on RTE's 277 dev pairs: 75% in decimal, 0.7499999999999999 here
    assert share < 0.75
    assert percent_rounded_down(share) == 75.0  # not 74.9
    assert percent_rounded_down(0.94869) == 94.8  # ordinary rounding would give 94.9
    assert percent_rounded_down(1.0384) == 103.8  # a student above its teacher
    assert percent_rounded_down(0.0) == 0.0


def test_the_readme_carries_the_compress_table():
    """The README's table of what one compress command gives is the one results/compress/summary.py writes."""
    root = MODULE.parents[1]
    assert (root / "results" / "compress" / "table.md").read_text() in (root / "README.md").read_text()
