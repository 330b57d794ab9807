#!/bin/bash
# Kiva with a highly available database, every host in a network namespace of its own
# on one machine (make ha-start / ha-stop / ha-status, make test-ha; docs/high-availability.md):
#
#   client (this machine, HA_NET.1 on the bridge kivaha0)
#     → kivaha-lb     HAProxy  :80 → web1, web2 (GET /api/health)
#                              :5432 → the PostgreSQL primary (Patroni's GET /primary)
#     → kivaha-web1/2 Apache + mod_wsgi :80 → HAProxy :5432, Redis :6379
#       kivaha-redis  Redis (the shared cache)
#       kivaha-pg1/2  Patroni + PostgreSQL 15 (synchronous streaming replication,
#                     pg_rewind), pgBackRest archiving from the primary
#       kivaha-etcd1/2/3  etcd, Patroni's consensus store (3 members)
#
# Each namespace has one veth link to the bridge (vkh-<host> on this side): a partition
# is that link taken down (`partition HOST`), healed by bringing it up (`heal HOST`).
# Root only (namespaces). Environment: HA_NET (10.77.0: a private /24 of this machine
# only), HA_DIR (/tmp/kiva-ha), HA_BRIDGE (kivaha0), APP_SECRET (default: a random one
# kept in HA_DIR), MAKE.
#
#   deploy/ha.sh start|stop|status|env
#   deploy/ha.sh kill HOST        # kill -9 of every process of the host's namespace
#   deploy/ha.sh host-start HOST  # its services started again (Patroni rejoins by itself)
#   deploy/ha.sh partition HOST | heal HOST
#   deploy/ha.sh cut HOST OTHER | uncut HOST OTHER   # HOST cut off from OTHER only
#   deploy/ha.sh leader           # the name of the PostgreSQL primary (Patroni's view)
#   deploy/ha.sh patronictl ARGS… # patronictl on the cluster
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/redis-conf.sh  # redis_conf

make=${MAKE:-make}
net=${HA_NET:-10.77.0}
dir=${HA_DIR:-/tmp/kiva-ha}
bridge=${HA_BRIDGE:-kivaha0}
db=kiva_ha
pg_bin=/usr/lib/postgresql/15/bin
conf=deploy/ha

# host → last byte of its address
declare -A address=([etcd1]=11 [etcd2]=12 [etcd3]=13 [pg1]=21 [pg2]=22 [redis]=30 [web1]=41 [web2]=42 [lb]=50)
hosts=(etcd1 etcd2 etcd3 pg1 pg2 redis web1 web2 lb)
ip_of() { echo "$net.${address[$1]}"; }
ns() { echo "kivaha-$1"; }
in_ns() { local host=$1; shift; ip netns exec "$(ns "$host")" "$@"; }
etcd_hosts() { echo "$(ip_of etcd1):2379,$(ip_of etcd2):2379,$(ip_of etcd3):2379"; }
kiva_db() { echo "host=$(ip_of lb) port=5432 dbname=$db user=$1 connect_timeout=3"; }

answers() { python3 -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=2)" "$1" 2>/dev/null; }

