#!/usr/bin/python3
# A local tool: it runs local commands, in /tmp folders, on loopback URLs it builds itself
# ruff: noqa: S103, S108, S310, S603, S607, S608
"""Kiva's performance benchmark: `make bench` runs it (stdlib only, /usr/bin/python3).

In one run, with bounded durations:

1. a private PostgreSQL cluster (scripts/pg.sh, PG_PORT 5440), the database and role
   of production (deploy/db-setup.sql), Kiva deployed by `make deploy` to a /tmp folder
   and served by a private Apache + mod_wsgi (deploy/apache.sh) on BENCH_APP_PORT;
2. generated data (bench/data.sql, generate_series), N growing from 10^3 to 10^6;
3. wrk on loopback for each scenario; app and database CPU from /proc, the status
   codes from Apache's access log, the RSS of the mod_wsgi daemon processes;
4. the floors: pgbench -S on the same server, and bench/floor.wsgi (20 lines of raw
   WSGI + psycopg) served by the same mod_wsgi configuration on BENCH_FLOOR_PORT;
5. a variant with in-process caches (bench/server-cache.conf, bench/cache.wsgi): what
   Kiva's freshness design costs;
6. the table, the ratios and one line per target; bench/last-run.md keeps them.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
env = os.environ.get

PG_PORT = env("PG_PORT", "5440")
PG_DIR = env("PG_DIR", f"/tmp/kiva-pg-{PG_PORT}")
PG_BIN = env("PG_BIN", "/usr/lib/postgresql/15/bin")
DB = env("BENCH_DB", "kiva_bench")
ROLE = env("DB_ROLE", "kiva")
APP_PORT = int(env("BENCH_APP_PORT", "8090"))
FLOOR_PORT = int(env("BENCH_FLOOR_PORT", "8091"))
PROCESSES = int(env("BENCH_PROCESSES", "2"))
THREADS = int(env("BENCH_THREADS", "4"))
DURATION = int(env("BENCH_DURATION", "6"))  # seconds per wrk run
WARMUP = int(env("BENCH_WARMUP", "1"))
CONNECTIONS = int(env("BENCH_CONNECTIONS", "16"))
WRK_THREADS = int(env("BENCH_WRK_THREADS", "2"))
NS = [int(n) for n in env("BENCH_NS", "1000,100000,1000000").split(",")]
APP_DIR = env("BENCH_DEPLOY", "/tmp/kiva-bench-app")
FLOOR_DIR = env("BENCH_FLOOR_DIR", "/tmp/kiva-bench-floor")
CACHE_DIR = env("BENCH_CACHE_DIR", "/tmp/kiva-bench-cache")
OUT = env("BENCH_OUT", os.path.join(BENCH, "last-run.md"))
CACHE_VARIANT = env("BENCH_CACHE_VARIANT", "1") == "1"
KIVA_DB = f"host={PG_DIR} port={PG_PORT} dbname={DB} user={ROLE}"
SECRET = base64.b32encode(os.urandom(20)).decode()
PASSWORD = "bench-" + base64.b32encode(os.urandom(10)).decode()
TICK = os.sysconf("SC_CLK_TCK")
T0 = time.time()
lines: list[str] = []  # what goes to bench/last-run.md


def say(msg: str = "", keep: bool = True):
    print(msg, flush=True)
    if keep:
        lines.append(msg)


def log(msg: str):
    print(f"[{time.time() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def run(*cmd, **kw) -> str:
    kw.setdefault("cwd", ROOT)
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(f"bench: failed: {' '.join(cmd)}")
    return res.stdout


def psql(*args, db=DB, user="postgres") -> str:
    return run(
        f"{PG_BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", PG_DIR, "-p", PG_PORT, "-U", user, "-d", db, *args
    )


#
# servers
#


def apache(action: str, target: str, port: int, processes=PROCESSES, threads=THREADS):
    e = dict(os.environ, DEPLOY_TARGET=target, APACHE_PORT=str(port))
    e.update(APACHE_PROCESSES=str(processes), APACHE_THREADS=str(threads))
    run("deploy/apache.sh", action, env=e)


def setup():
    log(f"PostgreSQL on port {PG_PORT} ({PG_DIR})")
    e = dict(os.environ, PG_PORT=PG_PORT, PG_DIR=PG_DIR, PG_DB="kiva")
    run("scripts/pg.sh", "start", env=e)
    # the production role and database; a connection limit above the app, floor and variant
    psql(
        "-v",
        f"role={ROLE}",
        "-v",
        f"db={DB}",
        "-v",
        "conn_limit=100",
        "-v",
        f"password={SECRET}",
        "-f",
        "deploy/db-setup.sql",
        db="postgres",
    )
    log(f"make deploy to {APP_DIR} (DB_INIT=1)")
    for d in (APP_DIR, FLOOR_DIR, CACHE_DIR):
        if os.path.exists(os.path.join(d, "apache", "httpd.pid")):
            apache("stop", d, 0)
    if os.path.exists(os.path.join(APP_DIR, "kiva.env")):
        os.remove(os.path.join(APP_DIR, "kiva.env"))  # a new secret and database for this run
    os.makedirs(APP_DIR, exist_ok=True)
    os.chmod(APP_DIR, 0o755)
    run(
        "make",
        "--no-print-directory",
        "deploy",
        "DEPLOY_FORCE=1",
        "DB_INIT=1",
        f"DEPLOY_TARGET={APP_DIR}",
        f"KIVA_DB={KIVA_DB}",
        f"APP_SECRET={SECRET}",
        f"PG_PORT={PG_PORT}",
        f"PG_DIR={PG_DIR}",
    )
    # the raw floor: its own folder, the deployed venv, the same kiva.env and Apache configuration
    # the in-process cache variant: a copy of the deployment with the bench-only config and entry point
    for d in (FLOOR_DIR, CACHE_DIR):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(APP_DIR, CACHE_DIR, symlinks=True, ignore=shutil.ignore_patterns("apache", "venv"))
    os.makedirs(FLOOR_DIR)
    for d in (FLOOR_DIR, CACHE_DIR):
        os.chmod(d, 0o755)
        os.symlink(os.path.join(APP_DIR, "venv"), os.path.join(d, "venv"))
        shutil.copy2(os.path.join(APP_DIR, "kiva.env"), os.path.join(d, "kiva.env"))
    shutil.copy(os.path.join(BENCH, "floor.wsgi"), os.path.join(FLOOR_DIR, "kiva.wsgi"))
    os.rename(os.path.join(CACHE_DIR, "kiva.wsgi"), os.path.join(CACHE_DIR, "kiva-prod.wsgi"))
    os.rename(os.path.join(CACHE_DIR, "server.conf"), os.path.join(CACHE_DIR, "server-prod.conf"))
    shutil.copy(os.path.join(BENCH, "cache.wsgi"), os.path.join(CACHE_DIR, "kiva.wsgi"))
    shutil.copy(os.path.join(BENCH, "server-cache.conf"), os.path.join(CACHE_DIR, "server.conf"))
    # the benchmark's user: a production-cost hash (bcrypt 12), like real accounts
    bench_hash = run(
        f"{APP_DIR}/venv/bin/python",
        "-c",
        "import bcrypt, sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(12)).decode())",
        PASSWORD,
    ).strip()
    psql("-c", f"INSERT INTO Utilisateur(login, pword, isAdmin) VALUES ('bench', '{bench_hash}', FALSE)", user=ROLE)
    return bench_hash


def load(lo: int, hi: int, bench_hash: str):
    t = time.time()
    psql(
        "-v", f"lo={lo}", "-v", f"hi={hi}", "-v", f"hash={bench_hash}", "-f", os.path.join(BENCH, "data.sql"), user=ROLE
    )
    psql("-c", "CHECKPOINT", db="postgres")  # its writes must not land in the next measurement
    log(f"data: N={hi} loaded in {time.time() - t:.1f}s")
    return time.time() - t


#
# measurements
#


def children(root: int) -> list[int]:
    """root and its descendants."""
    parents = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    parents[int(p)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(c for c, pp in parents.items() if pp == pid)
    return found


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total


def pidfile(path: str) -> int:
    with open(path) as f:
        return int(f.readline())


def wsgi_rss_mb(apache_pid: int) -> list[float]:
    rss = []
    for pid in children(apache_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if not f.read().startswith(b"(wsgi:"):
                    continue
            with open(f"/proc/{pid}/status") as f:
                kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            rss.append(kb / 1024)
        except (OSError, AttributeError):
            pass
    return rss


def get(url: str, auth: str | None = None) -> bytes:
    req = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
    with urllib.request.urlopen(req, timeout=10) as res:
        return res.read()


results: list[dict] = []


def wrk(
    name: str,
    target: str,
    port: int,
    mode: str,
    n: int,
    auth: str = "",
    path: str = "/version",
    duration: int = DURATION,
) -> dict:
    """One wrk run (after a short warm-up), with the server's CPU, statuses and RSS."""
    e = dict(os.environ, BENCH_MODE=mode, BENCH_N=str(n), BENCH_AUTH=auth, BENCH_PREFIX="/api", BENCH_PATH=path)
    url = f"http://127.0.0.1:{port}"
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", "-s", os.path.join(BENCH, "wrk.lua"), "--latency", url]
    if WARMUP:
        subprocess.run([*cmd[:1], f"-d{WARMUP}s", *cmd[1:]], env=e, capture_output=True)
    app_pids = children(pidfile(os.path.join(target, "apache", "httpd.pid")))
    pg_pids = children(pidfile(os.path.join(PG_DIR, "data", "postmaster.pid")))
    access = os.path.join(target, "apache", "kiva-access.log")
    offset = os.path.getsize(access)
    app0, pg0 = cpu_ticks(app_pids), cpu_ticks(pg_pids)
    out = subprocess.run(
        [cmd[0], f"-d{duration}s", "--timeout", "5s", *cmd[1:]], env=e, capture_output=True, text=True
    ).stdout
    app1, pg1 = cpu_ticks(app_pids), cpu_ticks(pg_pids)
    time.sleep(0.3)  # let Apache write its last access lines
    statuses: dict[str, int] = {}
    with open(access, "rb") as f:
        f.seek(offset)
        for line in f:
            m = re.search(rb'" (\d{3}) ', line)
            if m:
                statuses[m.group(1).decode()] = statuses.get(m.group(1).decode(), 0) + 1
    m = re.search(r"BENCH_JSON (\{.*\})", out)
    if not m:
        raise SystemExit(f"bench: no result from wrk for {name}:\n{out}")
    r = json.loads(m.group(1))
    reqs = max(r["requests"], 1)
    rss = wsgi_rss_mb(pidfile(os.path.join(target, "apache", "httpd.pid")))
    res = {
        "name": name,
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50": r["p50_us"] / 1000,
        "p99": r["p99_us"] / 1000,
        "errors": r["connect"] + r["read"] + r["write"] + r["timeout"] + r["status"],
        "5xx": sum(c for s, c in statuses.items() if s.startswith("5")),
        "statuses": statuses,
        "app_ms": (app1 - app0) / TICK * 1000 / reqs,
        "db_ms": (pg1 - pg0) / TICK * 1000 / reqs,
        "rss": sum(rss) / len(rss) if rss else 0.0,
    }
    results.append(res)
    log(
        f"{name}: {res['rps']:.0f} req/s p50 {res['p50']:.1f} ms p99 {res['p99']:.1f} ms "
        f"errors {res['errors']} statuses {statuses}"
    )
    return res


