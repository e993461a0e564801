"""Every module or object a docstring, help text or doc names as ``bert_emd.x.y`` exists, and every repository
file they name (docs/..., experiments/..., benchmarks/...) is there: a move or rename cannot leave a dangling
pointer."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = [*REPO.glob("bert_emd/**/*.py"), *REPO.glob("benchmarks/*.py"), *REPO.glob("experiments/*.yaml"),
           REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("docs/guides/*.md"),
           *REPO.glob("docs/tables/*.md")]
DOTTED = re.compile(r"\bbert_emd(?:\.[A-Za-z_]\w*)+")
FILES = re.compile(r"(?<![\w/.])((?:docs|results|experiments|benchmarks|tests)/[\w./-]+"
                   r"\.(?:md|py|yaml|json|png|sh|txt))")


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def test_named_modules_and_objects_exist():
    missing = sorted({f"{path.relative_to(REPO)}: {name}" for path in SOURCES
                      for name in DOTTED.findall(path.read_text(encoding="utf-8")) if not resolves(name.rstrip("."))})
    assert not missing, missing


def _placeholder(name: str) -> bool:
    """``results/x/TASK.json``, ``runs/*/...``: a pattern, not a file."""
    return "*" in name or any(re.fullmatch(r"[A-Z_]+", part.split(".")[0]) for part in name.split("/"))


def test_named_repository_files_exist():
    missing = sorted({f"{path.relative_to(REPO)}: {name}" for path in SOURCES
                      for name in FILES.findall(path.read_text(encoding="utf-8"))
                      if not _placeholder(name) and not (REPO / name).exists()})
    assert not missing, missing


def test_no_pointer_outside_the_repository():
    outside = sorted(str(path.relative_to(REPO)) for path in SOURCES
                     if re.search(r"shared/docs|\bMETHODS\.md\b", path.read_text(encoding="utf-8")))
    assert not outside, outside


def test_pages_speak_of_the_project_not_of_its_work_history():
    pages = [REPO / "README.md", *REPO.glob("docs/**/*.md"), *REPO.glob("bert_emd/**/*.py"),
             *REPO.glob("benchmarks/*.py"), *REPO.glob("experiments/**/*.yaml"), *REPO.glob("experiments/**/*.sh"),
             *REPO.glob("results/**/*.md"),
             *REPO.glob("results/**/*.py"), *REPO.glob("results/**/*.sh"), *REPO.glob("results/**/*.txt")]
    history = re.compile(r"\b(?:issues? \d+|sessions? \d+|work rounds?)\b", re.IGNORECASE)
    found = sorted(f"{path.relative_to(REPO)}: {match.group(0)}" for path in pages
                   for match in history.finditer(path.read_text(encoding="utf-8")))
    assert not found, found


def test_readme_links_point_at_files():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [link for link in re.findall(r"\]\(([^)#\s]+)\)", text)
               if not link.startswith(("http://", "https://")) and not (REPO / link).exists()]
    assert not missing, missing
