# One command to try it, one to test it. See README.md.
SHELL := /bin/bash
PY := .venv/bin/python
# The real stack (make stack, make test) talks to these unless you say otherwise.
STACK_DATABASE_URL ?= postgres://postgres:postgres@127.0.0.1:5432/raffle
STACK_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run stack test lint format venv services migrate seed bench clean

venv:
	@bash scripts/venv.sh

services:
	@bash scripts/ensure_services.sh

## make run: embedded defaults (SQLite, in-process tasks, local cache), demo data, :8000
run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo ""
	@echo "  Admin:    http://127.0.0.1:8000/admin/   (staff: admin / admin-demo-password)"
	@echo "  API docs: http://127.0.0.1:8000/api/docs/"
	@echo "  Players:  alice, bob (verified), carol (unverified); password: player-demo-password"
	@echo ""
	$(PY) manage.py runserver 127.0.0.1:8000

## make stack: gunicorn + Celery worker + Celery beat under supervisord (a dead one restarts; Ctrl-C stops all)
stack: venv services
	@PGPASSWORD=postgres createdb -h 127.0.0.1 -U postgres raffle 2>/dev/null || true
	DATABASE_URL=$${DATABASE_URL:-$(STACK_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(STACK_REDIS_URL)} $(PY) manage.py migrate --noinput
	DATABASE_URL=$${DATABASE_URL:-$(STACK_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(STACK_REDIS_URL)} $(PY) manage.py seed_demo
	DATABASE_URL=$${DATABASE_URL:-$(STACK_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(STACK_REDIS_URL)} $(PY) scripts/stack.py

## make test: PostgreSQL and Redis installed and answering, then the whole suite against them
test: venv services
	DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/raffle} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	.venv/bin/pytest

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

format: venv
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

clean:
	rm -rf .venv db.sqlite3 staticfiles .pytest_cache .ruff_cache .hypothesis
