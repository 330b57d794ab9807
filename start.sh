#!/bin/bash
# Start Kiva in the background with Flask's own server, for development and tests
# (production is Apache + mod_wsgi, see kiva.wsgi). Returns once /version answers,
# or fails with the log's tail.
#
# Environment: APP_CONFIG (./app.conf), APP_HOST (127.0.0.1), APP_PORT (5000),
# APP_LOG (app.log), APP_PID (app.pid), APP_DEBUG=1 for Flask's debug mode, which
# is refused on anything but a loopback address: its debugger runs any code.
set -euo pipefail
cd "$(dirname "$0")"

export APP_CONFIG=${APP_CONFIG:-./app.conf}
host=${APP_HOST:-127.0.0.1}
port=${APP_PORT:-5000}
log=${APP_LOG:-app.log}
pidfile=${APP_PID:-app.pid}

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "kiva already running (pid $(cat "$pidfile"))"
  exit 0
fi

debug=()
if [ "${APP_DEBUG:-0}" = 1 ]; then
  case "$host" in
    127.*|localhost|::1) debug=(--debug) ;;
    *) echo "refusing APP_DEBUG=1 on $host: the debugger must not listen on a public address" >&2; exit 2 ;;
  esac
fi

venv/bin/flask --app app "${debug[@]}" run --host "$host" --port "$port" >>"$log" 2>&1 &
pid=$!
echo $pid >"$pidfile"

url="http://$host:$port/version"
for _ in $(seq 1 100); do
  if venv/bin/python -c "import urllib.request as u; u.urlopen('$url', timeout=1)" 2>/dev/null; then
    echo "kiva serving on http://$host:$port (pid $pid, log $log)"
    exit 0
  fi
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
echo "kiva did not start, see $log:" >&2
tail -n 20 "$log" >&2
kill $pid 2>/dev/null || true
rm -f "$pidfile"
exit 1
