#!/bin/bash
# make check's end-to-end run through Apache httpd + mod_wsgi (make test-apache), and
# the drills on the same kind of deployment (make test-apache-drills, in make drills):
#
#   deploy/check.sh [suite|drills]
#
# both: make deploy DB_INIT=demo to a new folder under /tmp (reachable by www-data), then
# make apache-start: a private Apache on 127.0.0.1:$APACHE_PORT serving it, behind its
# buffering front, HAProxy on $FRONT_PORT (deploy/kiva-haproxy.cfg); make apache-stop,
# whatever happened; the folder is removed when all passed.
#
# suite (make test-apache, in make check):
# 1. the whole external test suite at http://127.0.0.1:$FRONT_PORT/api,
# 2. what the security review asked: the demo users' warning in the log, no query
#    string in the access log, the runtime role unable to DROP, ALTER or TRUNCATE,
#    the runtime account unable to read the owner's credentials,
# 3. a second make deploy keeps the data; a deploy whose migration fails changes
#    neither the database nor the running code; make deploy DB_INIT=1 resets it
#    without any user (no known password), DB_INIT=demo with the demo users.
#
# drills (make test-apache-drills, in make drills: CI runs it after make check):
# 1. the slow-clients drill (drills/slow_clients.py) through the front,
# 2. TLS on the front for real (drills/tls_check.py: its own CA, openssl s_client), the
#    Apache TLS template accepted by Apache,
# 3. Apache restarted (its metrics start from 0), and a real Prometheus scraping it
#    (drills/prometheus_check.py, on PROMETHEUS_PORT): its counts must be exact; then its
#    logs rotated under load, every line kept (drills/log_rotation.py),
# 4. schemathesis (scripts/schemathesis.sh) from /api/openapi.json.
#
# Environment: MAKE, KIVA_DB (the database to deploy to, runtime role), KIVA_OWNER_DB
# (the same, schema owner role), APP_SECRET (the tests forge tokens with it),
# KIVA_METRICS_TOKEN (the scrape token of GET /metrics, added to the deployed kiva.env),
# APACHE_PORT, PROMETHEUS_PORT, PYTEST (the test runner), PYTHON (the venv's).
set -euo pipefail
cd "$(dirname "$0")/.."

part=${1:-suite}
case "$part" in suite|drills) ;; *) echo "usage: $0 [suite|drills]" >&2; exit 2 ;; esac
name=test-apache; [ "$part" = suite ] || name=test-apache-drills  # its messages' prefix
make=${MAKE:-make}
port=${APACHE_PORT:-8085}
# the clients' way in: the buffering front (HAProxy) of production, in front of Apache
front=${FRONT_PORT:-$((port + 1))}
export FRONT_PORT=$front
# the tests name their client addresses through X-Forwarded-For (see Makefile)
export FRONT_FORWARDFOR_EXCEPT=127.0.0.0/8
api=http://127.0.0.1:$front/api
dir=$(mktemp -d /tmp/kiva-apache-check-$port.XXXXXX)  # the port: side-by-side runs
chmod 755 "$dir"

deploy() {
  $make deploy DEPLOY_FORCE=1 DEPLOY_TARGET="$dir" KIVA_DB="$KIVA_DB" KIVA_OWNER_DB="$KIVA_OWNER_DB" \
    APP_SECRET="$APP_SECRET" "$@"
}
fail() { echo "$name: $*" >&2; exit 1; }
stop() { $make apache-stop DEPLOY_TARGET="$dir" >/dev/null || true; }
trap stop EXIT
http() {  # METHOD PATH [form data…]: prints "status body"
  python3 - "$@" <<'PY'
import sys, urllib.error, urllib.parse, urllib.request as u
method, url, data = sys.argv[1], sys.argv[2], sys.argv[3:]
body = urllib.parse.urlencode(dict(d.split("=", 1) for d in data)).encode() if data else None
try:
    # 30 s, as mod_wsgi's request-timeout: the first request after a deploy waits for the
    # daemon processes to restart and load the app (11 s seen on a loaded 2-core machine)
    with u.urlopen(u.Request(url, data=body, method=method), timeout=30) as res:
        answer = f"{res.status} {res.read().decode()}\n"
except urllib.error.HTTPError as e:
    answer = f"{e.code} {e.read().decode()}\n"
# one write: `grep -q` may exit at its match, and with PYTHONUNBUFFERED=1 a print()
# writes its parts one by one, the last ones into a closed pipe (BrokenPipeError)
sys.stdout.write(answer)
PY
}

