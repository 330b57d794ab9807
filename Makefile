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

# production (docs/deploying.md): make deploy copies the app to DEPLOY_TARGET, a
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


.PHONY: help venv venv-dev db run start stop pg-start pg-stop check system-deps check-stages test-in-process drills drill-stages test-ext-and-recovery lint \
  test-sqlite test-pg test-ext test-apache test-outage fuzz deploy db-setup apache-start apache-stop bench flood \
  bench-metrics bench-fairness bench-profile bench-instructions test-schema mutation backup restore migrate test-restore test-pitr test-recovery test-apache-drills \
  cluster-start cluster-stop cluster-status test-cluster bench-cluster ha-start ha-stop ha-status test-ha clean

help:
	@echo "make run    # set up (venv, SQLite database) and serve on http://127.0.0.1:$(APP_PORT)"
	@echo "make check  # lint, then the test suite on SQLite, PostgreSQL and a live server"
	@echo "make drills # outage, restore, PITR, slow clients, TLS, log rotation, fairness… (CI, after make check)"
	@echo "make deploy # copy to DEPLOY_TARGET=$(DEPLOY_TARGET), venv, migrations; DB_INIT=1|demo resets the database"
	@echo "other targets: venv db start stop pg-start pg-stop db-setup apache-start apache-stop clean (see README.md and docs/)"

# venv: what running needs (make run); venv-dev: the tests and lint on top (make check…)
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@
venv-dev: $(VENV)/.installed-dev
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
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

pg-start: venv
	scripts/pg.sh start

pg-stop:
	scripts/pg.sh stop

# on a fresh Debian machine: the Debian packages first (installed as root, or the
# command to run printed), then the venv, then lint and two independent stages side by side
# (each on ports and databases of its own, outputs kept apart): Apache, and SQLite →
# PostgreSQL → schemathesis in a row (lint is short: the second stage starts when it ends,
# and any failure fails make check). The drills (outages, recoveries, floods, slow clients,
# TLS, log rotation…) and the suite once more against the development server are make
# drills', which CI runs after it (.ci/run): make check stays about 3 minutes on 2 cores
CHECK_JOBS ?= 2
check: system-deps
	@date +%s > /tmp/kiva-check-start-$(APACHE_PORT)
	$(MAKE) --no-print-directory venv-dev
	@# the shared cluster and its databases, before the stages use them side by side
	PG_DB=$(TEST_DB) scripts/pg.sh start && scripts/pg.sh start
	$(MAKE) --no-print-directory -j$(CHECK_JOBS) --output-sync=recurse check-stages
	@# make deploy trusts a check of the committed state it deploys
	@if [ -z "$$(git status --porcelain 2>/dev/null)" ]; then \
	  mkdir -p .run && touch .run/checked-$$(git rev-parse HEAD); fi
	@echo "make check: all passed in $$(( $$(date +%s) - $$(cat /tmp/kiva-check-start-$(APACHE_PORT)) )) s (the packages installed before)"

system-deps:
	scripts/system-deps.sh

# in this order: with CHECK_JOBS=2, lint and Apache first
check-stages: lint test-apache test-in-process

# what CI runs after make check (.ci/run): the drills, and the suite against the development
# server (test-ext: make check runs it through Apache, test-apache), side by side: the outage
# drill, the Apache drills, and test-ext → restore → PITR in a row (niced: the other two
# bound latencies); then, alone, the hashing-fairness drill (the stages' load would blur its
# bound; the production limits, none of the stages' test settings; its figures to /tmp, the
# committed bench/fairness-last-run.md is a benchmark's)
DRILLS_JOBS ?= 3
drills: system-deps
	@date +%s > /tmp/kiva-drills-start-$(APACHE_PORT)
	@# the shared cluster and its databases, before the stages use them side by side
	PG_DB=$(TEST_DB) scripts/pg.sh start && scripts/pg.sh start
	$(MAKE) --no-print-directory -j$(DRILLS_JOBS) --output-sync=recurse drill-stages
	FAIRNESS_OUT=/tmp/kiva-fairness-$(FLOOD_APACHE_PORT).md $(MAKE) --no-print-directory bench-fairness
	@echo "make drills: all passed in $$(( $$(date +%s) - $$(cat /tmp/kiva-drills-start-$(APACHE_PORT)) )) s"

