# Two entry points (README): `make repro` installs and runs the pipeline, `make test` installs and runs the tests.
PYTHON ?= python3
VENV ?= .venv
# GPU users keep the default; CI pins the CPU wheel (TORCH=torch==2.13.0).
TORCH ?= torch
BIN := $(VENV)/bin

.PHONY: install repro test test-slow lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)" -e ".[dev]"

repro: install
	$(BIN)/python -m embedlab.warm run -- $(BIN)/dvc repro
	$(BIN)/dvc metrics show

# Unit, real-data and stage tests (minutes). End-to-end `dvc repro` tests in temporary repos: `make test-slow`.
test: install
	$(BIN)/ruff check src stages tests
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check src stages tests
	$(BIN)/ruff format --check src stages tests

# Benchmarks (not tests): baseline and ours interleaved, medians of >= 3; table in benchmarks/README.md.
bench: install
	$(BIN)/python benchmarks/run_all.py
