#!/bin/bash
# HAProxy in front of a private Apache (deploy/kiva-haproxy.cfg): the single server's
# buffering front, started and stopped by deploy/apache.sh when FRONT_PORT is given,
# and by make test-apache-drills' TLS check.
#
#   FRONT_DIR=<folder> KIVA_BACKEND=127.0.0.1:8085 KIVA_FRONT_BIND=127.0.0.1:8086 deploy/front.sh start
#   FRONT_DIR=<folder> KIVA_BACKEND=… KIVA_TLS_BIND=… KIVA_TLS_PEM=… KIVA_HTTP_BIND=… deploy/front.sh start
#   FRONT_DIR=<folder> deploy/front.sh stop
#
# FRONT_DIR holds the pid file. `start` returns once the front listens.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
run=${FRONT_DIR:?FRONT_DIR: a folder for the pid file}
pidfile=$run/haproxy.pid

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  mkdir -p "$run"
  running && { echo "front already running (pid $(cat "$pidfile"))"; return 0; }
  haproxy -c -q -f "$here/kiva-haproxy.cfg"
  haproxy -D -p "$pidfile" -f "$here/kiva-haproxy.cfg"
  local bind=${KIVA_FRONT_BIND:-${KIVA_TLS_BIND:-}}
  for _ in $(seq 1 100); do
    if python3 -c "import socket, sys; h, p = sys.argv[1].rsplit(':', 1); socket.create_connection((h or '127.0.0.1', int(p)), 1)" "$bind" 2>/dev/null; then
      echo "front (HAProxy) on $bind → $KIVA_BACKEND (pid $(cat "$pidfile"))"
      return 0
    fi
    sleep 0.1
  done
  echo "front: nothing listens on $bind" >&2
  stop
  exit 1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "front running (pid $(cat "$pidfile"))"; else echo "front not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