drill-stages: test-outage test-apache-drills test-ext-and-recovery

# the restore and point-in-time recovery drills, in a row (clusters and servers of their own)
test-recovery:
	$(MAKE) --no-print-directory test-restore
	$(MAKE) --no-print-directory test-pitr

test-ext-and-recovery:
	nice -n 10 $(MAKE) --no-print-directory test-ext
	nice -n 10 $(MAKE) --no-print-directory test-recovery

# niced: the Apache run's throttling tests count seconds while bcrypt (cost 12) takes
# the CPU; the in-process stages yield it to them
test-in-process:
	nice -n 10 $(MAKE) --no-print-directory test-sqlite
	nice -n 10 $(MAKE) --no-print-directory test-pg
	nice -n 10 $(MAKE) --no-print-directory test-schema

# a short login-throttling window in test runs only, so that the tests can see it end
# (long enough for 5 failed bcrypt checks at cost 12 on a loaded machine); each test
# names a client address of its own through X-Forwarded-For (127.0.0.1 trusted as a
# proxy): one test's failed logins do not throttle the next one's address
test-sqlite test-pg test-ext test-outage test-restore test-pitr mutation: export KIVA_THROTTLE_SECONDS = 8
# through Apache, bcrypt at cost 12 on a loaded machine, the other stages running beside
# it (make check): a test's failed checks and what it checks after them need longer
test-apache test-apache-drills: export KIVA_THROTTLE_SECONDS = 20
test-sqlite test-pg test-ext test-apache test-apache-drills test-outage mutation: export KIVA_TRUSTED_PROXIES = 127.0.0.1
# the suite hashes many passwords as one user or from one address (the fuzzer…), and races
# two registrations (two hashes at once): the per-client limit of password hashing out of
# its way, a second hashing slot; tests/test_hashing.py checks both in-process
test-sqlite test-pg test-ext test-apache test-apache-drills test-outage test-schema mutation: export KIVA_HASH_LIMIT = 100000 per minute
test-sqlite test-pg test-ext test-apache test-apache-drills test-outage test-schema mutation: export KIVA_HASH_SLOTS = 2
# their databases start from the seed data: the suite must leave exactly that (conftest.py);
# test-sqlite and test-pg start on the upgraded database (generated rows, drills/upgrade.py):
# the suite must leave the counts it found there
test-ext test-apache: export KIVA_SEED_CHECK = 1
# the scrape token of GET /metrics in test runs (tests/test_metrics.py reads it too)
TEST_METRICS_TOKEN ?= kiva-test-metrics-token-not-for-production
test-sqlite test-pg test-ext test-apache test-apache-drills test-outage test-cluster mutation: export KIVA_METRICS_TOKEN = $(TEST_METRICS_TOKEN)

lint: venv-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# TESTS: what pytest runs in-process (make fuzz narrows it to the fuzzer)
TESTS ?=
# the in-process suites run on an upgraded database: created at the baseline schema,
# filled with UPGRADE_ROWS generated rows, migrated to the latest (drills/upgrade.py
# checks every row kept); test-ext and test-apache run on new ones (db-init, DB_INIT)
UPGRADE_ROWS ?= 4000
test-sqlite: venv-dev
	rm -f $(TEST_SQLITE)
	export APP_CONFIG=app.conf KIVA_SQLITE=$(TEST_SQLITE) APP_SECRET=$(TEST_SECRET); \
	$(BIN)/python drills/upgrade.py --sqlite $(TEST_SQLITE) $(UPGRADE_ROWS) && FLASK_TESTER_APP=app $(BIN)/pytest $(TESTS)

# the 1,000 password changes seen across processes (test_localcache) on SQLite; 100 here:
# the local cache's shared generation is the same code whatever the engine
test-pg: venv-dev
	PG_DB=$(TEST_DB) scripts/pg.sh start
	export APP_CONFIG=pg.conf KIVA_DB="$(call PG_URL,$(TEST_DB))" APP_SECRET=$(TEST_SECRET) KIVA_TEST_CHANGES=100; \
	$(BIN)/python drills/upgrade.py "$$KIVA_DB" $(UPGRADE_ROWS) && FLASK_TESTER_APP=app $(BIN)/pytest $(TESTS)