fill() {  # TEMPLATE OUT NAME=VALUE…: the template with each @NAME@ replaced
  local template=$1 out=$2 text
  shift 2
  text=$(cat "$template")
  for pair in "$@"; do text=${text//@${pair%%=*}@/${pair#*=}}; done
  printf '%s\n' "$text" >"$out"
}

secret() {  # NAME: a random secret kept in HA_DIR/secrets (mode 600), never in a log
  local file=$dir/secrets/$1
  [ -f "$file" ] || (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$file")
  cat "$file"
}

net_up() {
  ip link show "$bridge" >/dev/null 2>&1 || {
    ip link add "$bridge" type bridge
    ip addr add "$net.1/24" dev "$bridge"
    ip link set "$bridge" up
  }
  for host in "${hosts[@]}"; do
    ip netns list | grep -qw "$(ns "$host")" && continue
    ip netns add "$(ns "$host")"
    ip link add "vkh-$host" type veth peer name eth0 netns "$(ns "$host")"
    ip link set "vkh-$host" master "$bridge" up
    in_ns "$host" ip addr add "$(ip_of "$host")/24" dev eth0
    in_ns "$host" ip link set eth0 up
    in_ns "$host" ip link set lo up
  done
}

net_down() {
  for host in "${hosts[@]}"; do
    ip link del "vkh-$host" 2>/dev/null || true
    ip netns del "$(ns "$host")" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
}

daemon() {  # HOST USER LOG COMMAND…: started in the host's namespace, detached
  local host=$1 user=$2 log=$3
  shift 3
  in_ns "$host" runuser -u "$user" -- setsid "$@" >>"$log" 2>&1 </dev/null &
}

start_etcd() {
  local host=$1 run=$dir/$1 cluster=""
  for m in etcd1 etcd2 etcd3; do cluster+="${cluster:+,}$m=http://$(ip_of $m):2380"; done
  mkdir -p "$run"
  fill $conf/etcd.yml "$run/etcd.yml" NAME="$host" DIR="$run/data" ADDRESS="$(ip_of "$host")" INITIAL_CLUSTER="$cluster"
  [ -d "$run/data" ] && sed -i 's/^initial-cluster-state: new/initial-cluster-state: existing/' "$run/etcd.yml"
  chown -R postgres: "$run"
  daemon "$host" postgres "$run/etcd.log" etcd --config-file "$run/etcd.yml"
}

pg_config() {
  local host=$1 run=$dir/$1
  mkdir -p "$run/log" "$run/lock" "$dir/pgbackrest"
  chmod 700 "$run"
  fill $conf/patroni.yml "$run/patroni.yml" NAME="$host" ADDRESS="$(ip_of "$host")" ETCD_HOSTS="$(etcd_hosts)" \
    DIR="$run" NET="$net" DB="$db" SUPERUSER_PASSWORD="$(secret superuser)" \
    REPLICATION_PASSWORD="$(secret replication)" REWIND_PASSWORD="$(secret rewind)"
  fill $conf/pgbackrest.conf "$run/pgbackrest.conf" DIR="$run" REPO="$dir/pgbackrest"
  chmod 600 "$run/patroni.yml"
  chown -R postgres: "$run" "$dir/pgbackrest"
}

start_patroni() {
  local host=$1 run=$dir/$1
  [ -f "$run/patroni.yml" ] || pg_config "$host"
  # archive_command's pgBackRest finds its configuration here (real hosts: /etc/pgbackrest)
  daemon "$host" postgres "$run/patroni.log" env PGBACKREST_CONFIG="$run/pgbackrest.conf" patroni "$run/patroni.yml"
}

redis_password() {  # ACCOUNT: its password, made once, in a 0600 file (as deploy/cluster.sh)
  secret "redis-$1"
}

start_redis() {
  local run=$dir/redis
  mkdir -p "$run"
  chmod 700 "$run"
  # the configuration of deploy/cluster.sh's Redis (deploy/redis-conf.sh), on this host's address
  (umask 077 && redis_conf "$(ip_of redis)" 6379 "$run" 64mb >"$run/redis.conf")
  in_ns redis redis-server "$run/redis.conf" >/dev/null
}

start_haproxy() {
  local run=$dir/lb
  mkdir -p "$run/errors"
  for status in "502 Bad Gateway" "503 Service Unavailable" "504 Gateway Timeout"; do
    printf 'HTTP/1.1 %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n%s\n' \
      "$status" '{"error": "service unavailable, please retry later"}' >"$run/errors/${status%% *}.http"
  done
  if [ ! -f "$run/kiva.pem" ]; then  # a throw-away certificate for the test bridge's address
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=kiva-ha -addext "subjectAltName=IP:$(ip_of lb)" \
      -keyout "$run/kiva.key" -out "$run/kiva.crt" 2>/dev/null
    cat "$run/kiva.crt" "$run/kiva.key" >"$run/kiva.pem"
    chmod 600 "$run/kiva.pem" "$run/kiva.key"
  fi
  fill $conf/haproxy.cfg "$run/haproxy.cfg" DIR="$run" ADDRESS="$(ip_of lb)" NET="$net" \
    WEB1="$(ip_of web1)" WEB2="$(ip_of web2)" PG1="$(ip_of pg1)" PG2="$(ip_of pg2)"
  haproxy -c -q -f "$run/haproxy.cfg"
  in_ns lb haproxy -f "$run/haproxy.cfg"
}

leader() {  # the PostgreSQL host whose Patroni answers 200 on /primary
  for host in pg1 pg2; do
    answers "http://$(ip_of $host):8008/primary" && { echo "$host"; return 0; }
  done
  return 1
}

wait_for() {  # SECONDS WHAT COMMAND…
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq 1 $((seconds * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "ha: $what not ready after $seconds s" >&2
  return 1
}

replicas_streaming() {  # the primary sees a synchronous standby streaming
  local l
  l=$(leader) || return 1
  [ "$(psql_on "$l" -d postgres -Atc "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming'")" -ge 1 ]
}

psql_on() {  # HOST psql-args…: as postgres on that host's socket (a folder: any namespace reaches it)
  local host=$1
  shift
  "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/$host" -p 5432 -U postgres "$@"
}

setup_database() {
  local l
  l=$(leader)
  psql_on "$l" -d postgres -v role=kiva -v owner=kiva_owner -v db=$db -v conn_limit=40 -v password="$(secret kiva)" \
    -v owner_password="$(secret kiva_owner)" -f deploy/db-setup.sql >/dev/null
  # pgBackRest's stanza (once), from the primary
  in_ns "$l" runuser -u postgres -- pgbackrest --config="$dir/$l/pgbackrest.conf" --stanza=kiva stanza-create
}

deploy_web() {  # N [make deploy variables…]
  local target=$dir/web$1
  shift
  mkdir -p "$target"
  chmod 755 "$dir" "$target"
  [ -f "$dir/app.secret" ] || (umask 077 && head -c 30 /dev/urandom | base64 | tr -d '/+=' >"$dir/app.secret")
  # HAProxy's address is the nodes' trusted proxy: the client's address is its X-Forwarded-For
  KIVA_LOCAL_CACHE=0 KIVA_TRUSTED_PROXIES=$(ip_of lb) $make --no-print-directory deploy DEPLOY_FORCE=1 DEPLOY_TARGET="$target" \
    KIVA_DB="$(kiva_db kiva)" KIVA_OWNER_DB="$(kiva_db kiva_owner)" APP_SECRET="${APP_SECRET:-$(cat "$dir/app.secret")}" \
    "$@" >/dev/null
  local env=$target/kiva.env
  # several hosts: no per-host cache of user rows (its generation would be this host's only)
  sed -i '/^KIVA_LOCAL_CACHE=/d' "$env"
  # the app's Redis account, in kiva.env (0600, beside APP_SECRET)
  sed -i '/^KIVA_REDIS=/d' "$env"
  echo "KIVA_REDIS=redis://kiva:$(redis_password kiva)@$(ip_of redis):6379/0" >>"$env"
  for var in KIVA_METRICS_TOKEN KIVA_PASSWORD_SLOTS; do
    if [ -n "${!var:-}" ]; then grep -q "^$var=" "$env" || echo "$var=${!var}" >>"$env"; fi
  done
}

start_web() {
  local host=web$1
  in_ns "$host" env DEPLOY_TARGET="$dir/$host" APACHE_PORT=80 APACHE_LISTEN="$(ip_of "$host")" \
    APACHE_TRUSTED_PROXY="$(ip_of lb)" deploy/apache.sh start >/dev/null
}

host_start() {  # HOST: its services, as at start
  case $1 in
    etcd*) start_etcd "$1" ;;
    pg*) start_patroni "$1" ;;
    redis) start_redis ;;
    web*) start_web "${1#web}" ;;
    lb) start_haproxy ;;
    *) echo "unknown host $1" >&2; exit 2 ;;
  esac
}

