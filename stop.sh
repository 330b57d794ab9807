#!/bin/bash
# Stop the Kiva server started by start.sh (APP_PID, default app.pid).
set -euo pipefail
cd "$(dirname "$0")"
pidfile=${APP_PID:-app.pid}
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    # wait for the port to be free, so that a restart can bind it at once
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "kiva stopped (pid $pid)"
  fi
  rm -f "$pidfile"
else
  echo "kiva is not running (no $pidfile)"
fi
