# The two commands of the README. Both create .venv from the pinned lock file first.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: setup repro test lint bench

$(VENV)/.installed: requirements.lock pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

setup: $(VENV)/.installed

## Set up, then run the default pipeline (params.yaml: ml-100k, quick profile).
repro: setup
	$(BIN)/dave check-params
	$(BIN)/dvc repro

## Set up, then lint and run the whole test suite (one worker per CPU core; test files are
## the unit of distribution, so a file's shared fixtures are built once).
TEST_WORKERS ?= auto
test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
