#!/bin/bash
# make bench-cluster: the shared cache (Redis) vs none, through HAProxy, on a new cluster in
# its own folder: bench/cluster_bench.py with the nodes deployed with Redis, then without,
# then with again (the order's effect shows), the cluster stopped and removed at the end.
# Environment: MAKE, PYTHON, CLUSTER_* (see cluster.sh), BENCH_DURATION (8 s a run).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-venv/bin/python}
duration=${BENCH_DURATION:-8}

deploy/cluster.sh stop >/dev/null 2>&1 || true
rm -rf "${CLUSTER_DIR:?}"
trap 'deploy/cluster.sh stop >/dev/null 2>&1 || true' EXIT
CLUSTER_CACHE=redis deploy/cluster.sh start
eval "$(deploy/cluster.sh env)"
export CLUSTER_API CLUSTER_DIR CLUSTER_PG CLUSTER_NODES

echo "| cache | request | req/s | p50 ms | PostgreSQL CPU µs/req | PgBouncer CPU µs/req | Redis CPU µs/req | errors |"
echo "|---|---|---|---|---|---|---|---|"
for cache in redis none redis none; do
  for n in 1 2; do CLUSTER_CACHE=$cache deploy/cluster.sh node-deploy $n; done
  # each process loads the new configuration at its next request: ours, then both nodes UP
  for node in ${CLUSTER_NODES//,/ }; do
    for _ in $(seq 1 20); do curl -sf -o /dev/null "$node/version"; done
  done
  deploy/cluster.sh wait-up
  "$python" bench/cluster_bench.py $cache "$duration"
done

deploy/cluster.sh stop
trap - EXIT
rm -rf "$CLUSTER_DIR"
