# The two commands: `make run` serves the API with demo data; `make test` runs every quality gate.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system
export UV_PYTHON ?= $(PYTHON)
# uv from PATH, else the copy `bootstrap` installs into the user's site-packages.
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --no-sync

.PHONY: help bootstrap sync sync-runtime run serve migrate seed test lint format typecheck contracts deploy-lint pytest postgres-binaries chromium fuzz audit clean

help:
	@echo "make run    - install, migrate, seed demo data and serve on http://127.0.0.1:$${PORT:-8000}"
	@echo "make test   - ruff, mypy, import-linter and pytest (SQLite + PostgreSQL) with coverage"
	@echo "make fuzz   - the long fuzzing profile (FUZZ_EXAMPLES=100 cases per operation, mode and caller)"
	@echo "make audit  - pip-audit of the locked dependencies (needs the PyPI vulnerability API)"
	@echo "make lint | typecheck | contracts | deploy-lint | pytest | format | migrate | seed | clean"

bootstrap:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --user --quiet uv || \
		$(PYTHON) -m pip install --user --quiet --break-system-packages uv

# Everything: the runtime and the dev group (test, lint and deployment-check tools), as `make test` needs.
sync: bootstrap
	$(UV) sync --locked --all-packages

# Serving needs the runtime dependencies only (no dev group). --inexact leaves installed packages alone, so a
# checkout that ran `make test` keeps its dev tools and switching between `make run` and `make test` installs
# and removes nothing.
sync-runtime: bootstrap
	$(UV) sync --locked --all-packages --no-dev --inexact

run: sync-runtime
	$(RUN) shop serve --setup

migrate: sync-runtime
	$(RUN) shop migrate

seed: sync-runtime
	$(RUN) shop seed-demo

test: sync lint typecheck contracts deploy-lint postgres-binaries chromium pytest

lint:
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format:
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

typecheck:
	$(RUN) mypy

contracts:
	$(RUN) lint-imports

# Offline checks of the deployment files: hadolint, the compose-spec schema (bundled with
# check-jsonschema) and the Kubernetes schemas (bundled with kubernetes-validate).
deploy-lint:
	$(RUN) hadolint Dockerfile
	$(RUN) check-jsonschema --builtin-schema vendor.compose-spec deploy/docker-compose.yml
	$(RUN) kubernetes-validate --strict --quiet $$(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)

# The suite starts its own PostgreSQL from the server binaries; install them only where missing.
postgres-binaries:
	@$(PYTHON) tests/support/find_postgres.py >/dev/null 2>&1 || { \
		echo "PostgreSQL server binaries not found: installing them with apt-get"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

# The OAuth browser test drives Debian's chromium through Playwright (which never downloads a browser).
chromium:
	@test -x /usr/bin/chromium || { \
		echo "chromium not found: installing it with apt-get"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Two pytest-xdist workers (each with its own PostgreSQL, Redis and apps): the suite is half waiting on
# processes, servers and sockets, so two workers on 2 cores take about 4.5 minutes instead of 8.
PYTEST_WORKERS ?= 2
pytest:
	$(RUN) pytest -n $(PYTEST_WORKERS)

# pip-audit of every locked third-party package against PyPI's vulnerability data. Needs pypi.org's JSON API
# (this workplace reaches only the package index, so it cannot run here: docs/quality.md); --strict fails on
# any package it could not look up, so "could not check" never passes as "clean".
audit: sync
	@mkdir -p var
	$(UV) export --locked --all-packages --no-emit-workspace --no-hashes --format requirements-txt --quiet -o var/audit-requirements.txt
	$(RUN) pip-audit --strict --disable-pip --no-deps --progress-spinner off -r var/audit-requirements.txt

# Long fuzzing profile: random seeds, thousands of cases (docs/quality.md). SQLite only: the requests
# generated do not depend on the database.
FUZZ_EXAMPLES ?= 100
fuzz: sync
	SCHEMATHESIS_EXAMPLES=$(FUZZ_EXAMPLES) TEST_BACKENDS=sqlite $(RUN) pytest tests/app/test_fuzz.py --no-cov -q -s

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