deploy DB_INIT=demo
# what an operator does on the server to let Prometheus scrape: the token in kiva.env
echo "KIVA_METRICS_TOKEN=${KIVA_METRICS_TOKEN:?the scrape token of the tests}" >>"$dir/kiva.env"
$make apache-start DEPLOY_TARGET="$dir" APACHE_PORT="$port"
if [ "$part" = suite ]; then  # ---- make test-apache (make check)
# every daemon process loads the app as it starts, not at its first request (only the
# start's one GET /version was sent): each logs the demo users' warning as it loads
processes=${APACHE_PROCESSES:-2}
warned() { grep -c "demo user calvin has its public password" "$dir/apache/kiva-error.log" || true; }
for _ in $(seq 1 300); do [ "$(warned)" -ge "$processes" ] && break; sleep 0.1; done
[ "$(warned)" -ge "$processes" ] || fail "$(warned) of $processes daemon processes loaded the app before their first request"
echo "$name: the external test suite through Apache at $api"
# the audit tests read the app's log lines: the virtual host's error log, whose
# "[pid N:…]" prefixes show test_freshness.py which of the processes answered
# (KIVA_DEPLOYED: the production configuration, server.conf, whose bcrypt cost is checked)
KIVA_AUDIT_LOG=$dir/apache/kiva-error.log KIVA_SERVER_PROCESSES=$processes KIVA_DEPLOYED=1 FLASK_TESTER_APP=$api \
  ${PYTEST:-venv/bin/pytest}

echo "$name: security of the deployment"
log=$dir/apache/kiva-error.log
grep -q "demo user calvin has its public password" "$log" || fail "no warning about the demo users in $log"
http GET "$api/stuff?filter=query-string-probe" | grep -q '^200 '
grep -q "GET /api/stuff HTTP" "$dir/apache/kiva-access.log" || fail "no access log line"
! grep -q "query-string-probe" "$dir/apache/kiva-access.log" "$log" || fail "a query string was logged"
# the runtime role reads and writes rows, and can do nothing else
runtime() { psql -X -q -v ON_ERROR_STOP=1 "$KIVA_DB" -c "$1" 2>&1; }
runtime "BEGIN; DELETE FROM AuthFailure; ROLLBACK" >/dev/null || fail "the runtime role cannot write rows"
for sql in "DROP TABLE Thing" "ALTER TABLE Stuff ADD COLUMN x INT" "TRUNCATE Stuff" "CREATE TABLE Evil(x INT)"; do
  { runtime "$sql" || true; } | grep -q "permission denied\|must be owner" || fail "the runtime role may: $sql"
done
# the runtime account (the daemon processes': www-data when run as root) reads the app's
# kiva.env and never the schema owner's credentials (kiva-owner.env), nor writes the code
if [ "$(id -u)" = 0 ]; then
  as_app() { runuser -u "${APACHE_USER:-www-data}" -- "$@" 2>/dev/null; }
  as_app test -r "$dir/kiva.env" || fail "the runtime account cannot read kiva.env"
  ! as_app cat "$dir/kiva-owner.env" >/dev/null || fail "the runtime account reads the owner's credentials"
  ! as_app test -w "$dir/app.py" || fail "the runtime account may change the app's code"
  [ "$(stat -c %a "$dir/kiva-owner.env")" = 600 ] || fail "kiva-owner.env is not 0600"
