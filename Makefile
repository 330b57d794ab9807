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

# production (README "Deploying"): make deploy copies the app to DEPLOY_TARGET, a
# folder or user@host:folder, with a venv built by DEPLOY_PYTHON, mod_wsgi's Python
DEPLOY_TARGET ?= /tmp/kiva-deploy
DEPLOY_PYTHON ?= /usr/bin/python3
# the deployed app's database (written to the target's kiva.env when first deployed):
# by default the database DEPLOY_DB of the runtime role DB_ROLE in the `make pg-start`
# cluster; schema changes run as the owner role DB_OWNER (kiva-owner.env, never the app's)
DEPLOY_DB ?= kiva_deploy
DB_ROLE ?= kiva
DB_OWNER ?= kiva_owner
KIVA_DB ?= host=$(PG_DIR) port=$(PG_PORT) dbname=$(DEPLOY_DB) user=$(DB_ROLE)
KIVA_OWNER_DB ?= host=$(PG_DIR) port=$(PG_PORT) dbname=$(DEPLOY_DB) user=$(DB_OWNER)
# a private Apache httpd + mod_wsgi serving DEPLOY_TARGET on 127.0.0.1:APACHE_PORT
APACHE_PORT ?= 8085
APACHE_PROCESSES ?= 2
APACHE_THREADS ?= 4
export APACHE_PROCESSES APACHE_THREADS
# make check's deployment: its own database (the folder is a new temporary one)
TEST_DEPLOY_DB ?= kiva_test_deploy


.PHONY: help venv db run start stop pg-start pg-stop check system-deps check-stages test-in-process-and-ext lint \
  test-sqlite test-pg test-ext test-apache test-outage fuzz deploy db-setup apache-start apache-stop bench flood clean \
  cluster-start cluster-stop cluster-status test-cluster bench-cluster

help:
	@echo "make run    # set up (venv, SQLite database) and serve on http://127.0.0.1:$(APP_PORT)"
	@echo "make check  # lint, then the test suite on SQLite, PostgreSQL and a live server"
	@echo "make deploy # copy to DEPLOY_TARGET=$(DEPLOY_TARGET), venv, DB_INIT=1 resets the database"
	@echo "other targets: venv db start stop pg-start pg-stop db-setup apache-start apache-stop clean (see README.md)"

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

# on a fresh Debian machine: the Debian packages first (installed as root, or the
# command to run printed), then lint, then three independent stages side by side (each
# on ports and databases of its own, outputs kept apart): Apache, the outage drill, and
# SQLite → PostgreSQL → live server in a row (test-pg and test-ext share TEST_DB)
CHECK_JOBS ?= 3
check: system-deps
	$(MAKE) --no-print-directory lint
	@# the shared cluster and its databases, before the stages use them side by side
	PG_DB=$(TEST_DB) scripts/pg.sh start && scripts/pg.sh start
	$(MAKE) --no-print-directory -j$(CHECK_JOBS) --output-sync=recurse check-stages
	@# make deploy trusts a check of the committed state it deploys
	@if [ -z "$$(git status --porcelain 2>/dev/null)" ]; then \
	  mkdir -p .run && touch .run/checked-$$(git rev-parse HEAD); fi
	@echo "make check: all passed"

system-deps:
	scripts/system-deps.sh

check-stages: test-apache test-outage test-in-process-and-ext

# niced: the Apache run's throttling tests count seconds while bcrypt (cost 12) takes
# the CPU; the in-process stages yield it to them
test-in-process-and-ext:
	nice -n 10 $(MAKE) --no-print-directory test-sqlite
	nice -n 10 $(MAKE) --no-print-directory test-pg
	nice -n 10 $(MAKE) --no-print-directory test-ext

# a short login-throttling window in test runs only, so that the tests can see it end
# (long enough for 5 failed bcrypt checks at cost 12 on a loaded machine); each test
# names a client address of its own through X-Forwarded-For (127.0.0.1 trusted as a
# proxy): one test's failed logins do not throttle the next one's address
test-sqlite test-pg test-ext test-outage: export APP_THROTTLE_SECONDS = 8
# through Apache, bcrypt at cost 12 on a loaded machine, the other stages running beside
# it (make check): a test's failed checks and what it checks after them need longer
test-apache: export APP_THROTTLE_SECONDS = 20
test-sqlite test-pg test-ext test-apache test-outage: export APP_TRUSTED_PROXIES = 127.0.0.1
# their databases start from the seed data: the suite must leave exactly that (conftest.py)
test-sqlite test-pg test-ext test-apache: export KIVA_SEED_CHECK = 1

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# TESTS: what pytest runs in-process (make fuzz narrows it to the fuzzer)
TESTS ?=
test-sqlite: venv
	rm -f $(TEST_SQLITE)
	export APP_CONFIG=app.conf KIVA_SQLITE=$(TEST_SQLITE) APP_SECRET=$(TEST_SECRET); \
	$(BIN)/flask --app app db-init && FLASK_TESTER_APP=app $(BIN)/pytest $(TESTS)

