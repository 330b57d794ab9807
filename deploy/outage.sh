#!/bin/bash
# make check's database outage drill (make test-outage): Kiva deployed and served by
# Apache httpd + mod_wsgi (2 processes) on a PostgreSQL cluster of its own, which
# drills/outage.py stops and starts again while its clients keep writing and reading.
#
# 1. a private cluster on OUTAGE_PG_PORT (never make check's shared one), with the
#    role and database of deploy/db-setup.sql,
# 2. make deploy DB_INIT=demo to a new folder under /tmp, Apache on OUTAGE_APACHE_PORT,
# 3. drills/outage.py (pg.sh stop -m fast, then -m immediate, and start),
# 4. Apache and the cluster stopped, whatever happened; the folder removed when passed.
#
# Environment: MAKE, APP_SECRET, OUTAGE_PG_PORT (5450), OUTAGE_APACHE_PORT (8095),
# PYTHON (the venv's, with requests and psycopg).
set -euo pipefail
cd "$(dirname "$0")/.."

make=${MAKE:-make}
python=${PYTHON:-venv/bin/python}
export PG_PORT=${OUTAGE_PG_PORT:-5450}
export PG_DIR=/tmp/kiva-pg-$PG_PORT
port=${OUTAGE_APACHE_PORT:-8095}
db=kiva_outage
kiva_db="host=$PG_DIR port=$PG_PORT dbname=$db user=kiva"
owner_db="host=$PG_DIR port=$PG_PORT dbname=$db user=kiva_owner"
dir=$(mktemp -d /tmp/kiva-outage-$port.XXXXXX)  # the port: side-by-side runs
chmod 755 "$dir"

cleanup() {
  $make apache-stop DEPLOY_TARGET="$dir" >/dev/null || true
  scripts/pg.sh stop >/dev/null || true
}
trap cleanup EXIT

$make db-setup PG_PORT="$PG_PORT" PG_DIR="$PG_DIR" DEPLOY_DB=$db >/dev/null
$make deploy DEPLOY_FORCE=1 DB_INIT=demo DEPLOY_TARGET="$dir" KIVA_DB="$kiva_db" \
  KIVA_OWNER_DB="$owner_db" APP_SECRET="$APP_SECRET" >/dev/null
$make apache-start DEPLOY_TARGET="$dir" APACHE_PORT="$port"

echo "test-outage: stopping and starting PostgreSQL on port $PG_PORT under the app at :$port"
start=$(date +%s)
PG_CTL_STOP="scripts/pg.sh stop" PG_CTL_START="scripts/pg.sh start" \
  "$python" drills/outage.py "http://127.0.0.1:$port/api" "host=$PG_DIR port=$PG_PORT dbname=$db user=postgres" ||
  { tail -n 30 "$dir/apache/kiva-error.log" >&2; exit 1; }
echo "test-outage: drill done in $(($(date +%s) - start)) s; in the app's log:" \
  "$(grep -c 'closed by the server: reconnecting' "$dir/apache/kiva-error.log") idle connections revived," \
  "$(grep -c 'Traceback' "$dir/apache/kiva-error.log") tracebacks"

cleanup
trap - EXIT
rm -rf "$dir"
echo "test-outage: passed"