def pgbench() -> float:
    """pgbench -S, 4 connections, on its own database of the same server."""
    psql("-c", "DROP DATABASE IF EXISTS pgbench_bench", "-c", "CREATE DATABASE pgbench_bench", db="postgres")
    run(f"{PG_BIN}/pgbench", "-i", "-q", "-s", "10", "-h", PG_DIR, "-p", PG_PORT, "-U", "postgres", "pgbench_bench")
    out = run(
        f"{PG_BIN}/pgbench",
        "-S",
        "-n",
        "-c",
        "4",
        "-j",
        "2",
        "-T",
        str(DURATION),
        "-h",
        PG_DIR,
        "-p",
        PG_PORT,
        "-U",
        "postgres",
        "pgbench_bench",
    )
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    log(f"pgbench -S: {tps:.0f} tps")
    return tps


def wrk_version() -> str:
    return subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(" [")[0]


def mod_wsgi_version() -> str:
    out = subprocess.run(["dpkg-query", "-W", "libapache2-mod-wsgi-py3"], capture_output=True, text=True).stdout
    return out.split()[-1] if out else "?"


def versions() -> list[str]:
    py = f"{APP_DIR}/venv/bin/python"
    pkgs = run(
        py,
        "-c",
        "from importlib.metadata import version as v; print(' '.join(f'{p} {v(p)}' for p in "
        "['FlaskSimpleAuth', 'Flask', 'anodb', 'psycopg', 'bcrypt']))",
    ).strip()
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    return [
        f"machine: {os.cpu_count()} cores, {cpu}, {run('uname', '-r').strip()}",
        f"software: {run(py, '--version').strip()}, {pkgs}, "
        f"{run(f'{PG_BIN}/postgres', '--version').strip()}, {run('/usr/sbin/apache2', '-v').splitlines()[0]}, "
        f"mod_wsgi {mod_wsgi_version()}, {wrk_version()}",
        f"configuration: mod_wsgi {PROCESSES} processes x {THREADS} threads, wrk -t{WRK_THREADS} -c{CONNECTIONS} "
        f"-d{DURATION}s (+{WARMUP}s warm-up), server.conf (FSA_MODE prod, bcrypt 12, FSA_CACHE none, audit log on)",
    ]


