# servebench: `make bench` runs the default scenario; `make test` runs lint, types and tests.
# Both create .venv on first use. torch==2.13.0 (a CPU wheel here) is installed first when the
# venv has no torch, so pip never pulls a multi-GB CUDA build for the `torch` range.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.servebench-installed
SCENARIO ?= scenarios/default.toml
PYTEST_ARGS ?=

.PHONY: bench test lint typecheck env clean-env

bench: $(STAMP)
	$(VENV)/bin/servebench run $(SCENARIO)

test: $(STAMP) lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check harness targets tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy

env: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[dev]"
	@touch $(STAMP)

clean-env:
	rm -rf $(VENV)
