#!/bin/bash
# Kiva beyond one server, on one machine (make cluster-start / cluster-stop / cluster-status):
#
#   client → HAProxy :9400 ─┬→ Apache + mod_wsgi node1 :9410 ─┬→ PgBouncer :9420 → PostgreSQL :5860
#                           └→ Apache + mod_wsgi node2 :9411 ─┘   Redis :9430 (shared cache)
#
# 1. PostgreSQL: a private cluster (scripts/pg.sh) with production durability (fsync on),
#    the role and database of deploy/db-setup.sql;
# 2. PgBouncer in transaction pooling in front of it (runs as the postgres account: it
#    refuses root), the app's psycopg without server-side prepared statements (KIVA_PGBOUNCER);
# 3. Redis, no persistence: the shared cache of user rows and permissions (usercache.py),
#    unless CLUSTER_CACHE=none; an account for the app, one for the administrator, their
#    passwords in CLUSTER_DIR/redis/*.pass (0600), no anonymous access (docs/shared-cache.md);
# 4. two Kiva nodes, each `make deploy` to its own folder and its own Apache (deploy/apache.sh),
#    production configuration (server.conf);
# 5. HAProxy on the front port: health checks on /api/health, retries and redispatch,
#    layer-7 retries for GET/HEAD/OPTIONS only, JSON errors of its own, a runtime API
#    socket (CLUSTER_DIR/haproxy.sock) and a stats page.
#
# Environment (make variables): CLUSTER_FRONT_PORT 9400, CLUSTER_STATS_PORT 9401,
# CLUSTER_NODE1_PORT 9410, CLUSTER_NODE2_PORT 9411, CLUSTER_PGBOUNCER_PORT 9420,
# CLUSTER_REDIS_PORT 9430, CLUSTER_PG_PORT 5860, CLUSTER_DIR (/tmp/kiva-cluster-<front>),
# CLUSTER_CACHE (redis|none), CLUSTER_REDIS_MEMORY (64mb), CLUSTER_FORWARDFOR_EXCEPT (a network: see haproxy.cfg),
# APP_SECRET (default: a random one kept in CLUSTER_DIR), KIVA_THROTTLE_SECONDS,
# KIVA_TRUSTED_PROXIES (127.0.0.1, HAProxy's address), MAKE.
#
#   deploy/cluster.sh start|stop|status|env
#   deploy/cluster.sh node-deploy N     # make deploy to node N (the rolling deploy uses it)
#   deploy/cluster.sh node-start N | node-stop N | pg-start | pg-stop [fast|immediate]
#   deploy/cluster.sh redis-start | redis-stop | wait-up
#   deploy/cluster.sh drain N | ready N     # through HAProxy's runtime API
#   echo "show stat" | deploy/cluster.sh api
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/redis-conf.sh  # redis_conf

make=${MAKE:-make}
front=${CLUSTER_FRONT_PORT:-9400}
stats_port=${CLUSTER_STATS_PORT:-9401}
node_ports=("${CLUSTER_NODE1_PORT:-9410}" "${CLUSTER_NODE2_PORT:-9411}")
bouncer_port=${CLUSTER_PGBOUNCER_PORT:-9420}
redis_port=${CLUSTER_REDIS_PORT:-9430}
export PG_PORT=${CLUSTER_PG_PORT:-5860}
export PG_DIR=/tmp/kiva-pg-$PG_PORT
# production durability: the drills check that no acknowledged write is lost
export PG_FSYNC=on
dir=${CLUSTER_DIR:-/tmp/kiva-cluster-$front}
cache=${CLUSTER_CACHE:-redis}
db=kiva_cluster
# the app reaches PostgreSQL through PgBouncer only
kiva_db="host=127.0.0.1 port=$bouncer_port dbname=$db user=kiva application_name=kiva"

node_dir() { echo "$dir/node$1"; }
node_port() { echo "${node_ports[$(($1 - 1))]}"; }
answers() { python3 -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=5)" "$1" 2>/dev/null; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

secret() {
  if [ -n "${APP_SECRET:-}" ]; then
    echo "$APP_SECRET"
  else
    [ -f "$dir/app.secret" ] || (umask 077 && head -c 30 /dev/urandom | base64 | tr -d '/+=' >"$dir/app.secret")
    cat "$dir/app.secret"
  fi
}

start_postgres() {
  scripts/pg.sh start >/dev/null
  $make --no-print-directory db-setup PG_PORT="$PG_PORT" PG_DIR="$PG_DIR" DEPLOY_DB=$db >/dev/null
}