#
# the run
#


def main():
    bench_hash = setup()
    apache("start", APP_DIR, APP_PORT)
    app = f"http://127.0.0.1:{APP_PORT}/api"
    basic = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
    token = "Bearer " + json.loads(get(f"{app}/login", basic))
    lo = 0
    load_s = {}
    for n in NS:
        load_s[n] = load(lo, n, bench_hash)
        lo = n
        wrk(f"GET /stuff?filter=X%&limit=100 N={n}", APP_DIR, APP_PORT, "stuff_list", n)
        wrk(f"GET /things?after=…&limit=100 N={n}", APP_DIR, APP_PORT, "things_list", n, auth=token)
    n = NS[-1]
    version = wrk("GET /version", APP_DIR, APP_PORT, "plain", n)
    open_ = wrk(f"GET /stuff/<sid> open N={n}", APP_DIR, APP_PORT, "stuff_sid", n)
    tok = wrk(f"GET /things/<tid> token N={n}", APP_DIR, APP_PORT, "things_tid", n, auth=token)
    bas = wrk(f"GET /things/<tid> basic N={n}", APP_DIR, APP_PORT, "things_tid", n, auth=basic)
    wrk("POST /stuff + DELETE /stuff/<sid>", APP_DIR, APP_PORT, "post_delete", n)
    app_rss = wsgi_rss_mb(pidfile(os.path.join(APP_DIR, "apache", "httpd.pid")))
    apache("stop", APP_DIR, APP_PORT)

    apache("start", FLOOR_DIR, FLOOR_PORT)
    floor = wrk(f"floor: raw WSGI GET /things/<tid> N={n}", FLOOR_DIR, FLOOR_PORT, "things_tid", n)
    apache("stop", FLOOR_DIR, FLOOR_PORT)
    tps = pgbench()

    cached = None
    if CACHE_VARIANT:
        apache("start", CACHE_DIR, APP_PORT)
        ctoken = "Bearer " + json.loads(get(f"{app}/login", basic))
        cached = wrk(
            f"variant: in-process caches, GET /things/<tid> token N={n}",
            CACHE_DIR,
            APP_PORT,
            "things_tid",
            n,
            auth=ctoken,
        )
        apache("stop", CACHE_DIR, APP_PORT)

    report(version, open_, tok, bas, floor, tps, cached, app_rss, load_s)