test-pg: venv
	PG_DB=$(TEST_DB) scripts/pg.sh start
	export APP_CONFIG=pg.conf KIVA_DB="$(call PG_URL,$(TEST_DB))" APP_SECRET=$(TEST_SECRET); \
	$(BIN)/flask --app app db-init && FLASK_TESTER_APP=app $(BIN)/pytest $(TESTS)

# the same tests against a live server on PostgreSQL
test-ext: venv
	PG_DB=$(TEST_DB) scripts/pg.sh start
	export APP_CONFIG=pg.conf KIVA_DB="$(call PG_URL,$(TEST_DB))" APP_SECRET=$(TEST_SECRET) \
	  APP_PORT=$(TEST_PORT) APP_LOG=/tmp/kiva-test-$(TEST_PORT).log APP_PID=/tmp/kiva-test-$(TEST_PORT).pid; \
	$(BIN)/flask --app app db-init && ./stop.sh >/dev/null && ./start.sh && \
	{ KIVA_AUDIT_LOG=$$APP_LOG FLASK_TESTER_APP=http://127.0.0.1:$(TEST_PORT) $(BIN)/pytest; rc=$$?; ./stop.sh; exit $$rc; }

# more fuzzing than make check's: FUZZ_EXAMPLES examples per route, on both backends,
# with a random seed (make check's fuzzing is the same at every run: derandomized)
FUZZ_EXAMPLES ?= 500
fuzz: venv
	KIVA_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) KIVA_FUZZ_RANDOM=1 $(MAKE) --no-print-directory test-sqlite test-pg TESTS=tests/test_fuzz.py

# the same tests through Apache httpd + mod_wsgi, deployed by make deploy to a new
# temporary folder, on its own PostgreSQL database set up by deploy/db-setup.sql
test-apache: venv
	$(MAKE) --no-print-directory db-setup DEPLOY_DB=$(TEST_DEPLOY_DB)
	MAKE="$(MAKE) --no-print-directory" KIVA_DB="host=$(PG_DIR) port=$(PG_PORT) dbname=$(TEST_DEPLOY_DB) user=$(DB_ROLE)" \
	  KIVA_OWNER_DB="host=$(PG_DIR) port=$(PG_PORT) dbname=$(TEST_DEPLOY_DB) user=$(DB_OWNER)" \
	  APP_SECRET=$(TEST_SECRET) APACHE_PORT=$(APACHE_PORT) PYTEST=$(BIN)/pytest deploy/check.sh

# the database outage drill: the app deployed under Apache (2 processes) on a private
# PostgreSQL cluster (port OUTAGE_PG_PORT, never PG_PORT's), which tests/outage.py
# stops (-m fast, then -m immediate) and starts again under a steady client load
OUTAGE_PG_PORT ?= 5450
OUTAGE_APACHE_PORT ?= 8095
test-outage: venv
	MAKE="$(MAKE) --no-print-directory" APP_SECRET=$(TEST_SECRET) OUTAGE_PG_PORT=$(OUTAGE_PG_PORT) \
	  OUTAGE_APACHE_PORT=$(OUTAGE_APACHE_PORT) PYTHON=$(BIN)/python deploy/outage.sh

# beyond one server (deploy/cluster.sh, README "Several servers"): HAProxy on CLUSTER_FRONT_PORT
# (runtime API socket in CLUSTER_DIR, stats page on CLUSTER_STATS_PORT), two Kiva nodes under
# Apache, PgBouncer, Redis (CLUSTER_CACHE=redis|none), PostgreSQL with fsync on
CLUSTER_FRONT_PORT ?= 9400
CLUSTER_STATS_PORT ?= 9401
CLUSTER_NODE1_PORT ?= 9410
CLUSTER_NODE2_PORT ?= 9411
CLUSTER_PGBOUNCER_PORT ?= 9420
CLUSTER_REDIS_PORT ?= 9430
CLUSTER_PG_PORT ?= 5860
CLUSTER_DIR ?= /tmp/kiva-cluster-$(CLUSTER_FRONT_PORT)
CLUSTER_CACHE ?= redis
export CLUSTER_FRONT_PORT CLUSTER_STATS_PORT CLUSTER_NODE1_PORT CLUSTER_NODE2_PORT CLUSTER_PGBOUNCER_PORT \
  CLUSTER_REDIS_PORT CLUSTER_PG_PORT CLUSTER_DIR CLUSTER_CACHE
cluster-start: venv
	MAKE="$(MAKE) --no-print-directory" deploy/cluster.sh start

cluster-stop:
	MAKE="$(MAKE) --no-print-directory" deploy/cluster.sh stop

cluster-status:
	deploy/cluster.sh status