start_pgbouncer() {
  local run=$dir/pgbouncer
  mkdir -p "$run"
  # server.conf's "options" startup parameter (the planner, statement and lock timeouts)
  # cannot pass PgBouncer: each server connection gets them once, when it opens
  local settings="SET max_parallel_workers_per_gather = 0; SET statement_timeout = ${KIVA_STATEMENT_TIMEOUT_MS:-5000};"
  settings+=" SET lock_timeout = ${KIVA_LOCK_TIMEOUT_MS:-2000}"
  # transaction pooling: a server connection per transaction, not per client; Debian's
  # 1.18 cannot track prepared statements (the app disables them: KIVA_PGBOUNCER=1).
  # trust on loopback, as the private PostgreSQL's socket; production: scram-sha-256
  cat >"$run/pgbouncer.ini" <<INI
[databases]
$db = host=$PG_DIR port=$PG_PORT dbname=$db connect_query='$settings'
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $run/users.txt
pool_mode = transaction
default_pool_size = 16
max_client_conn = 400
; a PostgreSQL restart: try again every half second, and fail a waiting query after 2 s
server_login_retry = 0.5
query_wait_timeout = 2
; server.conf's "options": set by connect_query above instead
ignore_startup_parameters = options
logfile = $run/pgbouncer.log
pidfile = $run/pgbouncer.pid
INI
  echo '"kiva" ""' >"$run/users.txt"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$run"
    alive "$run/pgbouncer.pid" || runuser -u postgres -- pgbouncer -d -q "$run/pgbouncer.ini"
  else
    alive "$run/pgbouncer.pid" || pgbouncer -d -q "$run/pgbouncer.ini"
  fi
}

