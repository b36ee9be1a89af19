# pqh: `make run` runs the service, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# honcho runs the Procfile's commands through the shell: find granian and celery in .venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test test-unit setup services lint bench bench-fairness bench-reliability bench-api bench-door bench-workers bench-waits bench-queue-cost clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

# Local secrets, made once and kept out of git: the secret key and the demo admin's password
# (`make run` adds Flower's login). One reader parses .env, python-dotenv, and never over what
# the environment sets: settings.py fills in from it (so `manage.py` run by hand sees it), and
# `make run` starts honcho under `dotenv run --no-override` with honcho's own .env reader off
# (`-e /dev/null`), so the Procfile's commands (Flower's password check) see the same values.
DOTENV := $(VENV)/bin/dotenv -f .env

.env:
	$(PYTHON) -c "import secrets; print('PQH_SECRET_KEY=' + secrets.token_urlsafe(50)); print('PQH_DEMO_ADMIN_PASSWORD=' + secrets.token_urlsafe(9))" > .env

# Checks PostgreSQL and Redis, creates the database if missing, migrates, creates the demo users.
services: $(STAMP) .env
	$(PY) manage.py bootstrap

# prometheus-client's multiprocess mode: every web and worker process writes its counts here and
# /metrics adds them up. Emptied at each start (Flower stays out of it: see the Procfile).
PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/.run/metrics

run: services
	@test -n "$$($(DOTENV) get FLOWER_BASIC_AUTH 2>/dev/null)" || $(PYTHON) -c "import secrets; print('FLOWER_BASIC_AUTH=flower:' + secrets.token_urlsafe(12))" >> .env
	mkdir -p $(PROMETHEUS_MULTIPROC_DIR) && rm -f $(PROMETHEUS_MULTIPROC_DIR)/*.db
	@$(DOTENV) run --no-override sh -c 'echo "Flower login: $${FLOWER_BASIC_AUTH%%:*} / $${FLOWER_BASIC_AUTH#*:}"'
	@echo "Starting web (http://127.0.0.1:8000), waits (long polls and event streams, http://127.0.0.1:8001), worker, beat and Flower (http://127.0.0.1:5555). Ctrl-C stops all."
	PROMETHEUS_MULTIPROC_DIR=$(PROMETHEUS_MULTIPROC_DIR) exec $(DOTENV) run --no-override $(VENV)/bin/honcho -e /dev/null -f Procfile start

# Every tier: unit (no services), integration (PostgreSQL, Redis, Celery workers), system (whole
# processes, the browser, faults, the benchmarks' smoke runs); the reference model's properties
# on every one of their random workloads (tests/sweep.py).
test: $(STAMP)
	PQH_TEST_SWEEP=full $(PY) -m pytest

# The unit tier alone: pure code, no PostgreSQL, no Redis, in seconds (the model's properties on
# every fifth workload and the worst known ones).
test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench-fairness: services
	$(PY) -m bench.fairness

# Load over HTTP through a worker host kill, a PostgreSQL outage and a Redis restart; its own
# database (pqh_reliability) and Redis server, web on 127.0.0.1:8102 (--port).
bench-reliability: $(STAMP)
	$(PY) -m bench.reliability

# The API load benchmark: starts the Procfile's web server on a database of its own (needs wrk).
bench-api: $(STAMP)
	$(PY) -m bench.api

# The door benchmark: tries before a lockout, a quiet and a heavy user beside attackers, what a
# refusal and the limits cost; the Procfile's web server on a database of its own (needs wrk).
bench-door: $(STAMP)
	$(PY) -m bench.door

# The worker path: 400 tasks of 0 and 50 ms through two slots, pqh against a plain Celery +
# django-celery-results worker, each on its own redis-server and database.
bench-workers: $(STAMP)
	$(PY) -m bench.workers

# The waiting benchmark: thousands of long polls and event streams held on the wait server while
# tasks end; the Procfile's web, waits and worker on a database and redis-server of its own (needs wrk).
bench-waits: $(STAMP)
	$(PY) -m bench.waits

# What a pick, an enqueue and a position cost in Redis with 10,000 users in 1,000 teams, and
# without teams; fairqueue alone on a redis-server of its own (no database, no worker).
bench-queue-cost: $(STAMP)
	$(PY) -m bench.queue_cost

bench: bench-fairness bench-reliability bench-api bench-door bench-workers bench-waits bench-queue-cost

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles .run