kill_host() {  # HOST: kill -9 of every process in its namespace
  local pids
  pids=$(ip netns pids "$(ns "$1")")
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
}

web_up() {  # both web nodes UP in HAProxy
  [ "$(echo "show stat" | in_ns lb python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"show stat\n"); s.shutdown(socket.SHUT_WR)
out = b""
while chunk := s.recv(65536): out += chunk
sys.stdout.write(out.decode())' "$dir/lb/haproxy.sock" | grep -c '^web,web[12],.*,UP,')" = 2 ]
}

start() {
  local t0=$SECONDS
  [ "$(id -u)" = 0 ] || { echo "ha: root only (network namespaces)" >&2; exit 1; }
  mkdir -p "$dir/secrets"
  chmod 755 "$dir"
  chmod 700 "$dir/secrets"
  net_up
  for m in etcd1 etcd2 etcd3; do start_etcd $m; done
  wait_for 30 "etcd" etcdctl --endpoints="$(etcd_hosts)" endpoint health
  start_patroni pg1
  wait_for 60 "the first primary" leader
  start_patroni pg2
  start_redis
  start_haproxy
  local fresh=0
  [ -f "$dir/.initialised" ] || fresh=1
  [ $fresh = 1 ] && setup_database
  wait_for 90 "a synchronous standby" replicas_streaming
  for n in 1 2; do
    if [ $n = 1 ] && [ $fresh = 1 ]; then
      deploy_web 1 DB_INIT=demo
      touch "$dir/.initialised"
    else
      deploy_web $n
    fi
    start_web $n
  done
  wait_for 30 "both web nodes UP in HAProxy" web_up
  # a first backup: the point-in-time recoveries start from one
  [ $fresh = 1 ] && in_ns "$(leader)" runuser -u postgres -- pgbackrest --config="$dir/$(leader)/pgbackrest.conf" \
    --stanza=kiva --type=full backup
  echo "ha: https://$(ip_of lb)/api (primary $(leader), stats http://$(ip_of lb):8404/), started in $((SECONDS - t0)) s"
}

stop() {
  # gently first (Patroni stops its PostgreSQL, Apache its daemons), then whatever is left
  for host in "${hosts[@]}"; do
    ip netns list | grep -qw "$(ns "$host")" || continue
    local pids
    pids=$(ip netns pids "$(ns "$host")")
    [ -n "$pids" ] && kill $pids 2>/dev/null || true
  done
  for _ in $(seq 1 100); do
    local left=0
    for host in "${hosts[@]}"; do
      ip netns list | grep -qw "$(ns "$host")" || continue
      [ -n "$(ip netns pids "$(ns "$host")")" ] && left=1
    done
    [ $left = 0 ] && break
    sleep 0.1
  done
  for host in "${hosts[@]}"; do
    ip netns list | grep -qw "$(ns "$host")" && kill_host "$host"
  done
  net_down
  echo "ha: stopped ($dir)"
}

patronictl_() { patronictl -c "$dir/pg1/patroni.yml" "$@"; }

env_() {
  cat <<ENV
HA_API=https://$(ip_of lb)/api
HA_CA=$dir/lb/kiva.crt
HA_NODES=http://$(ip_of web1)/api,http://$(ip_of web2)/api
HA_DIR=$dir
HA_NET=$net
HA_DB=$db
HA_SOCKET=$dir/lb/haproxy.sock
ENV
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) patronictl_ list ;;
  env) env_ ;;
  kill) kill_host "$2" ;;
  host-start) host_start "$2" ;;
  partition) ip link set "vkh-$2" down ;;
  # HOST no longer reaches OTHER (and OTHER's answers to it are lost): its packets to
  # OTHER go to a hardware address nobody has, silently, as across a broken link
  cut) in_ns "$2" ip neigh replace "$(ip_of "$3")" lladdr 02:00:00:00:00:99 dev eth0 nud permanent ;;
  uncut) in_ns "$2" ip neigh del "$(ip_of "$3")" dev eth0 ;;
  heal) ip link set "vkh-$2" up ;;
  leader) leader ;;
  patronictl) shift; patronictl_ "$@" ;;
  *) echo "usage: $0 start|stop|status|env|kill HOST|host-start HOST|partition HOST|heal HOST|cut HOST OTHER|uncut HOST OTHER|leader|patronictl ARGS" >&2; exit 2 ;;
esac
