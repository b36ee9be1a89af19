# pqh: `make run` runs the service, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup services lint bench bench-fairness clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

# A local secret key, made once and kept out of git; honcho and `make run` read .env.
.env:
	$(PYTHON) -c "import secrets; print('PQH_SECRET_KEY=' + secrets.token_urlsafe(50))" > .env

# Checks PostgreSQL and Redis, creates the database if missing, migrates, creates the demo users.
services: $(STAMP) .env
	set -a && . ./.env && set +a && $(PY) manage.py bootstrap

run: services
	@echo "Starting web (http://127.0.0.1:8000), worker and Flower (http://127.0.0.1:5555). Ctrl-C stops all."
	set -a && . ./.env && set +a && exec $(VENV)/bin/honcho -f Procfile start

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench-fairness: services
	$(PY) bench/fairness.py

bench: bench-fairness

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
