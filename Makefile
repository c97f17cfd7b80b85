# agentwatch — the two commands a new user needs: `make demo` and `make test`.
# Each creates its own virtualenv (.venv) and installs what it needs into it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint format check clean

# Every Python folder ruff and format look at.
PY_DIRS := monitor detectors playbooks tests bench grafana docs tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/agentwatch demo

# The suite's one need outside the virtualenv (Prometheus + promtool): installed where
# apt-get can without asking, otherwise one line says what to run (tools/test_prereqs.py).
test: $(STAMP)
	@$(BIN)/python tools/test_prereqs.py
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run_bench.py

lint: $(STAMP)
	$(BIN)/ruff check $(PY_DIRS)

format: $(STAMP)
	$(BIN)/ruff format $(PY_DIRS)

# What CI checks before the tests: lint, format, types (mypy settings in pyproject.toml;
# mypy reads the agentwatch package through a symlink view, tools/typecheck_tree.py).
check: $(STAMP)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/python tools/typecheck_tree.py
	$(BIN)/mypy

clean:
	rm -rf $(VENV) agentwatch-data .pytest_cache .mypy_cache build
