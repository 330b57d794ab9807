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
   the framework floors (bench/flask_floor.wsgi: the same GET as a bare Flask route and
   as a FlaskSimpleAuth token route) on BENCH_FRAMEWORK_PORT: what Flask, then
   FlaskSimpleAuth, then Kiva's own code cost;
5. a variant with in-process caches (bench/server-cache.conf, bench/cache.wsgi): what
   Kiva's freshness design costs;
6. the table, the ratios and one line per target; bench/last-run.md keeps them.

An outside server, given by URL, can be measured in the same interleaved rounds:
BENCH_COMPARE_URL (a GET answering 2xx, e.g. another framework's token GET of one item)
and BENCH_COMPARE_AUTH (its Authorization header value, never printed): each round then
also runs wrk on it with the token GET's connections and duration, and the run prints
`ratio token_vs_compare` (Kiva's token GET /things/<tid> req/s over the outside server's,
per round, medianed). Unset, nothing changes. With BENCH_COMPARE_PIDFILE (the pid file of
its server's main process), the CPU per request of its whole process tree is read as
Apache's whole tree's is for Kiva: `cpu server_compare_vs_token`, steadier under load than
req/s. A non-2xx answer stops the benchmark, as a floor's does.
"""

import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from procs import ROOT, cpu_ticks, descendants, found, pidfile, run

BENCH = os.path.join(ROOT, "bench")
env = os.environ.get

PG_PORT = env("PG_PORT", "6140")
PG_DIR = env("PG_DIR", f"/tmp/kiva-pg-{PG_PORT}")
PG_BIN = env("PG_BIN", "/usr/lib/postgresql/15/bin")
DB = env("BENCH_DB", "kiva_bench")
ROLE = env("DB_ROLE", "kiva")
OWNER = env("DB_OWNER", "kiva_owner")
APP_PORT = int(env("BENCH_APP_PORT", "8790"))
FLOOR_PORT = int(env("BENCH_FLOOR_PORT", "8791"))
CACHE_PORT = int(env("BENCH_CACHE_PORT", "8792"))
FRAMEWORK_PORT = int(env("BENCH_FRAMEWORK_PORT", "8793"))
SMALL_PORT = int(env("BENCH_SMALL_PORT", "8794"))  # Kiva on the small database: list pages
PROCESSES = int(env("BENCH_PROCESSES", "2"))
THREADS = int(env("BENCH_THREADS", "4"))
DURATION = int(env("BENCH_DURATION", "4"))  # seconds per wrk run
ROUNDS = int(env("BENCH_ROUNDS", "7"))  # interleaved rounds of the main scenarios
LIST_ROUNDS = int(env("BENCH_LIST_ROUNDS", "5"))
LIST_CONNECTIONS = int(env("BENCH_LIST_CONNECTIONS", "2"))
# p99 of a list page is its 1 % slowest: 8 s gives about 70 of them per run, half as noisy as 4 s
LIST_DURATION = int(env("BENCH_LIST_DURATION", "8"))
PGBENCH = env("BENCH_PGBENCH", "0") == "1"
WARMUP = int(env("BENCH_WARMUP", "1"))
CONNECTIONS = int(env("BENCH_CONNECTIONS", "16"))
WRK_THREADS = int(env("BENCH_WRK_THREADS", "2"))
NS = [int(n) for n in env("BENCH_NS", "1000,1000000").split(",")]
SMALL_N, LARGE_N = NS[0], NS[-1]  # the list pages' two sizes, one database each, side by side
SMALL_DB = f"{DB}_small"
APP_DIR = env("BENCH_DEPLOY", f"/tmp/kiva-bench-app-{APP_PORT}")
FLOOR_DIR = env("BENCH_FLOOR_DIR", f"/tmp/kiva-bench-floor-{FLOOR_PORT}")
CACHE_DIR = env("BENCH_CACHE_DIR", f"/tmp/kiva-bench-cache-{CACHE_PORT}")
FRAMEWORK_DIR = env("BENCH_FRAMEWORK_DIR", f"/tmp/kiva-bench-framework-{FRAMEWORK_PORT}")
SMALL_DIR = env("BENCH_SMALL_DIR", f"/tmp/kiva-bench-small-{SMALL_PORT}")
SERVER_DIRS = (APP_DIR, FLOOR_DIR, CACHE_DIR, FRAMEWORK_DIR, SMALL_DIR)
OUT = env("BENCH_OUT", os.path.join(BENCH, "last-run.md"))
CACHE_VARIANT = env("BENCH_CACHE_VARIANT", "1") == "1"
COMPARE_URL = env("BENCH_COMPARE_URL", "")
COMPARE_AUTH = env("BENCH_COMPARE_AUTH", "")
COMPARE_PIDFILE = env("BENCH_COMPARE_PIDFILE", "")  # its server's main process, on this machine
KIVA_DB = f"host={PG_DIR} port={PG_PORT} dbname={DB} user={ROLE}"
KIVA_OWNER_DB = f"host={PG_DIR} port={PG_PORT} dbname={DB} user={OWNER}"
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
    # production durability (pg.sh's default, fsync off, is the test suite's)
    e = dict(os.environ, PG_PORT=PG_PORT, PG_DIR=PG_DIR, PG_DB="kiva", PG_FSYNC="on")
    run("scripts/pg.sh", "start", env=e)
    log(f"PostgreSQL fsync: {psql('-tAc', 'SHOW fsync', db='postgres').strip()}")
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
        "-v",
        f"owner={OWNER}",
        "-v",
        f"owner_password={base64.b32encode(os.urandom(20)).decode()}",
        "-f",
        "deploy/db-setup.sql",
        db="postgres",
    )
    log(f"make deploy to {APP_DIR} (DB_INIT=1)")
    for d in SERVER_DIRS:
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
        f"KIVA_OWNER_DB={KIVA_OWNER_DB}",
        f"APP_SECRET={SECRET}",
        f"PG_PORT={PG_PORT}",
        f"PG_DIR={PG_DIR}",
    )
    # the raw floor and the framework floors: their own folders, the deployed venv, the same
    # kiva.env and Apache configuration, Kiva's statements (queries.sql, read by floor_sql.py)
    # the in-process cache variant: a copy of the deployment with the bench-only config and entry point
    # the small database's Kiva: a copy of the deployment, its kiva.env naming that database
    for d in (FLOOR_DIR, CACHE_DIR, FRAMEWORK_DIR, SMALL_DIR):
        shutil.rmtree(d, ignore_errors=True)
    for d in (CACHE_DIR, SMALL_DIR):
        shutil.copytree(APP_DIR, d, symlinks=True, ignore=shutil.ignore_patterns("apache", "venv"))
    for d, entry in ((FLOOR_DIR, "floor.wsgi"), (FRAMEWORK_DIR, "flask_floor.wsgi")):
        os.makedirs(d)
        shutil.copy(os.path.join(BENCH, entry), os.path.join(d, "kiva.wsgi"))
        shutil.copy(os.path.join(BENCH, "floor_sql.py"), d)
        shutil.copy(os.path.join(ROOT, "queries.sql"), d)
    for d in (FLOOR_DIR, CACHE_DIR, FRAMEWORK_DIR, SMALL_DIR):
        os.chmod(d, 0o755)
        os.symlink(os.path.join(APP_DIR, "venv"), os.path.join(d, "venv"))
        shutil.copy2(os.path.join(APP_DIR, "kiva.env"), os.path.join(d, "kiva.env"))
    small_env = os.path.join(SMALL_DIR, "kiva.env")
    with open(small_env) as f:
        text = f.read()
    with open(small_env, "w") as f:
        f.write(text.replace(f"dbname={DB} ", f"dbname={SMALL_DB} "))
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
    # the small database: a copy of the deployed one (schema, bench user), the same rights
    psql(
        "-c",
        f"DROP DATABASE IF EXISTS {SMALL_DB}",
        "-c",
        f"CREATE DATABASE {SMALL_DB} TEMPLATE {DB} OWNER {OWNER} CONNECTION LIMIT 100",
        "-c",
        f"REVOKE ALL ON DATABASE {SMALL_DB} FROM PUBLIC",
        "-c",
        f"GRANT CONNECT ON DATABASE {SMALL_DB} TO {ROLE}",
        db="postgres",
    )
    return bench_hash


def load(db: str, hi: int, bench_hash: str):
    """Rows 1 to hi of each table in db (bench/data.sql, from lo=0)."""
    t = time.time()
    psql(
        "-v",
        "lo=0",
        "-v",
        f"hi={hi}",
        "-v",
        f"hash={bench_hash}",
        "-f",
        os.path.join(BENCH, "data.sql"),
        db=db,
        user=OWNER,
    )
    psql("-c", "CHECKPOINT", db="postgres")  # its writes must not land in the next measurement
    log(f"data: N={hi} loaded in {db} in {time.time() - t:.1f}s")
    return time.time() - t


#
# measurements
#


def wsgi_rss_mb(apache_pid: int) -> list[float]:
    rss = []
    for pid in descendants(apache_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if not f.read().startswith(b"(wsgi:"):
                    continue
            with open(f"/proc/{pid}/status") as f:
                kb = int(found(r"VmRSS:\s+(\d+)", f.read()))
            rss.append(kb / 1024)
        except (OSError, AttributeError):
            pass
    return rss


def get(url: str, auth: str | None = None) -> bytes:
    req = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
    with urllib.request.urlopen(req, timeout=10) as res:
        return res.read()


def wsgi_pids(target: str) -> list[int]:
    """The mod_wsgi daemon processes of the Apache serving target: where the app runs."""
    pids = []
    for pid in descendants(pidfile(os.path.join(target, "apache", "httpd.pid"))):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"(wsgi:"):
                    pids.append(pid)
        except OSError:
            pass
    return pids


def wrk(
    name: str,
    target: str,
    port: int,
    mode: str,
    n: int,
    auth: str = "",
    path: str = "/version",
    duration: int = DURATION,
    connections: int = CONNECTIONS,
    prefix: str = "/api",
    floor: bool = False,
    url: str = "",
) -> dict:
    """One wrk run (after a short warm-up), with the app's and the database's CPU per
    request (utime + stime from /proc), the statuses of Apache's access log, the RSS.
    A floor that answers anything but 2xx stops the benchmark: its ratios would be void.
    An outside server (target "", url its scheme://host:port): req/s, latency and wrk's
    counts only; a non-2xx answer stops the benchmark too."""
    e = dict(os.environ, BENCH_MODE=mode, BENCH_N=str(n), BENCH_AUTH=auth, BENCH_PREFIX=prefix, BENCH_PATH=path)
    if target == "":
        return wrk_outside(name, url, e, duration, connections)
    url = f"http://127.0.0.1:{port}"
    threads = min(WRK_THREADS, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", "-s", os.path.join(BENCH, "wrk.lua"), "--latency", url]
    if WARMUP:
        subprocess.run([*cmd[:1], f"-d{WARMUP}s", *cmd[1:]], env=e, capture_output=True)
    app_pids = wsgi_pids(target)
    tree = descendants(pidfile(os.path.join(target, "apache", "httpd.pid")))  # Apache's workers and mod_wsgi's
    pg_pids = descendants(pidfile(os.path.join(PG_DIR, "data", "postmaster.pid")))
    access = os.path.join(target, "apache", "kiva-access.log")
    offset = os.path.getsize(access)
    load0 = os.getloadavg()[0]
    app0, pg0, tree0 = cpu_ticks(app_pids), cpu_ticks(pg_pids), cpu_ticks(tree)
    out = subprocess.run(
        [cmd[0], f"-d{duration}s", "--timeout", "5s", *cmd[1:]], env=e, capture_output=True, text=True
    ).stdout
    app1, pg1, tree1 = cpu_ticks(app_pids), cpu_ticks(pg_pids), cpu_ticks(tree)
    time.sleep(0.3)  # let Apache write its last access lines
    statuses: dict[str, int] = {}
    with open(access, "rb") as f:
        f.seek(offset)
        for line in f:
            status = re.search(rb'" (\d{3}) ', line)
            if status:
                statuses[status.group(1).decode()] = statuses.get(status.group(1).decode(), 0) + 1
    m = re.search(r"BENCH_JSON (\{.*\})", out)
    if not m:
        raise SystemExit(f"bench: no result from wrk for {name}:\n{out}")
    r = json.loads(m.group(1))
    reqs = max(r["requests"], 1)
    rss = wsgi_rss_mb(pidfile(os.path.join(target, "apache", "httpd.pid")))
    bad = sum(c for s, c in statuses.items() if not s.startswith("2"))
    res = {
        "name": name,
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50": r["p50_us"] / 1000,
        "p99": r["p99_us"] / 1000,
        # socket errors, and non-2xx answers (wrk's count and the access log's: the larger)
        "errors": r["connect"] + r["read"] + r["write"] + r["timeout"] + max(r["status"], bad),
        "5xx": sum(c for s, c in statuses.items() if s.startswith("5")),
        "statuses": statuses,
        "app_ms": (app1 - app0) / TICK * 1000 / reqs,
        "db_ms": (pg1 - pg0) / TICK * 1000 / reqs,
        "server_ms": (tree1 - tree0) / TICK * 1000 / reqs,  # the whole HTTP server, to compare with another
        "rss": sum(rss) / len(rss) if rss else 0.0,
        "load": load0,
    }
    if floor and (bad or res["errors"]):
        raise SystemExit(f"bench: the floor of {name} failed: statuses {statuses}; see {target}/apache/error.log")
    log(
        f"{name}: {res['rps']:.0f} req/s p50 {res['p50']:.1f} ms p99 {res['p99']:.1f} ms "
        f"app {res['app_ms']:.2f} ms/req db {res['db_ms']:.2f} ms/req statuses {statuses} load {load0:.1f}"
    )
    return res


def wrk_outside(name: str, url: str, e: dict, duration: int, connections: int) -> dict:
    """wrk on a server that is not ours: what wrk sees, no access log; the CPU of its process
    tree if BENCH_COMPARE_PIDFILE names its main process, else None."""
    cmd = ["wrk", f"-t{min(WRK_THREADS, connections)}", f"-c{connections}", "-s", os.path.join(BENCH, "wrk.lua")]
    if WARMUP:
        subprocess.run([*cmd, f"-d{WARMUP}s", url], env=e, capture_output=True)
    tree = descendants(pidfile(COMPARE_PIDFILE)) if COMPARE_PIDFILE else []
    load0 = os.getloadavg()[0]
    tree0 = cpu_ticks(tree)
    out = subprocess.run([*cmd, f"-d{duration}s", "--timeout", "5s", url], env=e, capture_output=True, text=True).stdout
    tree1 = cpu_ticks(tree)
    m = re.search(r"BENCH_JSON (\{.*\})", out)
    if not m:
        raise SystemExit(f"bench: no result from wrk for {name}:\n{out}")
    r = json.loads(m.group(1))
    if r["status"]:  # wrk's count of answers outside 2xx-3xx: a refused token, a wrong URL
        raise SystemExit(f"bench: {name} answered {r['status']} non-2xx statuses: its ratio would be void")
    res = {
        "name": name,
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50": r["p50_us"] / 1000,
        "p99": r["p99_us"] / 1000,
        "errors": r["connect"] + r["read"] + r["write"] + r["timeout"],
        "5xx": 0,
        "statuses": {},
        "app_ms": None,
        "db_ms": None,
        "server_ms": (tree1 - tree0) / TICK * 1000 / max(r["requests"], 1) if tree else None,
        "rss": 0.0,
        "load": load0,
    }
    cpu = f" server {res['server_ms']:.2f} ms/req" if tree else ""
    log(f"{name}: {res['rps']:.0f} req/s p50 {res['p50']:.1f} ms p99 {res['p99']:.1f} ms{cpu} errors {res['errors']}")
    return res


def compare_check() -> tuple[str, str]:
    """The outside server's scheme://host:port and path, after one GET that must be a 2xx:
    a wrong URL or a refused token stops the run before its minutes of setup."""
    parts = urllib.parse.urlsplit(COMPARE_URL)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SystemExit("bench: BENCH_COMPARE_URL must be an http(s)://host:port/path URL")
    try:
        get(COMPARE_URL, COMPARE_AUTH or None)
    except (urllib.error.URLError, OSError) as err:  # HTTPError included; its text has no header value
        raise SystemExit(f"bench: GET BENCH_COMPARE_URL failed: {err}") from None
    if COMPARE_PIDFILE:
        try:
            os.kill(pidfile(COMPARE_PIDFILE), 0)
        except (OSError, ValueError) as err:
            raise SystemExit(f"bench: BENCH_COMPARE_PIDFILE names no running process: {err}") from None
    path = parts.path or "/"
    return f"{parts.scheme}://{parts.netloc}", path + (f"?{parts.query}" if parts.query else "")


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
    tps = float(found(r"tps = ([\d.]+)", out))
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
    cpu = found(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
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


SCENARIOS = [
    # key, label, which server, wrk mode, which credentials, path prefix
    ("floor", "floor: raw WSGI GET /things/<tid>", "floor", "things_tid", "", "/api"),
    ("flask", "floor: bare Flask GET /things/<tid>", "framework", "things_tid", "", "/api"),
    ("fsa", "floor: FlaskSimpleAuth token GET /things/<tid>", "framework", "things_tid", "token", "/api/fsa"),
    ("open", "GET /stuff/<sid> open", "app", "stuff_sid", "", "/api"),
    ("token", "GET /things/<tid> token", "app", "things_tid", "token", "/api"),
    ("basic", "GET /things/<tid> basic", "app", "things_tid", "basic", "/api"),
    ("cache", "variant: in-process caches, GET /things/<tid> token", "cache", "things_tid", "ctoken", "/api"),
    ("writes", "POST /stuff + DELETE /stuff/<sid>", "app", "post_delete", "", "/api"),
    ("floor_writes", "floor: raw WSGI POST /stuff + DELETE /stuff/<sid>", "floor", "post_delete", "", "/api"),
]
FLOORS = {"floor", "framework"}  # servers whose every answer must be a 2xx
# ratio name: (numerator, denominator) of req/s, computed in each round, then medianed
RATIOS = {
    "flask_vs_floor": ("flask", "floor"),
    "fsa_vs_floor": ("fsa", "floor"),
    "token_vs_fsa": ("token", "fsa"),
    "token_vs_floor": ("token", "floor"),
    "token_vs_open": ("token", "open"),
    "basic_vs_token": ("basic", "token"),
    "writes_vs_floor_writes": ("writes", "floor_writes"),
    "token_vs_cache": ("token", "cache"),
    "open_vs_floor": ("open", "floor"),
    "token_vs_compare": ("token", "compare"),  # an outside server's GET (BENCH_COMPARE_URL)
}


# app CPU per request of a scenario over a floor's (the raw floor, or the raw write floor)
CPU_RATIOS = {
    "flask_cpu_floors": ("flask", "floor"),
    "fsa_cpu_floors": ("fsa", "floor"),
    "open_cpu_floors": ("open", "floor"),
    "token_cpu_floors": ("token", "floor"),
    "basic_cpu_floors": ("basic", "floor"),
    "cache_cpu_floors": ("cache", "floor"),
    "writes_cpu_floors": ("writes", "floor_writes"),
}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> str:
    """min–max of the rounds, as the ± of the median's worst neighbour."""
    if len(values) < 2:
        return ""
    return f"{min(values):.2f}–{max(values):.2f}"


def main():
    compare = compare_check() if COMPARE_URL else None
    bench_hash = setup()
    servers = {
        "app": (APP_DIR, APP_PORT),
        "floor": (FLOOR_DIR, FLOOR_PORT),
        "framework": (FRAMEWORK_DIR, FRAMEWORK_PORT),
        "small": (SMALL_DIR, SMALL_PORT),
    }
    if CACHE_VARIANT:
        servers["cache"] = (CACHE_DIR, CACHE_PORT)
    load_s = {SMALL_N: load(SMALL_DB, SMALL_N, bench_hash), LARGE_N: load(DB, LARGE_N, bench_hash)}
    for target, port in servers.values():
        apache("start", target, port)
    basic = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
    creds = {
        "": "",
        "basic": basic,
        "token": "Bearer " + json.loads(get(f"http://127.0.0.1:{APP_PORT}/api/login", basic)),
    }
    if CACHE_VARIANT:
        creds["ctoken"] = "Bearer " + json.loads(get(f"http://127.0.0.1:{CACHE_PORT}/api/login", basic))
    scenarios = [s for s in SCENARIOS if s[2] in servers]
    if compare:
        # the outside server's one GET, as the token GET's wrk: plain mode, its own path
        creds["compare"] = COMPARE_AUTH
        scenarios.append(("compare", f"outside server: GET {compare[1]}", "compare", "plain", "compare", ""))
    # each process checks the bench password with bcrypt (cost 12) once, then memoises it:
    # a few requests one at a time do that before the measurements, as on a warm server
    # (16 connections at once on cold processes would meet auth.py's 2-slot bound: 503s)
    for server in ("app", "cache") if CACHE_VARIANT else ("app",):
        for _ in range(4 * PROCESSES):
            get(f"http://127.0.0.1:{servers[server][1]}/api/login", basic)
    # list latency at LIST_CONNECTIONS (one per core: service time, not queueing), both sizes
    # side by side (two databases, two servers), interleaved, each round in another order
    lists: list[dict[tuple[str, int], dict]] = []
    for r in range(LIST_ROUNDS):
        log(f"list round {r + 1}/{LIST_ROUNDS}")
        this: dict[tuple[str, int], dict] = {}
        sizes = ((SMALL_N, "small"), (LARGE_N, "app"))
        for n, server in sizes if r % 2 == 0 else sizes[::-1]:
            for kind, mode, auth in (("stuff", "stuff_list", ""), ("things", "things_list", creds["token"])):
                label = f"GET /{kind}?…&limit=100 N={n}, {LIST_CONNECTIONS} connections"
                target, port = servers[server]
                this[(kind, n)] = wrk(
                    label, target, port, mode, n, auth=auth, connections=LIST_CONNECTIONS, duration=LIST_DURATION
                )
        lists.append(this)
    n = LARGE_N
    # the main scenarios at the largest N, interleaved: every round runs each once, each
    # round in another order, so that a neighbour's burst of load hits all of them alike
    rounds: list[dict[str, dict]] = []
    for r in range(ROUNDS):
        log(f"round {r + 1}/{ROUNDS}")
        this_round: dict[str, dict] = {}
        for key, label, server, mode, cred, prefix in scenarios[r % len(scenarios) :] + scenarios[: r % len(scenarios)]:
            if server == "compare" and compare:
                base, path = compare
                this_round[key] = wrk(label, "", 0, mode, n, auth=creds[cred], path=path, prefix="", url=base)
                continue
            target, port = servers[server]
            this_round[key] = wrk(
                f"{label} N={n}", target, port, mode, n, auth=creds[cred], prefix=prefix, floor=server in FLOORS
            )
        rounds.append(this_round)
    app_rss = wsgi_rss_mb(pidfile(os.path.join(APP_DIR, "apache", "httpd.pid")))
    floor_rss = wsgi_rss_mb(pidfile(os.path.join(FLOOR_DIR, "apache", "httpd.pid")))
    for target, port in servers.values():
        apache("stop", target, port)
    tps = pgbench() if PGBENCH else None
    report(scenarios, rounds, lists, tps, app_rss, floor_rss, load_s, compare)


def ms(values: list[float | None], with_range: bool = False) -> str:
    """A CPU column: the median (and min–max), or – for a server whose CPU is not ours to read."""
    if any(v is None for v in values):
        return "–"
    vs = [float(v) for v in values if v is not None]
    return f"{median(vs):.2f} ({min(vs):.2f}–{max(vs):.2f})" if with_range else f"{median(vs):.2f}"


def report(scenarios, rounds, lists, tps, app_rss, floor_rss, load_s, compare=None):
    n = NS[-1]
    loads = [r["load"] for rd in rounds for r in rd.values()]
    say(f"# Kiva benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    say()
    for v in versions():
        say(f"- {v}")
    say(
        "- data load (generate_series, then VACUUM ANALYZE): "
        + ", ".join(f"N={k}: {s:.1f}s" for k, s in load_s.items())
    )
    say(f"- load average (1 min) during the rounds: {min(loads):.1f} to {max(loads):.1f}, median {median(loads):.1f}")
    say(
        f"- RSS of the mod_wsgi daemon processes: app {', '.join(f'{r:.0f}' for r in app_rss)} MB, "
        f"floor {', '.join(f'{r:.0f}' for r in floor_rss)} MB"
    )
    if compare:
        # the URL's host and path only: never its query's or the header's secrets
        say(f"- outside server compared (BENCH_COMPARE_URL): GET {compare[0]}{urllib.parse.urlsplit(COMPARE_URL).path}")
    say()
    say(f"{ROUNDS} interleaved rounds at N={n}, {CONNECTIONS} connections, {DURATION}s each: median (min–max)")
    say()
    say("| scenario | req/s | p50 ms | p99 ms | errors | app CPU ms/req | db CPU ms/req |")
    say("|---|---:|---:|---:|---:|---:|---:|")
    for key, label, *_ in scenarios:
        rs = [rd[key] for rd in rounds]
        rps = [r["rps"] for r in rs]
        say(
            f"| {label} | {median(rps):.0f} ({min(rps):.0f}–{max(rps):.0f}) | {median([r['p50'] for r in rs]):.1f} "
            f"| {median([r['p99'] for r in rs]):.1f} | {sum(r['errors'] for r in rs)} "
            f"| {ms([r['app_ms'] for r in rs], with_range=True)} | {ms([r['db_ms'] for r in rs])} |"
        )
    if tps:
        say(f"| pgbench -S, 4 connections | {tps:.0f} tps | | | | | |")
    say()
    say(
        f"list pages, {LIST_ROUNDS} interleaved rounds, N={SMALL_N} and N={LARGE_N} side by side "
        f"(two databases), {LIST_CONNECTIONS} connections, {LIST_DURATION}s each: median (min–max)"
    )
    say()
    say("| scenario | req/s | p50 ms | p99 ms | errors | app CPU ms/req | db CPU ms/req |")
    say("|---|---:|---:|---:|---:|---:|---:|")
    for key in lists[0]:
        rs = [rd[key] for rd in lists]
        p99 = [r["p99"] for r in rs]
        say(
            f"| GET /{key[0]}?…&limit=100 N={key[1]} | {median([r['rps'] for r in rs]):.0f} "
            f"| {median([r['p50'] for r in rs]):.2f} | {median(p99):.2f} ({min(p99):.2f}–{max(p99):.2f}) "
            f"| {sum(r['errors'] for r in rs)} | {median([r['app_ms'] for r in rs]):.2f} "
            f"| {median([r['db_ms'] for r in rs]):.2f} |"
        )
    say()
    keys = {s[0] for s in scenarios}
    ratios: dict[str, float] = {}
    say("ratios of req/s, computed in each round, then medianed (min–max over the rounds):")
    for name, (a, b) in RATIOS.items():
        if a in keys and b in keys:
            per_round = [rd[a]["rps"] / rd[b]["rps"] for rd in rounds]
            ratios[name] = median(per_round)
            say(f"ratio {name}: {ratios[name]:.2f} ({spread(per_round)})")
    # app CPU per request over a floor's, in each round, then medianed: the steadiest figures
    # (CPU is what Kiva's code spends; req/s moves with what else the machine runs)
    cpu: dict[str, float] = {}
    say("app CPU per request over the floor's, computed in each round, then medianed (min–max):")
    for name, (a, b) in CPU_RATIOS.items():
        if a in keys and b in keys:
            per_round = [rd[a]["app_ms"] / rd[b]["app_ms"] for rd in rounds if rd[b]["app_ms"] > 0]
            cpu[name] = median(per_round)
            say(f"cpu {name}: {cpu[name]:.2f} ({spread(per_round)})")
    if "compare" in keys and rounds[0]["compare"]["server_ms"] is not None:
        # the outside server's whole process tree over Apache's whole tree serving the token GET
        per_round = [rd["compare"]["server_ms"] / rd["token"]["server_ms"] for rd in rounds if rd["token"]["server_ms"]]
        say(
            f"cpu server_compare_vs_token: {median(per_round):.2f} ({spread(per_round)}); whole server CPU ms/req: "
            f"outside {median([rd['compare']['server_ms'] for rd in rounds]):.2f}, "
            f"Kiva token GET {median([rd['token']['server_ms'] for rd in rounds]):.2f}"
        )
    say()
    # p99 at LARGE_N over p99 at SMALL_N, in each round, then medianed; the worse of the two lists
    growths = {}
    for kind in ("stuff", "things"):
        per_round = [rd[(kind, LARGE_N)]["p99"] / rd[(kind, SMALL_N)]["p99"] for rd in lists]
        growths[kind] = median(per_round)
        say(f"ratio list_p99_growth_{kind}: {growths[kind]:.2f} ({spread(per_round)})")
    growth = max(growths.values())
    say()
    # Kiva's errors: the outside server's socket errors are its own (shown in its row)
    errors = sum(r["errors"] for rd in rounds + lists for k, r in rd.items() if k != "compare")
    targets = [
        # issue #24: CPU per request in floors (what Kiva's code costs), then req/s ratios
        ("open_cpu_floors", cpu.get("open_cpu_floors"), "<=", 2.6),
        ("token_cpu_floors", cpu.get("token_cpu_floors"), "<=", 3.2),
        ("writes_cpu_floors", cpu.get("writes_cpu_floors"), "<=", 2.4),
        ("token_vs_open", ratios.get("token_vs_open"), ">=", 0.90),
        ("basic_vs_token", ratios.get("basic_vs_token"), ">=", 0.80),
        ("list_p99_growth", growth, "<=", 1.20),
        ("errors", errors, "==", 0),
    ]
    for name, value, op, goal in targets:
        if value is None:
            continue
        met = value >= goal if op == ">=" else value <= goal if op == "<=" else value == goal
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)  # 0.498 is missed, 0.50 would not say
        goal_s = f"{goal:.2f}" if isinstance(goal, float) else str(goal)
        say(f"target {name}: {shown} (goal {op} {goal_s}) {'met' if met else 'missed'}")
    say()
    say(f"wall time: {time.time() - T0:.0f}s")
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")


def cleanup():
    for d in SERVER_DIRS:
        if os.path.exists(os.path.join(d, "apache", "httpd.pid")):
            try:
                apache("stop", d, 0)
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
