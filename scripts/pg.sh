#!/bin/bash
# A private PostgreSQL cluster for Kiva's development and tests.
#
#   scripts/pg.sh start|stop [fast|immediate]|status|url
#
# The cluster lives in /tmp/kiva-pg-$PG_PORT (data and socket), a folder the
# postgres account can reach whatever the checkout's parents allow; `.pg` in the
# project points to it (git-ignored). initdb refuses root: as root the cluster runs
# as the postgres account. Connections: trust on the private socket only (no TCP).
# `start` also creates the database $PG_DB with the schema (production/migrate.py: run `make venv`
# first) and the seed data.
# PG_FSYNC=on (default off, for the test suite's speed): production durability, for
# benchmarks and drills; it applies when `start` starts the server.
set -euo pipefail

PG_PORT=${PG_PORT:-5433}
PG_DB=${PG_DB:-kiva}
PG_DIR=${PG_DIR:-/tmp/kiva-pg-$PG_PORT}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" = 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi
pg_ctl() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" "$@"; }
psql_su() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres "$@"; }

url() { echo "host=$PG_DIR port=$PG_PORT dbname=$PG_DB user=postgres"; }

start() {
  if [ ! -d "$PG_DIR/data" ]; then
    mkdir -p "$PG_DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
    chmod 755 "$PG_DIR"  # the socket must be reachable by other local accounts
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log"
  fi
  if ! pg_ctl status >/dev/null 2>&1; then
    pg_ctl -w -l "$PG_DIR/server.log" \
      -o "-p $PG_PORT -k $PG_DIR -c listen_addresses='' -c max_connections=200 -c fsync=${PG_FSYNC:-off}" start >/dev/null
  fi
  ln -sfn "$PG_DIR" "$here/.pg"
  if ! psql_su -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    psql_su -d postgres -c "CREATE DATABASE $PG_DB"
    # the schema by its migrations (production/migrate.py, the project's venv), then the seed data
    (cd "$here" && venv/bin/python -m production.migrate "$(url)" init data.sql) >/dev/null
  fi
  echo "PostgreSQL ready: $(url)"
}

stop() {  # [mode]: fast by default; immediate is a crash, for the outage drill
  if [ -d "$PG_DIR/data" ] && pg_ctl status >/dev/null 2>&1; then
    pg_ctl -w -m "${1:-fast}" stop >/dev/null
  fi
  echo "PostgreSQL stopped ($PG_DIR)"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-fast}" ;;
  status) pg_ctl status ;;
  url) url ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