# the same tests against a live server on PostgreSQL
test-ext: venv-dev
	PG_DB=$(TEST_DB) scripts/pg.sh start
	export APP_CONFIG=pg.conf KIVA_DB="$(call PG_URL,$(TEST_DB))" APP_SECRET=$(TEST_SECRET) \
	  APP_PORT=$(TEST_PORT) APP_LOG=/tmp/kiva-test-$(TEST_PORT).log APP_PID=/tmp/kiva-test-$(TEST_PORT).pid; \
	$(BIN)/flask --app app db-init && ./stop.sh >/dev/null && ./start.sh && \
	{ KIVA_AUDIT_LOG=$$APP_LOG FLASK_TESTER_APP=http://127.0.0.1:$(TEST_PORT) $(BIN)/pytest; rc=$$?; ./stop.sh; exit $$rc; }

# mutation testing (scripts/mutation.py, tests/MUTANTS.md): mutmut mutates the modules of
# pyproject.toml's [tool.mutmut] only_mutate and runs the in-process SQLite suite against
# each mutant; prints the score per module and the survivors. Not part of make check: it
# takes long (see tests/MUTANTS.md). MUTANTS narrows it to some mutants ("paging.*")
MUTATION_SQLITE ?= /tmp/kiva-mutation-$(shell id -u).db
MUTANTS ?=
mutation: venv-dev
	@# mutants/ is kept: mutmut reruns only the mutants of the functions changed since
	rm -f $(MUTATION_SQLITE)
	@# the in-process suite's settings: those of test-sqlite (the exports above name mutation too)
	@# 20 password changes seen across processes (test_localcache), not 1,000: every mutant reaching
	@# a token check runs that test, and 20 catch a missed bump as surely
	export APP_CONFIG=app.conf KIVA_SQLITE=$(MUTATION_SQLITE) APP_SECRET=$(TEST_SECRET) FLASK_TESTER_APP=app \
	  KIVA_TEST_CHANGES=20; \
	$(BIN)/python drills/upgrade.py --sqlite $(MUTATION_SQLITE) $(UPGRADE_ROWS) >/dev/null && \
	MUTANTS='$(MUTANTS)' $(BIN)/python scripts/mutation.py

# more fuzzing than make check's: FUZZ_EXAMPLES examples per route, on both backends,
# with a random seed (make check's fuzzing is the same at every run: derandomized), and
# schemathesis with FUZZ_EXAMPLES examples per operation
FUZZ_EXAMPLES ?= 500
fuzz: venv-dev
	KIVA_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) KIVA_FUZZ_RANDOM=1 $(MAKE) --no-print-directory test-sqlite test-pg TESTS=tests/test_fuzz.py
	$(MAKE) --no-print-directory test-schema SCHEMA_EXAMPLES=$(FUZZ_EXAMPLES)

# the same tests through Apache httpd + mod_wsgi, deployed by make deploy to a new
# temporary folder, on its own PostgreSQL database set up by deploy/db-setup.sql, behind
# its buffering front (HAProxy, deploy/kiva-haproxy.cfg) on FRONT_PORT; then the
# deployment's security and make deploy's own checks (deploy/check.sh)
FRONT_PORT ?= $(shell echo $$(($(APACHE_PORT) + 1)))
test-apache: venv-dev
	$(MAKE) --no-print-directory db-setup DEPLOY_DB=$(TEST_DEPLOY_DB)
	MAKE="$(MAKE) --no-print-directory" KIVA_DB="host=$(PG_DIR) port=$(PG_PORT) dbname=$(TEST_DEPLOY_DB) user=$(DB_ROLE)" \
	  KIVA_OWNER_DB="host=$(PG_DIR) port=$(PG_PORT) dbname=$(TEST_DEPLOY_DB) user=$(DB_OWNER)" \
	  APP_SECRET=$(TEST_SECRET) APACHE_PORT=$(APACHE_PORT) \
	  FRONT_PORT=$(FRONT_PORT) PYTEST=$(BIN)/pytest PYTHON=$(BIN)/python deploy/check.sh suite

