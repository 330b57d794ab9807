#!/bin/bash
# make test-schema (and make fuzz, longer): schemathesis checks the live server against
# its own /openapi.json, every operation, with an admin's token, then a plain user's.
#
# The server runs on its own PostgreSQL database (SCHEMA_DB, reset to the seed data
# first) and its own port: what schemathesis writes (stuff, users, passwords…) never
# reaches the databases of the other tests. The run's two users are made for it, so
# that a password schemathesis changes on a seed user does not end the run.
#
# With SCHEMA_URL (a server already running, e.g. Apache's http://…/api of make test-apache),
# no server is started: that one is checked, on its own database.
#
# Environment: PG_DIR, PG_PORT, SCHEMA_DB, SCHEMA_PORT, SCHEMA_URL, SCHEMA_EXAMPLES (per operation),
# SCHEMA_SEED, SCHEMA_CHECKS (default: all of schemathesis's checks), SCHEMA_EXCLUDE (checks left
# out, comma-separated), APP_SECRET; BIN (the venv's bin folder).
#
# All checks: a request valid by the document is never refused, an invalid one never
# accepted, an undeclared method is a 405, invalid credentials a 401. Their probes of
# invalid credentials would soon earn 429s, which are tested elsewhere (test_throttle.py):
# the server started here counts failures but throttles only far beyond what a run sends.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${BIN:-venv/bin}
port=${SCHEMA_PORT:-9290}
examples=${SCHEMA_EXAMPLES:-20}
seed=${SCHEMA_SEED:-20261128}
base=${SCHEMA_URL:-http://127.0.0.1:$port}
checks=${SCHEMA_CHECKS:-all}
exclude=${SCHEMA_EXCLUDE:+--exclude-checks $SCHEMA_EXCLUDE}
report=${SCHEMA_REPORT:-/tmp/kiva-schemathesis-$port}

if [ -z "${SCHEMA_URL:-}" ]; then
  export APP_CONFIG=pg.conf KIVA_DB="host=$PG_DIR port=$PG_PORT dbname=$SCHEMA_DB user=postgres"
  export KIVA_THROTTLE_FAILURES=100000 KIVA_THROTTLE_ADDRESS_FAILURES=100000
  export APP_PORT=$port APP_LOG=/tmp/kiva-schema-$port.log APP_PID=/tmp/kiva-schema-$port.pid
  PG_DB=$SCHEMA_DB scripts/pg.sh start
  "$bin/flask" --app app db-init
  ./stop.sh >/dev/null
  ./start.sh
  trap './stop.sh >/dev/null' EXIT
fi

# a fresh admin and a fresh plain user (unique logins: a long-lived server may have older ones), and a token for each (the seed admin creates them)
token() {  # LOGIN PASSWORD [ADMIN]: creates the user, prints a token for it
  "$bin/python" - "$base" "$@" <<'PY'
import json, sys, requests
base, login, password, admin = sys.argv[1], sys.argv[2], sys.argv[3], len(sys.argv) > 4
user = {"login": login, "password": password, "isAdmin": admin}
res = requests.post(f"{base}/users", json={"user": user}, auth=("calvin", "hobbes"), timeout=30)
assert res.status_code == 201, res.text
res = requests.get(f"{base}/login", auth=(login, password), timeout=30)
assert res.status_code == 200, res.text
print(res.json())
PY
}
# both before the first run: schemathesis may well demote or delete the seed admin
declare -A login password token
for who in admin user; do
  password[$who]=$(head -c 12 /dev/urandom | base64)
  login[$who]=schema-$who-$$-$RANDOM
  token[$who]=$(token "${login[$who]}" "${password[$who]}" ${who/user/})
done

# the two identities side by side (two processes: a run is one core's client and server
# taking turns), each run's output kept apart, then shown in turn
declare -A pid
for who in admin user; do
  # tests/schemathesis.toml: each operation gets the scheme it declares (bearer, or basic for /login)
  (
    export KIVA_SCHEMA_LOGIN=${login[$who]} KIVA_SCHEMA_PASSWORD=${password[$who]} KIVA_SCHEMA_TOKEN=${token[$who]}
    echo "schemathesis: $examples examples per operation, seed $seed, as the $who $KIVA_SCHEMA_LOGIN"
    exec "$bin/schemathesis" --no-color --config-file tests/schemathesis.toml run "$base/openapi.json" \
      --checks "$checks" $exclude --max-examples "$examples" --seed "$seed" --workers 1 --request-timeout 30 \
      --report junit,har --report-dir "$report-$who"
  ) > "$report-$who.out" 2>&1 &
  pid[$who]=$!
done
rc=0
for who in admin user; do
  status=0
  wait "${pid[$who]}" || status=$?
  cat "$report-$who.out"
  [ $status -eq 0 ] || { echo "schemathesis as the $who: failed ($status)"; rc=$status; }
done
exit $rc
