# weightgate — two commands on a fresh machine:
#   make run    set up .venv, migrate, serve on http://127.0.0.1:8000 (SQLite + ./var/objects)
#   make test   set up .venv with test extras, lint, run the suite on SQLite and PostgreSQL

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two install stamps: serving needs the package alone; lint and tests add the test extras
# (moto, mypy, ruff, ...). A test install also satisfies make run.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 8000
# xdist workers per suite run; the machine has 2 cores.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
# Branch coverage of app/, measured in the SQLite pass of the whole suite only (paid once; not
# when PYTEST_ARGS picks a subset) and reported per module at its end. Code that runs only in
# the live servers' and CLI subprocesses is not measured (docs/architecture.md, Coverage).
COVERAGE_ARGS := --cov=app --cov-branch --cov-report=term:skip-covered
# JUnit reports of each backend's pass; .ci/run checks the PostgreSQL one really ran tests.
REPORTS := var/test-reports
LINTED := app tests bench migrations deploy
# checkov (tests/deploy/test_k8s_manifests.py) pins versions of boto3 and packaging that
# clash with ours: it lives in a virtualenv of its own inside .venv.
TOOLS := $(VENV)/tools
CHECKOV_VERSION := 3.3.30
# `make lock` writes deploy/*.lock with uv (deploy/lockfile.py); UPGRADE=1 takes the newest
# versions pyproject.toml allows instead of keeping the locked ones.
UV_VERSION := 0.13.9
# The console's browser tests drive Debian's chromium through Playwright (a browser download
# by Playwright cannot be reached); installed from Debian when missing, as .ci/run does.
CHROMIUM := /usr/bin/chromium
# The PKCS #11 release-key tests (tests/signing/test_pkcs11.py) run against Debian's SoftHSM2.
SOFTHSM := /usr/bin/softhsm2-util

# make test-future: the live-server tests again with every Python clock FUTURE_DAYS ahead
# (tests/timeshift/sitecustomize.py), so a date that will expire fails today. A literal date
# lives in the tests, not in a database: one backend (FUTURE_DBS) catches it, and the pass costs
# half of running both (make test-future FUTURE_DBS="sqlite postgresql" for both;
# FUTURE_PATHS=tests runs the whole suite that way).
FUTURE_DAYS ?= 1100
FUTURE_PATHS ?= tests/e2e tests/cli tests/hfcompat
FUTURE_DBS ?= postgresql

.PHONY: run test test-sqlite test-postgres test-future lint format install clean bench lock

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
		"weightgate needs Python >= 3.11; run make PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP) $(RUN_STAMP)

$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

$(SOFTHSM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2

$(TOOLS)/.installed: Makefile | $(BIN)/python
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

install: $(TEST_STAMP)

run: $(RUN_STAMP)
	$(BIN)/weightgate migrate
	@echo ""
	@echo "weightgate is starting on http://$(HOST):$(PORT)  (SQLite + ./var/objects)"
	@echo "Next, in another terminal: create an admin key and publish a model,"
	@echo "    $(BIN)/weightgate admin create-user --email you@example.org --role admin"
	@echo "as in the quickstart of README.md."
	@echo ""
	$(BIN)/weightgate serve --host $(HOST) --port $(PORT) --no-migrate

lint: $(TEST_STAMP)
	$(BIN)/python deploy/lockfile.py check
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy $(LINTED)
	$(BIN)/lint-imports --no-cache

format: $(TEST_STAMP)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

test-sqlite: $(TEST_STAMP) $(TOOLS)/.installed $(CHROMIUM) $(SOFTHSM)
	@mkdir -p $(REPORTS)
	WEIGHTGATE_TEST_DB=sqlite $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal \
		--junitxml=$(REPORTS)/sqlite.xml -o junit_suite_name=sqlite \
		$(if $(PYTEST_ARGS),,$(COVERAGE_ARGS)) $(PYTEST_ARGS)

test-postgres: $(TEST_STAMP) $(TOOLS)/.installed $(CHROMIUM) $(SOFTHSM)
	@mkdir -p $(REPORTS)
	WEIGHTGATE_TEST_DB=postgresql $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal \
		--junitxml=$(REPORTS)/postgresql.xml -o junit_suite_name=postgresql $(PYTEST_ARGS)

test-future: $(TEST_STAMP) $(SOFTHSM)
	for db in $(FUTURE_DBS); do \
		WEIGHTGATE_TEST_DB=$$db WEIGHTGATE_TEST_CLOCK_SHIFT_DAYS=$(FUTURE_DAYS) \
		PYTHONPATH=$(CURDIR)/tests/timeshift \
		$(BIN)/pytest -n $(PYTEST_WORKERS) -q $(FUTURE_PATHS) || exit 1; \
	done

test: lint test-sqlite test-postgres test-future

lock: $(TEST_STAMP)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python deploy/lockfile.py update $(if $(UPGRADE),--upgrade)

bench: $(TEST_STAMP)
	$(BIN)/python bench/upload.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