# the drills on the same kind of deployment (make drills; deploy/check.sh drills), its own
# database, Apache on DRILLS_APACHE_PORT, its front on the next port (plain HTTP), the two
# after for the TLS check (HTTPS, and port 80's redirect): slow clients through
# the front, TLS on the front for real, a real Prometheus on PROMETHEUS_PORT scraping a
# restarted Apache (drills/prometheus_check.py), the logs rotated under load, schemathesis
PROMETHEUS_PORT ?= 9190
DRILLS_APACHE_PORT ?= $(shell echo $$(($(APACHE_PORT) + 5)))
TEST_DRILLS_DB ?= kiva_test_drills
test-apache-drills: venv-dev
	$(MAKE) --no-print-directory db-setup DEPLOY_DB=$(TEST_DRILLS_DB)
	MAKE="$(MAKE) --no-print-directory" KIVA_DB="host=$(PG_DIR) port=$(PG_PORT) dbname=$(TEST_DRILLS_DB) user=$(DB_ROLE)" \
	  KIVA_OWNER_DB="host=$(PG_DIR) port=$(PG_PORT) dbname=$(TEST_DRILLS_DB) user=$(DB_OWNER)" \
	  APP_SECRET=$(TEST_SECRET) APACHE_PORT=$(DRILLS_APACHE_PORT) PROMETHEUS_PORT=$(PROMETHEUS_PORT) \
	  FRONT_PORT=$$(($(DRILLS_APACHE_PORT) + 1)) FRONT_TLS_PORT=$$(($(DRILLS_APACHE_PORT) + 2)) \
	  FRONT_HTTP_PORT=$$(($(DRILLS_APACHE_PORT) + 3)) PYTEST=$(BIN)/pytest PYTHON=$(BIN)/python deploy/check.sh drills

# the database outage drill: the app deployed under Apache (2 processes) on a private
# PostgreSQL cluster (port OUTAGE_PG_PORT, never PG_PORT's), which drills/outage.py
# stops (-m fast, then -m immediate) and starts again under a steady client load
OUTAGE_PG_PORT ?= 5450
OUTAGE_APACHE_PORT ?= 8095
test-outage: venv-dev
	MAKE="$(MAKE) --no-print-directory" APP_SECRET=$(TEST_SECRET) OUTAGE_PG_PORT=$(OUTAGE_PG_PORT) \
	  OUTAGE_APACHE_PORT=$(OUTAGE_APACHE_PORT) PYTHON=$(BIN)/python deploy/outage.sh

# schemathesis against the live server on PostgreSQL, its own database and port
# (scripts/schemathesis.sh): SCHEMA_EXAMPLES examples per operation, fixed seed
SCHEMA_DB ?= kiva_test_schema
SCHEMA_PORT ?= 9290
SCHEMA_EXAMPLES ?= 20
SCHEMA_SEED ?= 20261128
test-schema: venv-dev
	BIN=$(BIN) SCHEMA_DB=$(SCHEMA_DB) SCHEMA_PORT=$(SCHEMA_PORT) SCHEMA_EXAMPLES=$(SCHEMA_EXAMPLES) \
	  SCHEMA_SEED=$(SCHEMA_SEED) APP_SECRET=$(TEST_SECRET) scripts/schemathesis.sh

# backups (docs/operations.md): make backup, make restore BACKUP=<file>, of the database
# BACKUP_DB (a superuser's libpq string: every table, owner and grant), or of the SQLite
# file BACKUP_SQLITE when given; files named kiva-<UTC time>-schema<N>.dump[.db] + .json
# The variables reach the commands through the environment, never pasted into them (a
# value with a quote or `;` is a file name, not a command), and BACKUP_DB, which may hold
# a password, never appears on a command line (backup.py's "-": from BACKUP_DB).
BACKUP_DIR ?= backups
BACKUP_DB ?= host=$(PG_DIR) port=$(PG_PORT) dbname=$(DEPLOY_DB) user=postgres
backup restore: export BACKUP_DIR := $(BACKUP_DIR)
backup restore: export BACKUP_DB := $(BACKUP_DB)
backup restore: export BACKUP_SQLITE := $(BACKUP_SQLITE)
backup restore: export BACKUP := $(BACKUP)
backup: venv
	$(BIN)/python -m scripts.backup backup $${BACKUP_SQLITE:+--sqlite} "$${BACKUP_SQLITE:--}" "$$BACKUP_DIR"

