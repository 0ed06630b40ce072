# The two commands (see README.md):
#   make run    run tandemd on config.toml
#   make test   lint, type-check and run the tests
# Both create or reuse .venv and install the pinned requirements into it first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tandemd config.toml

lint: $(STAMP)
	$(BIN)/ruff format --check daemon streams tests bench
	$(BIN)/ruff check daemon streams tests bench
	$(BIN)/mypy

test: $(STAMP) lint
	scripts/system-deps
	$(BIN)/python -m pytest

# The inner loop while editing: lint and every test that takes milliseconds, not seconds.
test-fast: $(STAMP) lint
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m bench