else
  echo "$name: not root: the daemon runs as this account, the owner's credentials not checked"
fi

echo "$name: a second deploy keeps the data, DB_INIT=1 resets it"
marker=deploy-check-$$-$RANDOM
http POST "$api/stuff" "stuff=$marker" | grep -q '^201 '
deploy >/dev/null
http GET "$api/stuff?filter=$marker" | grep -q "\"$marker\"" || fail "data lost by a plain deploy"

echo "$name: a deploy whose migration fails: refused, database and running code unchanged"
schema=$(http GET "$api/version" | sed 's/.*"schema": *\([0-9]*\).*/\1/')
[ "$schema" = "$(${PYTHON:-venv/bin/python} -m production.migrate expected)" ] || fail "schema $schema deployed"
broken=$(mktemp -d /tmp/kiva-broken-release.XXXXXX)
git ls-files -z | xargs -0 cp --parents -t "$broken"
next=$(printf %04d $((schema + 1)))
last=$(cd migrations && ls [0-9]*.sql | sort | tail -1)
printf -- '-- depends: %s\nALTER TABLE Stuff ADD COLUMN broken INTEGER;\nSELECT no_such_column FROM Stuff;\n' \
  "${last%.sql}" >"$broken/migrations/$next.broken.sql"
echo "# broken release" >>"$broken/queries.sql"
if (cd "$broken" && deploy >"$broken.log" 2>&1); then fail "a failing migration was deployed"; fi
grep -q "a migration failed" "$broken.log" || { cat "$broken.log" >&2; exit 1; }
grep -q "broken release" "$dir/queries.sql" && fail "the code of a refused release was copied"
http GET "$api/version" | grep -q "\"schema\": *$schema[,}]" || fail "schema changed by a failed migration"
http GET "$api/stuff?filter=$marker" | grep -q "\"$marker\"" || fail "data lost by a failed migration"
rm -rf "$broken" "$broken.log"
deploy >/dev/null  # the good release again: its migration files back

deploy DB_INIT=1 >/dev/null
http GET "$api/stuff?filter=$marker" | grep -q '^200 \[\]' || fail "data kept by DB_INIT=1"
http GET "$api/version" | grep -q '^200 '
http POST "$api/login" USER=calvin PASS=hobbes | grep -q '^401 ' || fail "a demo user after DB_INIT=1"
[ "$(psql -X -tA "$KIVA_DB" -c 'SELECT COUNT(*) FROM Utilisateur')" = 0 ] || fail "users after DB_INIT=1"
deploy DB_INIT=demo >/dev/null
http POST "$api/login" USER=calvin PASS=hobbes | grep -q '^200 ' || fail "no demo user after DB_INIT=demo"

else  # ---- drills: make test-apache-drills (make drills)
echo "$name: slow clients through the front"
${PYTHON:-venv/bin/python} drills/slow_clients.py "$api" || fail "slow clients hold the app"

echo "$name: TLS for real: the front with a certificate of a CA of its own"
tls=$dir/tls
mkdir -p "$tls"
(umask 077
 openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=kiva-test-ca -keyout "$tls/ca.key" -out "$tls/ca.pem" \
   -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign 2>/dev/null
 openssl req -newkey rsa:2048 -nodes -subj /CN=kiva.test -keyout "$tls/key.pem" -out "$tls/cert.csr" 2>/dev/null
 openssl x509 -req -in "$tls/cert.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 1 \
   -extfile <(printf 'subjectAltName=DNS:kiva.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') \
   -out "$tls/cert.pem" 2>/dev/null
 cat "$tls/cert.pem" "$tls/key.pem" >"$tls/kiva.pem")