restore: venv
	@[ -n "$$BACKUP" ] || { echo "make restore BACKUP=<a file of make backup>" >&2; exit 1; }
	$(BIN)/python -m scripts.backup restore $${BACKUP_SQLITE:+--sqlite} "$${BACKUP_SQLITE:--}" "$$BACKUP"

# schema migrations of the database of APP_CONFIG (app.conf: SQLite; pg.conf: KIVA_DB)
migrate: venv
	APP_CONFIG=$${APP_CONFIG:-app.conf} $(BIN)/flask --app app db-upgrade

# the restore drill: a private PostgreSQL cluster (fsync on) on RESTORE_PG_PORT, then
# SQLite, each served by Flask on RESTORE_APP_PORT (drills/restore_drill.py)
RESTORE_PG_PORT ?= 5760
RESTORE_APP_PORT ?= 9385
test-restore: venv-dev
	rm -rf /tmp/kiva-backups-$(RESTORE_APP_PORT)
	$(BIN)/python drills/restore_drill.py postgresql $(RESTORE_PG_PORT) $(RESTORE_APP_PORT) /tmp/kiva-backups-$(RESTORE_APP_PORT)
	$(BIN)/python drills/restore_drill.py sqlite /tmp/kiva-restore-$(RESTORE_APP_PORT).db $(RESTORE_APP_PORT) \
	  /tmp/kiva-backups-$(RESTORE_APP_PORT)
	rm -rf /tmp/kiva-backups-$(RESTORE_APP_PORT) /tmp/kiva-restore-$(RESTORE_APP_PORT).db

# the point-in-time recovery drill: a private cluster (fsync on) on PITR_PG_PORT archiving
# its WAL with pgBackRest, recovered into a scratch cluster on PITR_SCRATCH_PORT; Flask on
# PITR_APP_PORT; PITR_ROWS generated rows (drills/pitr_drill.py); about a minute
PITR_PG_PORT ?= 5761
PITR_SCRATCH_PORT ?= 5762
PITR_APP_PORT ?= 9386
PITR_ROWS ?= 20000
test-pitr: venv-dev
	$(BIN)/python drills/pitr_drill.py $(PITR_PG_PORT) $(PITR_SCRATCH_PORT) $(PITR_APP_PORT) $(PITR_ROWS)

# beyond one server (deploy/cluster.sh, docs/cluster.md): HAProxy on CLUSTER_FRONT_PORT
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
cluster-start: venv-dev
	MAKE="$(MAKE) --no-print-directory" deploy/cluster.sh start

cluster-stop:
	MAKE="$(MAKE) --no-print-directory" deploy/cluster.sh stop

cluster-status:
	deploy/cluster.sh status

# a new cluster in its own folder: the whole external test suite through HAProxy, the
# freshness of the shared cache across the nodes, then the drills (drills/cluster_drills.py)
test-cluster: export KIVA_THROTTLE_SECONDS = 20
test-cluster: export KIVA_TRUSTED_PROXIES = 127.0.0.1
test-cluster: export CLUSTER_FORWARDFOR_EXCEPT = 127.0.0.0/8
# the kill drill's slow reads (GET /cmp/hash: bcrypt at the production cost, in the hash
# slots since issue 20) at once on a node: more than the 2 slots of production, of each kind
test-cluster: export KIVA_PASSWORD_SLOTS = 8
test-cluster: export KIVA_HASH_SLOTS = 8
# the suite through the cluster hashes as one user and from one address (make check's limit above)
test-cluster: export KIVA_HASH_LIMIT = 100000 per minute
test-cluster: system-deps venv-dev
	MAKE="$(MAKE) --no-print-directory" APP_SECRET=$(TEST_SECRET) PYTEST=$(BIN)/pytest PYTHON=$(BIN)/python \
	  CLUSTER_DIR=$(CLUSTER_DIR)-test deploy/cluster-check.sh