redis_password() {  # ACCOUNT: its password, made once, in a 0600 file (never on a command line)
  mkdir -p "$dir/redis"
  local file=$dir/redis/$1.pass
  [ -s "$file" ] || (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$file")
  cat "$file"
}

redis_cli() {  # as the administrator; the password passes in the environment (REDISCLI_AUTH)
  REDISCLI_AUTH="$(redis_password admin)" redis-cli --no-auth-warning --user admin -p "$redis_port" "$@"
}

start_redis() {
  local run=$dir/redis
  mkdir -p "$run"
  chmod 700 "$run"
  # a cache only, two accounts, no anonymous access: deploy/redis-conf.sh
  (umask 077 && redis_conf 127.0.0.1 "$redis_port" "$run" "${CLUSTER_REDIS_MEMORY:-64mb}" >"$run/redis.conf")
  alive "$run/redis.pid" || redis-server "$run/redis.conf" >/dev/null
  for _ in $(seq 1 50); do
    redis_cli ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.1
  done
  echo "redis: no answer on port $redis_port" >&2
  exit 1
}

stop_redis() {
  local pidfile=$dir/redis/redis.pid
  if alive "$pidfile"; then
    redis_cli shutdown nosave >/dev/null 2>&1 || kill "$(cat "$pidfile")"
    for _ in $(seq 1 50); do alive "$pidfile" || break; sleep 0.1; done
  fi
}

node_deploy() {  # N [make deploy variables…]: deploy to node N, environment for the cluster
  local n=$1 target
  shift
  target=$(node_dir "$n")
  mkdir -p "$target"
  chmod 755 "$dir" "$target"
  # schema work as the owner role (security #10), straight to PostgreSQL, not through the pooler
  # HAProxy (127.0.0.1) is the nodes' trusted proxy: the client's address is its X-Forwarded-For
  KIVA_LOCAL_CACHE=0 KIVA_TRUSTED_PROXIES=${KIVA_TRUSTED_PROXIES:-127.0.0.1} $make --no-print-directory deploy DEPLOY_FORCE=1 DEPLOY_TARGET="$target" KIVA_DB="$kiva_db" \
    KIVA_OWNER_DB="host=$PG_DIR port=$PG_PORT dbname=$db user=${DB_OWNER:-kiva_owner}" \
    APP_SECRET="$(secret)" "$@" >/dev/null
  local env=$target/kiva.env
  grep -q '^KIVA_PGBOUNCER=' "$env" || echo "KIVA_PGBOUNCER=1" >>"$env"
  if [ -n "${KIVA_PASSWORD_SLOTS:-}" ]; then  # the drills' slow reads: bcrypt work at once
    grep -q '^KIVA_PASSWORD_SLOTS=' "$env" || echo "KIVA_PASSWORD_SLOTS=$KIVA_PASSWORD_SLOTS" >>"$env"
  fi
  if [ -n "${KIVA_METRICS_TOKEN:-}" ]; then  # the scrape token of GET /metrics (the tests')
    grep -q '^KIVA_METRICS_TOKEN=' "$env" || echo "KIVA_METRICS_TOKEN=$KIVA_METRICS_TOKEN" >>"$env"
  fi
  # several hosts: no per-host cache of user rows (its generation would be this host's only)
  sed -i '/^KIVA_LOCAL_CACHE=/d' "$env"
  if [ "$cache" = redis ]; then
    # the app's Redis account, in kiva.env (0600, beside APP_SECRET)
    sed -i '/^KIVA_REDIS=/d' "$env"
    echo "KIVA_REDIS=redis://kiva:$(redis_password kiva)@127.0.0.1:$redis_port/0" >>"$env"
  else
    sed -i '/^KIVA_REDIS=/d' "$env"
  fi
}

node_start() {
  # one app log for both nodes (Apache appends): the audit and freshness tests read it
  mkdir -p "$(node_dir "$1")/apache"
  touch "$dir/kiva-error.log"
  ln -sfn "$dir/kiva-error.log" "$(node_dir "$1")/apache/kiva-error.log"
  # plain files: both nodes append to one shared log, which rotatelogs would replace by its own
  APACHE_LOG_SIZE=none $make --no-print-directory apache-start DEPLOY_TARGET="$(node_dir "$1")" APACHE_PORT="$(node_port "$1")" >/dev/null
}

node_stop() {
  $make --no-print-directory apache-stop DEPLOY_TARGET="$(node_dir "$1")" >/dev/null 2>&1 || true
}

start_haproxy() {
  local errors=$dir/haproxy-errors
  mkdir -p "$errors"
  # HAProxy's own answers, JSON like the app's (no node up, a node's broken answer, a timeout)
  for status in "502 Bad Gateway" "503 Service Unavailable" "504 Gateway Timeout"; do
    printf 'HTTP/1.1 %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n%s\n' \
      "$status" '{"error": "service unavailable, please retry later"}' >"$errors/${status%% *}.http"
  done
  cat >"$dir/haproxy.cfg" <<CFG
# generated by deploy/cluster.sh
global
  daemon
  pidfile $dir/haproxy.pid
  # slow clients cost the nodes nothing (as deploy/kiva-haproxy.cfg, docs/security-operations.md):
  # a request reaches a node only once its headers and whole body are here, the buffer
  # holding the largest body allowed (1 MiB + 64 KiB of headers + 1 KiB of rewrites);
  # at most maxconn such buffers (about 1.1 GB at worst)
  maxconn 1000
  tune.bufsize 1115136
  # the runtime API: drain/ready a node (rolling deploy), read the counters
  stats socket $dir/haproxy.sock mode 600 level admin

defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  timeout queue 5s
  # a health check slower than this fails (a loaded 2-core machine: not too tight)
  timeout check 3s
  timeout http-keep-alive 10s
  # headers and body within 10 s of the first byte, or a 408 (with http-buffer-request
  # this covers the body too)
  timeout http-request 10s
  option http-buffer-request
  http-error status 408 content-type application/json string '{"error": "request not received in time"}'
  # the client's address for the app (its audit lines, its throttling by address);
  # CLUSTER_FORWARDFOR_EXCEPT: clients whose own X-Forwarded-For passes unchanged (a
  # proxy in front; the tests, which name an address of their own per test)
  option forwardfor${CLUSTER_FORWARDFOR_EXCEPT:+ except $CLUSTER_FORWARDFOR_EXCEPT}
  # a new connection to a node for each request: a request sent on a kept-alive connection
  # to a node that just died cannot be told from one it received, and is not retried if a
  # write (the kill drill saw it); a refused connection is always retried (conn-failure)
  option http-server-close
  # a failed attempt is tried again (3 times), each time on another node
  retries 3
  option redispatch 1
  # conn-failure: the request never reached a node, safe for every method. The other
  # events mean a node may have acted on it: HAProxy does not look at the method, so
  # they are disabled below for all but the safe methods
  retry-on conn-failure empty-response response-timeout
  errorfile 502 $errors/502.http
  errorfile 503 $errors/503.http
  errorfile 504 $errors/504.http

frontend kiva
  bind 127.0.0.1:$front
  # the app's limit (MAX_CONTENT_LENGTH, 1 MiB); mod_wsgi refuses chunked bodies (411) anyway
  http-request deny deny_status 413 content-type application/json string '{"error": "request body too large"}' if { req.hdr_val(content-length) gt 1048576 }
  http-request deny deny_status 411 content-type application/json string '{"error": "Content-Length required"}' if { req.hdr(transfer-encoding) -m found }
  default_backend nodes

backend nodes
  balance roundrobin
  # a POST/PUT/PATCH/DELETE that reached a node is never sent again (it may have committed)
  http-request disable-l7-retry unless { method GET HEAD OPTIONS }
  # /health is 200, or a JSON 503 when the database is down: the node itself is
  # alive then, and taking every node out would not help (the app's own 503 says why)
  option httpchk GET /api/health
  http-check expect rstatus ^(200|503)\$
  default-server check inter 1s fastinter 250ms fall 2 rise 2
  server node1 127.0.0.1:${node_ports[0]}
  server node2 127.0.0.1:${node_ports[1]}

listen stats
  bind 127.0.0.1:$stats_port
  stats enable
  stats uri /
  stats refresh 5s
CFG
  haproxy -c -q -f "$dir/haproxy.cfg"
  alive "$dir/haproxy.pid" || haproxy -f "$dir/haproxy.cfg"
  wait_up
}

wait_up() {
  for _ in $(seq 1 300); do
    # both nodes seen UP by the health checks
    [ "$(echo "show stat" | socat_cmd | grep -c '^nodes,node[12],.*,UP,')" = 2 ] && return 0
    sleep 0.1
  done
  echo "haproxy: the nodes are not UP, see http://127.0.0.1:$stats_port/" >&2
  exit 1
}

socat_cmd() {  # the runtime API, without socat: a line in, the answer out
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.stdin.read().encode())
s.shutdown(socket.SHUT_WR)
out = b""
while chunk := s.recv(65536):
    out += chunk
sys.stdout.write(out.decode())' "$dir/haproxy.sock"
}

