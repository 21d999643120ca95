# Net Hospital: the two commands of a fresh machine are `make run` and `make test` (README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTEST := $(VENV)/bin/pytest -p no:cacheprovider
SERVICES := $(PY) scripts/test_services.py
CHROMIUM := /usr/bin/chromium
# Two xdist workers by default; `make test PYTEST_WORKERS=0` runs everything in one process.
PYTEST_WORKERS ?= 2

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1
export DEBIAN_FRONTEND := noninteractive

.PHONY: help venv install install-dev run lint chromium test test-sqlite test-browser test-postgres

help:
	@echo "make run     install into $(VENV) and serve the demo on http://127.0.0.1:8000/ (nethospital serve)"
	@echo "make test    lint, type-check, migration check, tests on SQLite, browser tests, tests on PostgreSQL"
	@echo "make lint    ruff and mypy only"

$(PY):
	$(PYTHON) -m venv $(VENV)

venv: $(PY)

# `pip install -e` runs again only when pyproject.toml changed since the last install (the code
# itself is installed in editable mode, so edits need no reinstall). Delete .venv to start over.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(VENV)/bin/nethospital serve

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy nethospital

# Browser tests drive Debian's Chromium (not a Playwright download).
chromium:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "ERROR: $(CHROMIUM) is missing and cannot be installed here (needs root and apt-get)." >&2; \
		echo "       Install Debian's chromium package: sudo apt-get install -y chromium" >&2; \
		exit 1; \
	fi; \
	echo "Installing Debian's chromium..."; \
	apt-get install -y -q chromium </dev/null || { apt-get update -q </dev/null && apt-get install -y -q chromium </dev/null; }; \
	if [ ! -x $(CHROMIUM) ]; then echo "ERROR: apt-get did not install $(CHROMIUM)." >&2; exit 1; fi

# The one test command (.ci/run calls it). Each step stops the run on failure.
test: install-dev chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy nethospital
	env -u DATABASE_URL $(PY) manage.py makemigrations --check --dry-run
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-browser
	$(MAKE) --no-print-directory test-postgres

# Everything but the browser tests on the embedded SQLite; `postgres` tests are skipped here.
test-sqlite:
	$(SERVICES) --pass sqlite --redis -- $(PYTEST) -n $(PYTEST_WORKERS) -m "not browser"

# Browser tests in one process: Playwright's sync API runs an event loop in the test thread, so the
# ORM calls of these tests need DJANGO_ALLOW_ASYNC_UNSAFE, and one live server keeps them simple.
test-browser:
	DJANGO_ALLOW_ASYNC_UNSAFE=true NETHOSPITAL_CHROMIUM=$(CHROMIUM) \
		$(SERVICES) --pass sqlite --no-tests-ok -- $(PYTEST) -p no:xdist -m browser

# Everything but the browser tests again, on PostgreSQL (found or started by scripts/test_services.py).
test-postgres:
	$(SERVICES) --pass postgres --redis -- $(PYTEST) -n $(PYTEST_WORKERS) -m "not browser"