def report(version, open_, tok, bas, floor, tps, cached, app_rss, load_s):
    say(f"# Kiva benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    say()
    for v in versions():
        say(f"- {v}")
    say(
        "- data load (generate_series, then VACUUM ANALYZE): "
        + ", ".join(f"N={n}: {s:.1f}s" for n, s in load_s.items())
    )
    say(
        f"- RSS of the {len(app_rss)} mod_wsgi daemon processes after the run: "
        + ", ".join(f"{r:.0f} MB" for r in app_rss)
    )
    say()
    say(
        "| scenario | req/s | p50 ms | p99 ms | errors | 5xx | app CPU ms/req | db CPU ms/req | RSS/worker MB "
        "| / floor | / pgbench |"
    )
    say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        say(
            f"| {r['name']} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['errors']} | {r['5xx']} | "
            f"{r['app_ms']:.2f} | {r['db_ms']:.2f} | {r['rss']:.0f} | {r['rps'] / floor['rps']:.2f} | "
            f"{r['rps'] / tps:.3f} |"
        )
    say(f"| floor: pgbench -S, 4 connections | {tps:.0f} tps | | | | | | | | {tps / floor['rps']:.2f} | 1.000 |")
    say()
    if cached:
        cost = 1 - tok["rps"] / cached["rps"]
        say(
            f"freshness: token GET /things/<tid> {tok['rps']:.0f} req/s (FSA_CACHE none, one user query per request)"
            f" vs {cached['rps']:.0f} req/s with in-process caches: freshness costs {cost * 100:.0f}% of req/s"
            f" ({(tok['app_ms'] + tok['db_ms']) - (cached['app_ms'] + cached['db_ms']):.2f} ms CPU/request)"
        )
        say()
    lists = {r["name"]: r for r in results if "limit=100" in r["name"]}
    growth = max(
        lists[f"{kind} N={NS[-1]}"]["p99"] / lists[f"{kind} N={NS[0]}"]["p99"]
        for kind in ("GET /stuff?filter=X%&limit=100", "GET /things?after=…&limit=100")
    )
    errors = sum(r["errors"] + r["5xx"] for r in results)
    targets = [
        ("token_vs_floor", tok["rps"] / floor["rps"], ">=", 0.50),
        ("token_vs_open", tok["rps"] / open_["rps"], ">=", 0.90),
        ("basic_vs_token", bas["rps"] / tok["rps"], ">=", 0.80),
        ("list_p99_growth", growth, "<=", 1.20),
        ("errors", errors, "==", 0),
    ]
    for name, value, op, goal in targets:
        met = value >= goal if op == ">=" else value <= goal if op == "<=" else value == goal
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        goal_s = f"{goal:.2f}" if isinstance(goal, float) else str(goal)
        say(f"target {name}: {shown} (goal {op} {goal_s}) {'met' if met else 'missed'}")
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")


def cleanup():
    for d, port in ((APP_DIR, APP_PORT), (FLOOR_DIR, FLOOR_PORT), (CACHE_DIR, APP_PORT)):
        if os.path.exists(os.path.join(d, "apache", "httpd.pid")):
            try:
                apache("stop", d, port)
            except SystemExit:
                pass
    if env("BENCH_KEEP_PG") != "1":
        subprocess.run(
            ["scripts/pg.sh", "stop"],
            cwd=ROOT,
            capture_output=True,
            env=dict(os.environ, PG_PORT=PG_PORT, PG_DIR=PG_DIR),
        )


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
        log(f"make bench: {time.time() - T0:.0f}s wall time")