# a new cluster in its own folder: the whole external test suite through HAProxy, the
# freshness of the shared cache across the nodes, then the drills (tests/cluster_drills.py)
test-cluster: export APP_THROTTLE_SECONDS = 20
test-cluster: export APP_TRUSTED_PROXIES = 127.0.0.1
test-cluster: export CLUSTER_FORWARDFOR_EXCEPT = 127.0.0.0/8
# the kill drill's slow reads (bcrypt) at once on a node: more than the 2 slots of production
test-cluster: export APP_PASSWORD_SLOTS = 8
test-cluster: system-deps venv
	MAKE="$(MAKE) --no-print-directory" APP_SECRET=$(TEST_SECRET) PYTEST=$(BIN)/pytest PYTHON=$(BIN)/python \
	  CLUSTER_DIR=$(CLUSTER_DIR)-test deploy/cluster-check.sh

# Redis cache vs none through HAProxy: requests per second and PostgreSQL CPU per request
bench-cluster: venv
	MAKE="$(MAKE) --no-print-directory" PYTHON=$(BIN)/python CLUSTER_DIR=$(CLUSTER_DIR)-bench deploy/cluster-bench.sh

# production: see README "Deploying". Refuses uncommitted changes, and runs make check
# unless it passed on this commit; DEPLOY_FORCE=1 skips both.
deploy:
ifneq ($(DEPLOY_FORCE),1)
	@[ -z "$$(git status --porcelain)" ] || { git status --short >&2; \
	  echo "make deploy: uncommitted changes: commit them first (or DEPLOY_FORCE=1)" >&2; exit 1; }
	@[ -f .run/checked-$$(git rev-parse HEAD) ] || $(MAKE) check
endif
ifneq ($(filter 1 demo,$(DB_INIT)),)
ifeq ($(origin KIVA_DB),file)
	$(MAKE) --no-print-directory db-setup
endif
endif
	DEPLOY_TARGET="$(DEPLOY_TARGET)" DEPLOY_PYTHON="$(DEPLOY_PYTHON)" KIVA_DB="$(KIVA_DB)" \
	  KIVA_OWNER_DB="$(KIVA_OWNER_DB)" DB_INIT=$(DB_INIT) deploy/deploy.sh

# the roles DB_ROLE (runtime) and DB_OWNER and the database DEPLOY_DB in the private
# cluster (deploy/db-setup.sql); trust authentication there: the passwords are random ones
db-setup:
	scripts/pg.sh start
	psql -X -q -v ON_ERROR_STOP=1 -h $(PG_DIR) -p $(PG_PORT) -U postgres -d postgres \
	  -v role=$(DB_ROLE) -v owner=$(DB_OWNER) -v db=$(DEPLOY_DB) -v password=$$(head -c 18 /dev/urandom | base64) \
	  -v owner_password=$$(head -c 18 /dev/urandom | base64) -f deploy/db-setup.sql

apache-start:
	DEPLOY_TARGET="$(DEPLOY_TARGET)" APACHE_PORT=$(APACHE_PORT) deploy/apache.sh start

apache-stop:
	DEPLOY_TARGET="$(DEPLOY_TARGET)" deploy/apache.sh stop

# the performance benchmark (bench/bench.py, bench/RESULTS.md): its own PostgreSQL cluster
# (port BENCH_PG_PORT), Apache on 8090 (app) and 8091 (raw WSGI floor); not part of make check
BENCH_PG_PORT ?= 5440
BENCH_PROCESSES ?= $(APACHE_PROCESSES)
BENCH_THREADS ?= $(APACHE_THREADS)
BENCH_DURATION ?= 6
BENCH_NS ?= 1000,100000,1000000
bench:
	PG_PORT=$(BENCH_PG_PORT) PG_DIR=/tmp/kiva-pg-$(BENCH_PG_PORT) BENCH_PROCESSES=$(BENCH_PROCESSES) \
	  BENCH_THREADS=$(BENCH_THREADS) BENCH_DURATION=$(BENCH_DURATION) BENCH_NS=$(BENCH_NS) /usr/bin/python3 bench/bench.py

# the password-guessing flood (bench/flood.py, bench/FLOOD.md, issue #10 point 4): its own
# PostgreSQL cluster (FLOOD_PG_PORT, fsync on) and Apache (FLOOD_APACHE_PORT); not part of make check
FLOOD_PG_PORT ?= 6060
FLOOD_APACHE_PORT ?= 8696
FLOOD_DURATION ?= 15
FLOOD_RATE ?= 10
FLOOD_PHASES ?= baseline:0,basic:8,basic:32,basic-botnet:32,basic+param:8,register:8,register-taken:8
flood:
	FLOOD_PG_PORT=$(FLOOD_PG_PORT) FLOOD_APACHE_PORT=$(FLOOD_APACHE_PORT) FLOOD_DURATION=$(FLOOD_DURATION) \
	  FLOOD_RATE=$(FLOOD_RATE) FLOOD_PHASES=$(FLOOD_PHASES) FLOOD_PROCESSES=$(APACHE_PROCESSES) \
	  FLOOD_THREADS=$(APACHE_THREADS) /usr/bin/python3 bench/flood.py

clean:
	-./stop.sh
	-scripts/pg.sh stop
	rm -rf $(VENV) kiva.db app.log app.pid .pg .pytest_cache .ruff_cache .mypy_cache .hypothesis __pycache__ tests/__pycache__
