# Each target creates the virtualenv it needs on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/monitor.yaml
BENCH_ARGS ?=

.PHONY: run test lint format bench container systemd clean

$(BIN)/news-monitor: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/news-monitor
	$(BIN)/news-monitor run --config $(CONFIG)

test: $(BIN)/news-monitor
	$(BIN)/pytest

lint: $(BIN)/news-monitor
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(BIN)/news-monitor
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# bench/run.py prints the table (and, unless --quick, bench/rules.py's RuleSet.match table).
# Its targets compare with lemon24/reader, installed here (not a project dependency).
bench: $(VENV)/.bench-references
	$(BIN)/python bench/run.py $(BENCH_ARGS)

$(VENV)/.bench-references: $(BIN)/news-monitor
	$(BIN)/pip install --quiet reader sgmllib3k
	@touch $@

# Build the Dockerfile with podman and check the image runs (root; installs podman if needed).
container:
	bash .ci/container

# systemd-analyze verify and the unit's security exposure (at most 2.0).
systemd: $(BIN)/news-monitor
	bash .ci/systemd

clean:
	rm -rf $(VENV) state .pytest_cache .ruff_cache
