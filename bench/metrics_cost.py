#!/usr/bin/python3
# A local tool: it runs local commands, in /tmp folders, on loopback URLs it builds itself
# ruff: noqa: S103, S108, S310, S603, S607, S608
"""What the metrics cost: `make bench-metrics` (stdlib only, /usr/bin/python3).

A/B of the same token GET on two deployments side by side, on one PostgreSQL
database: this commit (with metrics.py) and BASE (default: the last commit of main
without it, `git merge-base`), each served by its own private Apache + mod_wsgi (2
processes x 4 threads, deploy/apache.sh). The runs alternate (on, off, on, off...),
so that the other work of this shared machine weighs on both alike. The figure is the
CPU time of each Apache tree (/proc utime + stime of the parent and its daemon
processes) per request: robust on a shared machine, where req/s follows the load of
others. wrk sends `GET /api/things/<tid>` with a bearer token, and every answer must be
a 200.

Servers: PostgreSQL on BENCH_METRICS_PG_PORT (production durability: fsync on), the
Apaches on BENCH_METRICS_PORT (with metrics) and BENCH_METRICS_PORT + 1 (without).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from procs import cpu_ticks, descendants, found, pidfile  # noqa: E402  # /proc helpers of make bench

env = os.environ.get
PG_PORT = env("BENCH_METRICS_PG_PORT", "9192")
PG_DIR = f"/tmp/kiva-pg-{PG_PORT}"
PG_BIN = env("PG_BIN", "/usr/lib/postgresql/15/bin")
PORT = int(env("BENCH_METRICS_PORT", "9193"))
ROUNDS = int(env("BENCH_METRICS_ROUNDS", "4"))
DURATION = int(env("BENCH_METRICS_DURATION", "8"))  # seconds per wrk run
BASE = (
    env("BENCH_METRICS_BASE")
    or subprocess.run(
        ["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
)
DB = "kiva_bench_metrics"
KIVA_DB = f"host={PG_DIR} port={PG_PORT} dbname={DB} user=kiva"
KIVA_OWNER_DB = f"host={PG_DIR} port={PG_PORT} dbname={DB} user=kiva_owner"  # the schema's owner
SECRET = os.urandom(20).hex()
PASSWORD = os.urandom(10).hex()
TICK = os.sysconf("SC_CLK_TCK")
DIRS = {"with metrics": "/tmp/kiva-bench-metrics-on", "without metrics": "/tmp/kiva-bench-metrics-off"}
SOURCE_OFF = "/tmp/kiva-bench-metrics-off-src"


def run(*cmd, **kw) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=kw.pop("cwd", ROOT), **kw)
    if res.returncode:
        raise SystemExit(f"bench-metrics: failed: {' '.join(cmd)}\n{res.stdout}{res.stderr}")
    return res.stdout


def psql(*args, db=DB, user="postgres") -> str:
    return run(
        f"{PG_BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", PG_DIR, "-p", PG_PORT, "-U", user, "-d", db, *args
    )


def pg_env() -> dict:
    return dict(os.environ, PG_PORT=PG_PORT, PG_DIR=PG_DIR, PG_DB="kiva")


def apache(action: str, name: str, port: int = 0):
    run("deploy/apache.sh", action, env=dict(os.environ, DEPLOY_TARGET=DIRS[name], APACHE_PORT=str(port)))


def setup() -> tuple[str, int]:
    run("scripts/pg.sh", "start", env=pg_env())
    # scripts/pg.sh starts its clusters with fsync off (for the tests): a benchmark runs with it on
    psql("-c", "ALTER SYSTEM SET fsync = on", db="postgres")
    psql("-c", "SELECT pg_reload_conf()", db="postgres")
    psql(
        *("-v", "role=kiva", "-v", "owner=kiva_owner", "-v", f"db={DB}"),
        *("-v", f"password={SECRET}", "-v", f"owner_password={SECRET}", "-f", "deploy/db-setup.sql"),
        db="postgres",
    )
    # the same code without metrics: the tree of BASE, deployed by its own deploy script
    shutil.rmtree(SOURCE_OFF, ignore_errors=True)
    os.makedirs(SOURCE_OFF)
    archive = subprocess.run(["git", "archive", BASE], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", SOURCE_OFF], input=archive, check=True)
    for name, source, init in (("with metrics", ROOT, "1"), ("without metrics", SOURCE_OFF, "0")):
        target = DIRS[name]
        if os.path.exists(os.path.join(target, "apache", "httpd.pid")):
            apache("stop", name)
        os.makedirs(target, exist_ok=True)
        os.chmod(target, 0o755)
        if os.path.exists(os.path.join(target, "kiva.env")):
            os.remove(os.path.join(target, "kiva.env"))
        deploy_env = dict(
            os.environ,
            DEPLOY_TARGET=target,
            KIVA_DB=KIVA_DB,
            KIVA_OWNER_DB=KIVA_OWNER_DB,
            APP_SECRET=SECRET,
            DB_INIT=init,
        )
        deploy_env.pop("KIVA_THROTTLE_SECONDS", None)
        run("deploy/deploy.sh", cwd=source, env=deploy_env)
    # the benchmark's user (a production-cost hash) and one thing to read
    venv_python = os.path.join(DIRS["with metrics"], "venv", "bin", "python")
    hashed = run(
        venv_python,
        "-c",
        "import bcrypt,sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(12)).decode())",
        PASSWORD,
    )
    login = f"bench{os.getpid()}"
    psql(
        "-c",
        f"INSERT INTO Utilisateur(login, pword, isAdmin) VALUES ('{login}', '{hashed.strip()}', FALSE)",
        user="kiva",
    )
    oid = psql(
        "-tA",
        "-c",
        f"INSERT INTO Owner(oname, omail) VALUES ('{login}', 'bench@example.org') RETURNING oid",
        user="kiva",
    ).split()[0]
    tid = psql(
        "-tA", "-c", f"INSERT INTO Thing(tname, oid, tprice) VALUES ('bench', {oid}, 1) RETURNING tid", user="kiva"
    ).split()[0]
    for i, name in enumerate(DIRS):
        apache("start", name, PORT + i)
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/api/login", method="POST", data=f"USER={login}&PASS={PASSWORD}".encode()
    )
    with urllib.request.urlopen(request, timeout=30) as res:
        token = json.loads(res.read())
    return token, int(tid)


def measure(name: str, port: int, token: str, tid: int) -> dict:
    url = f"http://127.0.0.1:{port}/api/things/{tid}"
    cmd = ["wrk", "-t1", "-c4", "-H", f"Authorization: Bearer {token}", url]
    subprocess.run([*cmd[:1], "-d1s", *cmd[1:]], capture_output=True, check=True)  # warm-up
    pids = descendants(pidfile(os.path.join(DIRS[name], "apache", "httpd.pid")))
    before = cpu_ticks(pids)
    out = run(*cmd[:1], f"-d{DURATION}s", *cmd[1:])
    ticks = cpu_ticks(pids) - before
    requests = int(found(r"(\d+) requests in", out))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad or re.search(r"Socket errors", out):
        raise SystemExit(f"bench-metrics: errors in {name}:\n{out}")
    return {"rps": float(found(r"Requests/sec:\s+([\d.]+)", out)), "cpu_ms": ticks / TICK * 1000 / requests}


def main():
    token, tid = setup()
    runs: dict[str, list[dict]] = {name: [] for name in DIRS}
    for r in range(ROUNDS):
        order = list(DIRS) if r % 2 == 0 else list(reversed(DIRS))
        for name in order:
            res = measure(name, PORT + list(DIRS).index(name), token, tid)
            runs[name].append(res)
            print(f"round {r + 1} {name}: {res['rps']:.0f} req/s, {res['cpu_ms']:.3f} ms CPU/request", flush=True)

    def median(values: list[float]) -> float:
        values = sorted(values)
        return (values[(len(values) - 1) // 2] + values[len(values) // 2]) / 2

    on, off = runs["with metrics"], runs["without metrics"]
    cpu_on, cpu_off = median([r["cpu_ms"] for r in on]), median([r["cpu_ms"] for r in off])
    rps_on, rps_off = median([r["rps"] for r in on]), median([r["rps"] for r in off])
    print(f"base without metrics: {BASE[:10]}; {ROUNDS} rounds of {DURATION} s, wrk -t1 -c4, 2 processes x 4 threads")
    print(f"medians: with metrics {cpu_on:.3f} ms CPU/request, {rps_on:.0f} req/s;", end=" ")
    print(f"without {cpu_off:.3f} ms CPU/request, {rps_off:.0f} req/s")
    cpu, rps = (cpu_on / cpu_off - 1) * 100, (rps_on / rps_off - 1) * 100
    print(
        f"cost of the metrics: {cpu:+.1f} % CPU per request ({(cpu_on - cpu_off) * 1000:+.0f} us), {rps:+.1f} % req/s"
    )
    paired = sum(a["cpu_ms"] - b["cpu_ms"] for a, b in zip(on, off, strict=True)) / ROUNDS
    print(f"mean of the rounds' differences: {paired * 1000:+.0f} us CPU per request ({paired / cpu_off * 100:+.1f} %)")


def cleanup():
    for name in DIRS:
        if os.path.exists(os.path.join(DIRS[name], "apache", "httpd.pid")):
            subprocess.run(
                ["deploy/apache.sh", "stop"],
                cwd=ROOT,
                capture_output=True,
                env=dict(os.environ, DEPLOY_TARGET=DIRS[name]),
            )
    subprocess.run(["scripts/pg.sh", "stop"], cwd=ROOT, capture_output=True, env=pg_env())


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
