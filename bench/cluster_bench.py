# A local tool: it runs local commands on loopback URLs it builds itself
# ruff: noqa: S310, S603, S607
"""The shared cache through HAProxy: Redis vs none (make bench-cluster, deploy/cluster-bench.sh).

For each setting of the running cluster's nodes (KIVA_REDIS set or not, switched by
`deploy/cluster.sh node-deploy` with CLUSTER_CACHE), wrk through HAProxy on
authenticated reads, and the CPU time of PostgreSQL's processes (the postmaster and
its backends, from /proc), PgBouncer's and Redis's, per request.

    python bench/cluster_bench.py redis|none [DURATION]   # prints one line per scenario
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

from procs import ROOT, cpu_ticks, descendants, found, pidfile

API = os.environ["CLUSTER_API"]
CLUSTER_DIR = os.environ["CLUSTER_DIR"]
PG_DIR = found(r"host=(\S+)", os.environ["CLUSTER_PG"])
TICK = os.sysconf("SC_CLK_TCK")
SCENARIOS = {  # name: (path, what the app reads for it without the cache)
    "GET /whoami (token)": "/whoami",
    "GET /object/1 (owner's token)": "/object/1",
}


def main(setting: str, duration: int) -> None:
    req = urllib.request.Request(API + "/login", headers={"Authorization": "Basic Y2FsdmluOmhvYmJlcw=="})
    with urllib.request.urlopen(req, timeout=10) as res:
        auth = "Bearer " + json.loads(res.read())
    groups = {
        "postgres": lambda: descendants(pidfile(os.path.join(PG_DIR, "data", "postmaster.pid"))),
        "pgbouncer": lambda: [pidfile(os.path.join(CLUSTER_DIR, "pgbouncer", "pgbouncer.pid"))],
        "redis": lambda: [pidfile(os.path.join(CLUSTER_DIR, "redis", "redis.pid"))] if setting == "redis" else [],
    }
    for name, path in SCENARIOS.items():
        env = dict(os.environ, BENCH_MODE="plain", BENCH_AUTH=auth, BENCH_PREFIX="/api", BENCH_PATH=path)
        cmd = ["wrk", "-t2", "-c16", "-s", os.path.join(ROOT, "bench", "wrk.lua"), API.rsplit("/api", 1)[0]]
        subprocess.run([*cmd[:1], "-d2s", *cmd[1:]], env=env, capture_output=True, check=True)  # warm-up
        pids = {g: f() for g, f in groups.items()}
        before = {g: cpu_ticks(p) for g, p in pids.items()}
        out = subprocess.run([*cmd[:1], f"-d{duration}s", *cmd[1:]], env=env, capture_output=True, text=True).stdout
        after = {g: cpu_ticks(p) for g, p in pids.items()}
        r = json.loads(found(r"BENCH_JSON (\{.*\})", out))
        n = max(r["requests"], 1)
        errors = r["connect"] + r["read"] + r["write"] + r["timeout"] + r["status"]
        cpu = {g: (after[g] - before[g]) / TICK * 1e6 / n for g in groups}  # µs per request
        print(
            f"| {setting} | {name} | {r['requests'] / (r['duration_us'] / 1e6):.0f} | {r['p50_us'] / 1000:.1f} | "
            f"{cpu['postgres']:.0f} | {cpu['pgbouncer']:.0f} | {cpu['redis']:.0f} | {errors} |",
            flush=True,
        )
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8)
