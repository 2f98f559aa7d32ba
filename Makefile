# Two entry points (README): `make repro` installs and runs the pipeline, `make test` installs and runs the tests.
# Both install requirements/$(VARIANT).txt first (see `install`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv

# The environment is a lock file: every package pinned with its hashes (CPython 3.11, Linux x86_64).
#   VARIANT=cpu   requirements/cpu.txt:  torch 2.13.0+cpu (default without nvidia-smi; CI)
#   VARIANT=cuda  requirements/cuda.txt: torch 2.13.0 from PyPI with its NVIDIA libraries (default with nvidia-smi)
VARIANT ?= $(if $(shell command -v nvidia-smi 2>/dev/null),cuda,cpu)
ifeq ($(filter $(VARIANT),cpu cuda),)
$(error VARIANT=$(VARIANT): use VARIANT=cpu or VARIANT=cuda)
endif
ifeq ($(origin TORCH),command line)
$(error TORCH= is gone: `make install` installs a lock file, pick it with VARIANT=cpu or VARIANT=cuda)
endif
LOCK := requirements/$(VARIANT).txt
UV_VERSION := $(shell sed -n 's/^uv==\([^ ]*\).*/\1/p' $(LOCK))
# Where torch's +cpu wheel comes from (it is not on PyPI): this machine's wheel folder, else PyTorch's wheel page.
TORCH_WHEELS ?= $(if $(wildcard /opt/wheels/torch-*+cpu-*.whl),/opt/wheels,https://download.pytorch.org/whl/torch/)
LOCK_OPTS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock"

.PHONY: install repro test test-slow lint bench lock compare exps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv (pinned by the lock) installs the lock exactly (`uv pip sync`: hashes checked, anything unlisted but pip removed),
# then embedlab itself without dependencies. benchmarks/bench_install.py: uv vs pip from the same lock.
# --compile-bytecode: uv, unlike pip, writes no .pyc; where PYTHONDONTWRITEBYTECODE is set (this project's machines)
# Python then never caches them either, and every process recompiles torch, transformers and DVC from source:
# `import sentence_transformers` 16 s instead of 7 s, each stage and each test subprocess. Compiled once, here.
install: $(BIN)/python
	@[ "$$($(UV) --version 2>/dev/null | cut -d' ' -f2)" = "$(UV_VERSION)" ] || \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python --require-hashes $(if $(filter cpu,$(VARIANT)),--find-links $(TORCH_WHEELS)) $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .

# Regenerate both lock files from pyproject.toml's ranges (+ requirements/{cpu,cuda}.in: the torch build).
# Needs PyPI; versions already in the lock are kept where they still fit: `make lock LOCK_ARGS=--upgrade` moves
# everything to the newest allowed, `LOCK_ARGS="--upgrade-package transformers"` one package.
lock: $(BIN)/python
	@$(UV) --version >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip compile pyproject.toml --extra dev --constraint requirements/cpu.in --find-links $(TORCH_WHEELS) \
		$(LOCK_OPTS) $(LOCK_ARGS) --quiet -o requirements/cpu.txt
	$(UV) pip compile pyproject.toml --extra dev --constraint requirements/cuda.in \
		$(LOCK_OPTS) $(LOCK_ARGS) --quiet -o requirements/cuda.txt

# Ends with every model's headline: one row per model, per set the score and its 95 % CI (`embedlab.compare show`).
# The venv's bin first on PATH: dvc.yaml's `python stages/...` must be this venv's python (the warm server refuses
# a client from another environment, and a plain run would lack the packages).
repro: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m embedlab.warm run -- $(BIN)/dvc repro
	$(BIN)/python -m embedlab.compare show

# The models whose headline changed between two revisions (old -> new, delta, * outside the old 95 % CI):
# `make compare A=main B=my-branch`; A defaults to HEAD, B to the workspace. Only A and B given on the make command
# line count: an A or B exported in the environment does not silently become a side of the comparison.
compare: install
	$(BIN)/python -m embedlab.compare diff $(if $(filter command line,$(origin A)),$(A),HEAD) $(if $(filter command line,$(origin B)),$(B))

# A sweep at a glance (`dvc exp run -S key=value`, queued or not): per experiment, the params that differ and the
# headline of each model whose scores differ. DVC's own table names each metric column after its file
# (metrics/finetune-book.json:stsb_validation.spearman_cosine): `dvc exp show --md --only-changed` with deps, CIs and
# Created dropped is still 244 characters wide for one model, so its CSV goes through embedlab.compare.
exps: install
	@csv=$$($(BIN)/dvc exp show --csv) && printf '%s\n' "$$csv" | $(BIN)/python -m embedlab.compare exps

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
