# callguard: `make run` to try it (zero set-up), `make test` for the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
PGHOST ?= 127.0.0.1
PGPORT ?= 5432
PGUSER ?= postgres
TEST_DB ?= callguard_test
TEST_WORKERS ?= 2
export CALLGUARD_TEST_DATABASE_URL ?= postgresql+psycopg://$(PGUSER)@$(PGHOST):$(PGPORT)/$(TEST_DB)
export CALLGUARD_TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Two installs, each remembered by a stamp in the virtualenv (redone when pyproject.toml changes):
# `make run` needs only callguard and what it runs on; the suite, the linters and the benchmarks
# need the dev tools as well. Installing the dev tools also satisfies `make run`.
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed

$(RUNTIME_STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUNTIME_STAMP)

install: $(DEV_STAMP) ## Create the virtualenv and install callguard with its dev tools

run: $(RUNTIME_STAMP) ## Zero set-up: SQLite, in-process Redis, demo data, on localhost:5000 (PORT=8080 for another port)
	$(BIN)/callguard db upgrade
	$(BIN)/callguard demo
	@echo
	@echo "callguard is starting on http://localhost:$(PORT)"
	@echo "Place a simulated call from another terminal (DEMO-004 may only write to us):"
	@echo "    TWILIO_AUTH_TOKEN=demo-auth-token $(BIN)/callguard simulate-call +447400100004 --url http://localhost:$(PORT)"
	@echo "Sign in at http://localhost:$(PORT)/sign-in as demo.supervisor / demo-supervisor-pass or demo.agent / demo-agent-pass"
	@echo
	TWILIO_ACCOUNT_SID=$${TWILIO_ACCOUNT_SID:-ACdemo0000000000000000000000000000} \
	TWILIO_AUTH_TOKEN=$${TWILIO_AUTH_TOKEN:-demo-auth-token} \
	$(BIN)/flask --app telephony:create_app run --port $(PORT)

services: ## Start PostgreSQL and Redis if they are installed but stopped
	@bash scripts/services.sh

browser: ## Debian's Chromium for the browser tests (installed when missing)
	@bash scripts/chromium.sh

sentinel: ## Debian's redis-sentinel for the Sentinel failover tests (installed when missing)
	@bash scripts/sentinel.sh

pgbouncer: ## Debian's pgbouncer for the PgBouncer tests (installed when missing)
	@bash scripts/pgbouncer.sh

test: install services browser sentinel pgbouncer ## The whole suite against real PostgreSQL and Redis (fresh database each run)
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: install ## ruff, mypy --strict (package, tests, bench) and the import layers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

drills: install sentinel pgbouncer ## Fault drills: the Procfile processes through failures, on infrastructure of their own
	@bash bench/haproxy.sh
	$(BIN)/python -m bench.drills

bench: install services ## Benchmarks: print their figures
	@bash scripts/wrk.sh
	$(BIN)/python -m bench.inbound
	$(BIN)/python -m bench.webhooks
	$(BIN)/python -m bench.import_customers
	$(BIN)/python -m bench.call_flow

first-run: ## Seconds from a fresh clone's `make run` to its sign-in page, beside a bare install
	$(PYTHON) -m bench.first_run

.PHONY: help install run services browser sentinel pgbouncer test lint bench drills first-run