# the database highly available (deploy/ha.sh, docs/high-availability.md): every host in a
# network namespace on the bridge kivaha0 (HA_NET.0/24), Patroni + etcd, drills (root only)
HA_NET ?= 10.77.0
HA_DIR ?= /tmp/kiva-ha
export HA_NET HA_DIR
ha-start: system-deps venv-dev
	MAKE="$(MAKE) --no-print-directory" deploy/ha.sh start

ha-stop:
	deploy/ha.sh stop

ha-status:
	deploy/ha.sh status

test-ha: export KIVA_THROTTLE_SECONDS = 20
# the redis drill polls with passwords from one client address (the bridge's): the
# hashing budget per client (production/ratelimit.py) out of its way, as for test-cluster
test-ha: export KIVA_HASH_LIMIT = 100000 per minute
test-ha: export KIVA_HASH_SLOTS = 2
test-ha: system-deps venv-dev
	MAKE="$(MAKE) --no-print-directory" APP_SECRET=$(TEST_SECRET) PYTHON=$(BIN)/python HA_DIR=$(HA_DIR)-test \
	  deploy/ha-check.sh

# Redis cache vs none through HAProxy: requests per second and PostgreSQL CPU per request
bench-cluster: venv-dev
	MAKE="$(MAKE) --no-print-directory" PYTHON=$(BIN)/python CLUSTER_DIR=$(CLUSTER_DIR)-bench deploy/cluster-bench.sh

# production: see docs/deploying.md. Refuses uncommitted changes, and runs make check
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

# FRONT_PORT=<port>: HAProxy there in front of Apache, as in production (deploy/front.sh)
apache-start:
	DEPLOY_TARGET="$(DEPLOY_TARGET)" APACHE_PORT=$(APACHE_PORT) deploy/apache.sh start

apache-stop:
	DEPLOY_TARGET="$(DEPLOY_TARGET)" deploy/apache.sh stop

# the performance benchmark (bench/bench.py, bench/RESULTS.md): its own PostgreSQL cluster
# (port BENCH_PG_PORT), Apache on BENCH_APP_PORT (app), BENCH_FLOOR_PORT (raw WSGI floors),
# BENCH_CACHE_PORT (in-process cache variant), BENCH_FRAMEWORK_PORT (Flask and
# FlaskSimpleAuth floors) and BENCH_SMALL_PORT (the app on the small database);
# BENCH_ROUNDS interleaved rounds of BENCH_DURATION seconds per scenario; the issue #24
# targets as `target NAME: VALUE (goal …) met|missed`; about 10 minutes; not in make check.
# BENCH_COMPARE_URL=<url> BENCH_COMPARE_AUTH=<Authorization value>: an outside server's GET,
# measured in the same rounds as Kiva's token GET (`ratio token_vs_compare`); exported, not
# written in the recipe, so that make never echoes the header's secret; BENCH_COMPARE_PIDFILE=
# <its main process's pid file>: its CPU per request too (`cpu server_compare_vs_token`)
BENCH_PG_PORT ?= 6140
BENCH_APP_PORT ?= 8790
BENCH_FLOOR_PORT ?= 8791
BENCH_CACHE_PORT ?= 8792
BENCH_FRAMEWORK_PORT ?= 8793
BENCH_SMALL_PORT ?= 8794
BENCH_PROCESSES ?= $(APACHE_PROCESSES)
BENCH_THREADS ?= $(APACHE_THREADS)
BENCH_DURATION ?= 4
BENCH_ROUNDS ?= 7
BENCH_NS ?= 1000,1000000
BENCH_COMPARE_URL ?=
BENCH_COMPARE_AUTH ?=
BENCH_COMPARE_PIDFILE ?=
bench: export BENCH_COMPARE_URL := $(BENCH_COMPARE_URL)
bench: export BENCH_COMPARE_AUTH := $(BENCH_COMPARE_AUTH)
bench: export BENCH_COMPARE_PIDFILE := $(BENCH_COMPARE_PIDFILE)
bench:
	PG_PORT=$(BENCH_PG_PORT) PG_DIR=/tmp/kiva-pg-$(BENCH_PG_PORT) BENCH_PROCESSES=$(BENCH_PROCESSES) \
	  BENCH_THREADS=$(BENCH_THREADS) BENCH_DURATION=$(BENCH_DURATION) BENCH_NS=$(BENCH_NS) \
	  BENCH_ROUNDS=$(BENCH_ROUNDS) BENCH_APP_PORT=$(BENCH_APP_PORT) BENCH_FLOOR_PORT=$(BENCH_FLOOR_PORT) \
	  BENCH_CACHE_PORT=$(BENCH_CACHE_PORT) BENCH_FRAMEWORK_PORT=$(BENCH_FRAMEWORK_PORT) \
	  BENCH_SMALL_PORT=$(BENCH_SMALL_PORT) /usr/bin/python3 bench/bench.py

