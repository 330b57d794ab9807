#!/bin/bash
# make test-ha: a new HA topology (deploy/ha.sh) in its own folder, then the drills
# (drills/ha_drills.py), and the topology stopped whatever happened, its folder removed
# when all passed. Root only (network namespaces). Environment: MAKE, APP_SECRET,
# PYTHON, HA_DIR, HA_NET (see ha.sh); HA_DRILLS: the drills to run (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-venv/bin/python}
t0=$SECONDS

deploy/ha.sh stop >/dev/null 2>&1 || true
rm -rf "${HA_DIR:?}"
trap 'deploy/ha.sh stop >/dev/null 2>&1 || true' EXIT
deploy/ha.sh start
eval "$(deploy/ha.sh env)"
export HA_API HA_CA HA_NODES HA_DIR HA_NET HA_DB HA_SOCKET

echo "test-ha: drills"
# shellcheck disable=SC2086
"$python" drills/ha_drills.py ${HA_DRILLS:-} || {
  tail -n 20 "$HA_DIR"/web1/apache/kiva-error.log "$HA_DIR"/pg*/patroni.log >&2 || true
  exit 1
}
echo "test-ha: $(cat "$HA_DIR"/web*/apache/kiva-error.log | grep -c 'Traceback' || true) tracebacks in the app's logs"

deploy/ha.sh stop
trap - EXIT
rm -rf "$HA_DIR"
echo "test-ha: passed in $((SECONDS - t0)) s"
