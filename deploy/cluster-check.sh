#!/bin/bash
# make test-cluster: a new cluster (deploy/cluster.sh) in its own folder, then
#
# 1. the whole external test suite through HAProxy (both nodes, 2 processes each: the
#    freshness tests must see the refusals from all 4 processes, in the shared log),
# 2. tests/test_cluster.py: the shared cache fresh on each node right after a change
#    made through the other one,
# 3. drills/slow_clients.py: 64 slow bodies and 64 slow headers cost the nodes nothing,
# 4. drills/cluster_drills.py: a node killed, a rolling deploy, Redis stopped, PostgreSQL
#    restarted, each under load;
#
# and the cluster stopped whatever happened, its folder removed when all passed.
# Environment: MAKE, APP_SECRET, PYTEST, PYTHON, CLUSTER_* (see cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-venv/bin/python}
pytest=${PYTEST:-venv/bin/pytest}
t0=$SECONDS

deploy/cluster.sh stop >/dev/null 2>&1 || true
rm -rf "${CLUSTER_DIR:?}"
trap 'deploy/cluster.sh stop >/dev/null 2>&1 || true' EXIT
deploy/cluster.sh start
eval "$(deploy/cluster.sh env)"
export CLUSTER_API CLUSTER_NODES CLUSTER_SOCKET CLUSTER_DIR CLUSTER_PG CLUSTER_REDIS_PORT CLUSTER_LOG

echo "test-cluster: the external test suite through HAProxy at $CLUSTER_API"
KIVA_AUDIT_LOG=$CLUSTER_LOG KIVA_SERVER_PROCESSES=$((2 * ${APACHE_PROCESSES:-2})) KIVA_CLUSTER_NODES=2 \
  FLASK_TESTER_APP=$CLUSTER_API "$pytest" -q

echo "test-cluster: freshness of the shared cache across the nodes"
FLASK_TESTER_APP=$CLUSTER_API "$pytest" -q tests/test_cluster.py

echo "test-cluster: slow clients through HAProxy"
"$python" drills/slow_clients.py "$CLUSTER_API"

echo "test-cluster: drills"
"$python" drills/cluster_drills.py || { tail -n 30 "$CLUSTER_LOG" >&2; exit 1; }
echo "test-cluster: $(grep -c 'Traceback' "$CLUSTER_LOG" || true) tracebacks in the app's log"

deploy/cluster.sh stop
trap - EXIT
rm -rf "$CLUSTER_DIR"
echo "test-cluster: passed in $((SECONDS - t0)) s"