tls_front() {
  FRONT_DIR=$tls/front KIVA_BACKEND=127.0.0.1:$port KIVA_TLS_PEM=$tls/kiva.pem \
    KIVA_TLS_BIND=127.0.0.1:${FRONT_TLS_PORT:-$((port + 2))} KIVA_HTTP_BIND=127.0.0.1:${FRONT_HTTP_PORT:-$((port + 3))} \
    deploy/front.sh "$1"
}
stop() { tls_front stop >/dev/null 2>&1 || true; $make apache-stop DEPLOY_TARGET="$dir" >/dev/null || true; }
tls_front start
${PYTHON:-venv/bin/python} drills/tls_check.py "${FRONT_TLS_PORT:-$((port + 2))}" "${FRONT_HTTP_PORT:-$((port + 3))}" \
  "$tls/ca.pem" || fail "TLS of the front"
tls_front stop
# Apache's own TLS template (KIVA_SSL, for a server without the front): accepted by Apache (-t)
modules=${APACHE_MODULES:-/usr/lib/apache2/modules}
cat >"$tls/httpd.conf" <<CONF
ServerRoot "$tls"
PidFile "$tls/httpd.pid"
Listen 127.0.0.1:8443
ErrorLog "$tls/error.log"
LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule wsgi_module $modules/mod_wsgi.so
LoadModule ssl_module $modules/mod_ssl.so
LoadModule headers_module $modules/mod_headers.so
LoadModule alias_module $modules/mod_alias.so
Define KIVA_HOME $dir
Define KIVA_NAME kiva.test
Define KIVA_PORT 443
Define KIVA_USER www-data
Define KIVA_GROUP www-data
Define KIVA_PROCESSES 2
Define KIVA_THREADS 4
Define KIVA_LOG_DIR $tls
Define KIVA_SSL
Define KIVA_SSL_CERT $tls/cert.pem
Define KIVA_SSL_KEY $tls/key.pem
Include "$(pwd)/deploy/kiva-httpd.conf"
CONF
${APACHE_BIN:-/usr/sbin/apache2} -t -f "$tls/httpd.conf" 2>&1 | grep -q "Syntax OK" ||
  { ${APACHE_BIN:-/usr/sbin/apache2} -t -f "$tls/httpd.conf"; fail "the TLS template is refused"; }
grep -q "SSLProtocol -all +TLSv1.2 +TLSv1.3" deploy/kiva-httpd.conf || fail "TLS below 1.2 allowed"
! grep "SSLCipherSuite" deploy/kiva-httpd.conf | grep -q "HIGH" || fail "Apache's template allows non-forward-secret suites"

echo "$name: Apache restarted, a real Prometheus scraping it"
stop
$make apache-start DEPLOY_TARGET="$dir" APACHE_PORT="$port"
${PYTHON:-venv/bin/python} drills/prometheus_check.py "$api" "$dir/apache/kiva-error.log" "${PROMETHEUS_PORT:-9190}"

echo "$name: the logs rotated under load (rotatelogs at 64 KB), no line lost"
stop
APACHE_LOG_SIZE=64K APACHE_LOG_FILES=40 $make apache-start DEPLOY_TARGET="$dir" APACHE_PORT="$port"
${PYTHON:-venv/bin/python} drills/log_rotation.py "$api" "$dir/apache" 3000 65536 40 || fail "log rotation"
stop
$make apache-start DEPLOY_TARGET="$dir" APACHE_PORT="$port"

echo "$name: schemathesis through Apache, against /api/openapi.json"
# all checks but ignored_auth: its probes of invalid credentials earn this production-like
# deployment's 429s (its throttle is tested as it is); make test-schema's own server, which
# throttles far beyond what a run sends, runs that check
SCHEMA_EXCLUDE=ignored_auth SCHEMA_URL=$api SCHEMA_REPORT=$dir/schemathesis BIN=$(dirname "${PYTEST:-venv/bin/pytest}") scripts/schemathesis.sh
fi

stop
trap - EXIT
rm -rf "$dir"
echo "$name: passed"
