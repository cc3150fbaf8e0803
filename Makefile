# weightgate — two commands on a fresh machine:
#   make run    set up .venv, migrate, serve on http://127.0.0.1:8000 (SQLite + ./var/objects)
#   make test   set up .venv with test extras, lint, run the suite on SQLite and PostgreSQL

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# xdist workers per suite run; the machine has 2 cores.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: run test test-sqlite test-postgres lint format install clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/weightgate migrate
	@echo ""
	@echo "weightgate is starting on http://$(HOST):$(PORT)  (SQLite + ./var/objects)"
	@echo "Next: create an admin key in another terminal:"
	@echo "    $(BIN)/weightgate admin create-user --email you@example.org --role admin"
	@echo "then follow the quickstart in README.md."
	@echo ""
	$(BIN)/weightgate serve --host $(HOST) --port $(PORT) --no-migrate

lint: $(STAMP)
	$(BIN)/ruff check app tests bench migrations
	$(BIN)/ruff format --check app tests bench migrations
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format app tests bench migrations
	$(BIN)/ruff check --fix app tests bench migrations

test-sqlite: $(STAMP)
	WEIGHTGATE_TEST_DB=sqlite $(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-postgres: $(STAMP)
	WEIGHTGATE_TEST_DB=postgresql $(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test: lint test-sqlite test-postgres

bench: $(STAMP)
	$(BIN)/python bench/upload.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
