# Kiva — the two commands: `make run` serves the app on http://127.0.0.1:5000
# (SQLite, zero set-up), `make check` runs every check. Every target is idempotent.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := venv
BIN := $(VENV)/bin
APP_PORT ?= 5000

# the private PostgreSQL cluster of development and tests (scripts/pg.sh)
PG_PORT ?= 5433
PG_DIR ?= /tmp/kiva-pg-$(PG_PORT)
export PG_PORT PG_DIR
PG_URL = host=$(PG_DIR) port=$(PG_PORT) dbname=$(1) user=postgres

# make check: its own SQLite file, its own PostgreSQL database, its own server port
TEST_SQLITE ?= /tmp/kiva-test-$(shell id -u).db
TEST_DB ?= kiva_test
TEST_PORT ?= 5055
# tests forge tokens with the server's secret: a throw-away one, for tests only
TEST_SECRET ?= kiva-test-secret-not-for-production
# a short login-throttling window, so that the tests can see it end
export APP_THROTTLE_SECONDS = 2



.PHONY: help venv db run start stop pg-start pg-stop check lint test-sqlite test-pg test-ext clean

help:
	@echo "make run    # set up (venv, SQLite database) and serve on http://127.0.0.1:$(APP_PORT)"
	@echo "make check  # lint, then the test suite on SQLite, PostgreSQL and a live server"
	@echo "other targets: venv db start stop pg-start pg-stop clean (see README.md)"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# back to the seed data
db: venv
	APP_CONFIG=app.conf $(BIN)/flask --app app db-init

kiva.db:
	$(MAKE) db

run: venv kiva.db
	APP_CONFIG=app.conf $(BIN)/flask --app app run --host 127.0.0.1 --port $(APP_PORT)

start: venv kiva.db
	./start.sh

stop:
	./stop.sh

pg-start:
	scripts/pg.sh start

pg-stop:
	scripts/pg.sh stop

check: lint test-sqlite test-pg test-ext
	@echo "make check: all passed"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-sqlite: venv
	rm -f $(TEST_SQLITE)
	export APP_CONFIG=app.conf KIVA_SQLITE=$(TEST_SQLITE) APP_SECRET=$(TEST_SECRET); \
	$(BIN)/flask --app app db-init && FLASK_TESTER_APP=app $(BIN)/pytest

test-pg: venv
	PG_DB=$(TEST_DB) scripts/pg.sh start
	export APP_CONFIG=pg.conf KIVA_DB="$(call PG_URL,$(TEST_DB))" APP_SECRET=$(TEST_SECRET); \
	$(BIN)/flask --app app db-init && FLASK_TESTER_APP=app $(BIN)/pytest

# the same tests against a live server on PostgreSQL
test-ext: venv
	PG_DB=$(TEST_DB) scripts/pg.sh start
	export APP_CONFIG=pg.conf KIVA_DB="$(call PG_URL,$(TEST_DB))" APP_SECRET=$(TEST_SECRET) \
	  APP_PORT=$(TEST_PORT) APP_LOG=/tmp/kiva-test-$(TEST_PORT).log APP_PID=/tmp/kiva-test-$(TEST_PORT).pid; \
	$(BIN)/flask --app app db-init && ./stop.sh >/dev/null && ./start.sh && \
	{ KIVA_AUDIT_LOG=$$APP_LOG FLASK_TESTER_APP=http://127.0.0.1:$(TEST_PORT) $(BIN)/pytest; rc=$$?; ./stop.sh; exit $$rc; }

clean:
	-./stop.sh
	-scripts/pg.sh stop
	rm -rf $(VENV) kiva.db app.log app.pid .pg .pytest_cache .ruff_cache .mypy_cache .hypothesis __pycache__ tests/__pycache__
