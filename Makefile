# snowvault — two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# two stamps: `make run` needs the runtime only; tests and checks need the dev toolchain
# (awscli, pytest, moto, mypy, ...: ~680 MB and a minute more)
RUN_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(STAMP)
DATA_DIR ?= $(HOME)/.local/share/snowvault
PORT ?= 8765
PYTEST_ARGS ?=

.PHONY: install run demo test check lint typecheck imports bench bench-resources bench-copy bench-agents bench-tools clean

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip==25.3
	$(BIN)/python -m pip install -q -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/snowvault run --data-dir $(DATA_DIR) --port $(PORT)

demo: $(RUN_STAMP)
	$(BIN)/snowvault quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

check: lint typecheck imports test

bench: $(STAMP) bench-tools
	$(BIN)/python benchmarks/engine_bench.py $(BENCH_ARGS)

# resource types beside their native tools (issues 11 and 12; benchmarks/resources_bench.py)
bench-resources: $(STAMP) bench-tools
	$(BIN)/python benchmarks/resources_bench.py $(BENCH_ARGS)

# copy jobs beside rsync and restic copy (issue 14; benchmarks/copy_bench.py)
bench-copy: $(STAMP) bench-tools
	$(BIN)/python benchmarks/copy_bench.py $(BENCH_ARGS)

# agents beside the embedded worker, jobs per minute of 1, 2, 4 agents (issue 13; benchmarks/agent_bench.py)
bench-agents: $(STAMP)
	$(BIN)/python benchmarks/agent_bench.py $(BENCH_ARGS)

bench-tools:
	command -v restic >/dev/null && command -v borg >/dev/null && command -v rsync >/dev/null && test -x /usr/bin/time || (apt-get update -qq && apt-get install -y -qq restic borgbackup rsync time)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