drain() {  # N: no new request to node N, then wait until it has no session left
  echo "set server nodes/node$1 state drain" | socat_cmd
  for _ in $(seq 1 300); do
    [ "$(echo "show stat" | socat_cmd | awk -F, -v s="node$1" '$1 == "nodes" && $2 == s { print $5 }')" = 0 ] && return 0
    sleep 0.1
  done
  echo "node$1: sessions still open after 30 s" >&2
  exit 1
}

start() {
  local t0=$SECONDS
  mkdir -p "$dir"
  chmod 755 "$dir"
  start_postgres
  start_pgbouncer
  [ "$cache" = redis ] && start_redis
  local fresh=0
  [ -f "$dir/.initialised" ] || fresh=1
  for n in 1 2; do
    if [ $n = 1 ] && [ $fresh = 1 ]; then
      # the demo users the tests log in with: DB_INIT=demo since security #10, 1 before
      node_deploy 1 DB_INIT="${CLUSTER_DB_INIT:-$(grep -q demo deploy/deploy.sh && echo demo || echo 1)}"
      touch "$dir/.initialised"
    else
      node_deploy $n
    fi
    node_start $n
  done
  start_haproxy
  echo "cluster: http://127.0.0.1:$front/api (nodes :${node_ports[0]} :${node_ports[1]}, PgBouncer :$bouncer_port," \
    "Redis :$redis_port ($cache), PostgreSQL :$PG_PORT, stats http://127.0.0.1:$stats_port/)," \
    "started in $((SECONDS - t0)) s"
}

stop() {
  alive "$dir/haproxy.pid" && kill "$(cat "$dir/haproxy.pid")"
  for n in 1 2; do [ -d "$(node_dir $n)" ] && node_stop $n; done
  stop_redis
  local pidfile=$dir/pgbouncer/pgbouncer.pid
  if alive "$pidfile"; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 50); do alive "$pidfile" || break; sleep 0.1; done
  fi
  scripts/pg.sh stop >/dev/null
  echo "cluster stopped ($dir)"
}

status() {
  echo "show stat" | socat_cmd | cut -d, -f1,2,18 | grep -E '^nodes,' || echo "haproxy not running"
}

env_() {  # what the drills and tests need, as shell assignments
  cat <<ENV
CLUSTER_API=http://127.0.0.1:$front/api
CLUSTER_NODES=http://127.0.0.1:${node_ports[0]}/api,http://127.0.0.1:${node_ports[1]}/api
CLUSTER_SOCKET=$dir/haproxy.sock
CLUSTER_DIR=$dir
CLUSTER_PG="host=$PG_DIR port=$PG_PORT dbname=$db user=postgres"
CLUSTER_REDIS_PORT=$redis_port
CLUSTER_LOG=$dir/kiva-error.log
ENV
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) env_ ;;
  node-deploy) shift; node_deploy "$@" ;;
  node-start) node_start "$2" ;;
  node-stop) node_stop "$2" ;;
  pg-start) scripts/pg.sh start >/dev/null ;;
  pg-stop) scripts/pg.sh stop "${2:-fast}" >/dev/null ;;
  wait-up) wait_up ;;
  drain) drain "$2" ;;
  ready) echo "set server nodes/node$2 state ready" | socat_cmd ;;
  api) socat_cmd ;;  # a runtime API command on stdin
  redis-start) start_redis ;;
  redis-stop) stop_redis ;;
  *) echo "usage: $0 start|stop|status|env|node-deploy N|node-start N|node-stop N|drain N|ready N|api|wait-up|pg-start|pg-stop [MODE]|redis-start|redis-stop" >&2; exit 2 ;;
esac
