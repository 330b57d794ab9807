#!/bin/bash
# make check's end-to-end run through Apache httpd + mod_wsgi (make test-apache):
#
# 1. make deploy DB_INIT=demo to a new folder under /tmp (reachable by www-data),
# 2. make apache-start: a private Apache on 127.0.0.1:$APACHE_PORT serving it,
# 3. the whole external test suite at http://127.0.0.1:$APACHE_PORT/api,
# 4. a second make deploy keeps the data; a deploy whose migration fails changes
#    neither the database nor the running code; make deploy DB_INIT=1 resets it
#    (no user), DB_INIT=demo with the demo users,
# 5. make apache-stop, whatever happened; the folder is removed when all passed.
#
# Environment: MAKE, KIVA_DB (the database to deploy to), APP_SECRET (the tests
# forge tokens with it), APACHE_PORT, PYTEST (the test runner).
set -euo pipefail
cd "$(dirname "$0")/.."

make=${MAKE:-make}
port=${APACHE_PORT:-8085}
api=http://127.0.0.1:$port/api
dir=$(mktemp -d /tmp/kiva-apache-check.XXXXXX)
chmod 755 "$dir"

deploy() { $make deploy DEPLOY_FORCE=1 DEPLOY_TARGET="$dir" KIVA_DB="$KIVA_DB" APP_SECRET="$APP_SECRET" "$@"; }
stop() { $make apache-stop DEPLOY_TARGET="$dir" >/dev/null || true; }
trap stop EXIT
http() {  # METHOD PATH [form data…]: prints "status body"
  python3 - "$@" <<'PY'
import sys, urllib.error, urllib.parse, urllib.request as u
method, url, data = sys.argv[1], sys.argv[2], sys.argv[3:]
body = urllib.parse.urlencode(dict(d.split("=", 1) for d in data)).encode() if data else None
try:
    with u.urlopen(u.Request(url, data=body, method=method), timeout=10) as res:
        answer = f"{res.status} {res.read().decode()}\n"
except urllib.error.HTTPError as e:
    answer = f"{e.code} {e.read().decode()}\n"
# one write: `grep -q` may exit at its match, and with PYTHONUNBUFFERED=1 a print()
# writes its parts one by one, the last ones into a closed pipe (BrokenPipeError)
sys.stdout.write(answer)
PY
}

deploy DB_INIT=demo
$make apache-start DEPLOY_TARGET="$dir" APACHE_PORT="$port"
echo "test-apache: the external test suite through Apache at $api"
# the audit tests read the app's log lines: the virtual host's error log, whose
# "[pid N:…]" prefixes show test_freshness.py which of the processes answered
KIVA_AUDIT_LOG=$dir/apache/kiva-error.log KIVA_SERVER_PROCESSES=${APACHE_PROCESSES:-2} FLASK_TESTER_APP=$api \
  ${PYTEST:-venv/bin/pytest}

echo "test-apache: a second deploy keeps the data, DB_INIT=1 resets it"
marker=deploy-check-$$-$RANDOM
http POST "$api/stuff" "stuff=$marker" | grep -q '^201 '
deploy >/dev/null
http GET "$api/stuff?filter=$marker" | grep -q "\"$marker\"" || { echo "data lost by a plain deploy" >&2; exit 1; }

echo "test-apache: a deploy whose migration fails: refused, database and running code unchanged"
schema=$(http GET "$api/version" | sed 's/.*"schema": *\([0-9]*\).*/\1/')
[ "$schema" = "$(${PYTHON:-venv/bin/python} migrate.py expected)" ] || { echo "schema $schema deployed" >&2; exit 1; }
broken=$(mktemp -d /tmp/kiva-broken-release.XXXXXX)
git ls-files -z | xargs -0 cp --parents -t "$broken"
next=$(printf %04d $((schema + 1)))
last=$(cd migrations && ls [0-9]*.sql | sort | tail -1)
printf -- '-- depends: %s\nALTER TABLE Stuff ADD COLUMN broken INTEGER;\nSELECT no_such_column FROM Stuff;\n' \
  "${last%.sql}" >"$broken/migrations/$next.broken.sql"
echo "# broken release" >>"$broken/queries.sql"
if (cd "$broken" && deploy >"$broken.log" 2>&1); then echo "a failing migration was deployed" >&2; exit 1; fi
grep -q "a migration failed" "$broken.log" || { cat "$broken.log" >&2; exit 1; }
grep -q "broken release" "$dir/queries.sql" && { echo "the code of a refused release was copied" >&2; exit 1; }
http GET "$api/version" | grep -q "\"schema\": *$schema[,}]" || { echo "schema changed by a failed migration" >&2; exit 1; }
http GET "$api/stuff?filter=$marker" | grep -q "\"$marker\"" || { echo "data lost by a failed migration" >&2; exit 1; }
rm -rf "$broken" "$broken.log"
deploy >/dev/null  # the good release again: its migration files back

deploy DB_INIT=1 >/dev/null
http GET "$api/stuff?filter=$marker" | grep -q '^200 \[\]' || { echo "data kept by DB_INIT=1" >&2; exit 1; }
http GET "$api/version" | grep -q '^200 '
http POST "$api/login" USER=calvin PASS=hobbes | grep -q '^401 ' || { echo "a demo user after DB_INIT=1" >&2; exit 1; }
deploy DB_INIT=demo >/dev/null
http POST "$api/login" USER=calvin PASS=hobbes | grep -q '^200 ' || { echo "no demo user after DB_INIT=demo" >&2; exit 1; }

stop
trap - EXIT
rm -rf "$dir"
echo "test-apache: passed"