# where the Python CPU of a token GET /things/<tid> goes (cProfile, in-process, bench/cpu_profile.py)
bench-profile: venv-dev
	PG_DB=kiva_profile scripts/pg.sh start
	export APP_CONFIG=server.conf KIVA_DB="$(call PG_URL,kiva_profile)" APP_SECRET=$(TEST_SECRET); \
	$(BIN)/flask --app app db-init && $(BIN)/python bench/cpu_profile.py

# instructions per request (open GET /stuff/<sid>, token and basic GET /things/<tid>, POST +
# DELETE pair, and make bench's floors) under callgrind (bench/instructions.py), and their
# ratios over the floors: repeatable to about 0.3 %, whatever the load of the machine; a
# few minutes. INSTR_WITHOUT=audit.audit_line,… takes hooks out.
INSTR_LOCAL_CACHE ?= 1
bench-instructions: venv-dev
	PG_DB=kiva_profile scripts/pg.sh start
	@# KIVA_LOCAL_CACHE as make deploy sets it (INSTR_LOCAL_CACHE=0: the freshness query per request)
	export APP_CONFIG=$(CURDIR)/server.conf KIVA_DB="$(call PG_URL,kiva_profile)" APP_SECRET=$(TEST_SECRET) \
	  KIVA_LOCAL_CACHE=$(INSTR_LOCAL_CACHE); \
	$(BIN)/flask --app app db-init && dir=$$(mktemp -d) && \
	INSTR_OUT=$$dir/callgrind.out valgrind --tool=callgrind --instr-atstart=no \
	  --callgrind-out-file=$$dir/callgrind.out $(BIN)/python bench/instructions.py 2>/dev/null; \
	status=$$?; rm -rf $$dir; exit $$status

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

# first logins under hashing floods (bench/fairness.py, issue 20): 4 threads of /cmp/hash by one
# user, 2 of /register from one address; the server of make flood (its ports); exit 1 past the bound
bench-fairness:
	FLOOD_PG_PORT=$(FLOOD_PG_PORT) FLOOD_APACHE_PORT=$(FLOOD_APACHE_PORT) FLOOD_PROCESSES=$(APACHE_PROCESSES) \
	  FLOOD_THREADS=$(APACHE_THREADS) /usr/bin/python3 bench/fairness.py

# what the metrics cost (bench/metrics_cost.py, bench/RESULTS.md): token GET with and without,
# CPU per request of each Apache tree; its own PostgreSQL and two Apaches; not part of make check
BENCH_METRICS_PG_PORT ?= 9192
BENCH_METRICS_PORT ?= 9193
bench-metrics:
	BENCH_METRICS_PG_PORT=$(BENCH_METRICS_PG_PORT) BENCH_METRICS_PORT=$(BENCH_METRICS_PORT) /usr/bin/python3 bench/metrics_cost.py

clean:
	-./stop.sh
	-scripts/pg.sh stop
	rm -rf $(VENV) mutants kiva.db app.log app.pid .pg .pytest_cache .ruff_cache .mypy_cache .hypothesis __pycache__ */__pycache__
