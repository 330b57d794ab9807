#!/usr/bin/python3
# A local tool: it runs local commands, in /tmp folders, on loopback URLs it builds itself
# ruff: noqa: S103, S108, S603, S607
"""Kiva under a password-guessing flood (issue #10, point 4): `make flood` runs it.

Stdlib only (/usr/bin/python3), bounded durations, in one run:

1. a private PostgreSQL cluster on FLOOD_PG_PORT with production durability (fsync on),
   the role and database of deploy/db-setup.sql, Kiva deployed by `make deploy` to a new
   /tmp folder (DB_INIT=demo when deploy knows it, else DB_INIT=1) and served by a private
   Apache + mod_wsgi (deploy/apache.sh, FLOOD_PROCESSES x FLOOD_THREADS) on FLOOD_APACHE_PORT,
   with the production configuration (server.conf: bcrypt cost 12);
2. a measuring client: a user registered for it, a token from /login before any attack,
   then FLOOD_RATE requests a second on each of GET /version (OPEN) and GET /things/1
   (token), sent on schedule whatever the answers (open loop: a slow answer does not
   delay the next request), each timed from its scheduled start, status and body checked;
3. phases of FLOOD_DURATION seconds: a baseline without attack, then attacker processes
   (FLOOD_PHASES: variant:clients) sending requests as fast as the server answers, each
   client on a kept-alive connection, each request with new random credentials:
     basic         GET /whoami, Basic random login:password
     basic-botnet  the same, each request on a new connection from a random 127.x.y.z
                   address (a spread attacker: per-address throttling cannot single it out)
     basic+param   POST /login, Basic and USER/PASS in the body, both random
     register      POST /register, a random new login and password
     register-taken POST /register, the measuring user's login, a random password
4. per phase: the attackers' requests and statuses, the CPU of the mod_wsgi daemon
   processes (/proc), their restarts; per measured route: count, statuses, p50, p95,
   p99, max, and how many took more than FLOOD_BOUND seconds. The report goes to
   FLOOD_OUT (bench/flood-last-run.md) and stdout.

The attackers run on the same 2 cores as the server: their own CPU is reported too.
"""

import base64
import http.client
import json
import multiprocessing
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time

import procs

ROOT = procs.ROOT
env = os.environ.get

PG_PORT = env("FLOOD_PG_PORT", "6060")
PG_DIR = env("FLOOD_PG_DIR", f"/tmp/kiva-pg-{PG_PORT}")
PG_BIN = env("PG_BIN", "/usr/lib/postgresql/15/bin")
DB = env("FLOOD_DB", "kiva_flood")
PORT = int(env("FLOOD_APACHE_PORT", "8696"))
PROCESSES = int(env("FLOOD_PROCESSES", "2"))
THREADS = int(env("FLOOD_THREADS", "4"))
DURATION = float(env("FLOOD_DURATION", "15"))  # seconds per phase
RATE = float(env("FLOOD_RATE", "10"))  # measured requests a second, per route
BOUND = float(env("FLOOD_BOUND", "1"))  # seconds: the latency bound counted
TIMEOUT = float(env("FLOOD_TIMEOUT", "30"))  # seconds: a measured request given up
PHASES = env("FLOOD_PHASES", "baseline:0,basic:8,basic:32,basic-botnet:32,basic+param:8,register:8,register-taken:8")
OUT = env("FLOOD_OUT", os.path.join(ROOT, "bench", "flood-last-run.md"))
KEEP = env("FLOOD_KEEP", "0") == "1"  # keep the deployed folder (logs) after the run
TICK = os.sysconf("SC_CLK_TCK")
T0 = time.time()
SECRET = base64.b32encode(os.urandom(20)).decode()
MEASURER = "flood_" + os.urandom(4).hex()
MEASURER_PASSWORD = base64.b32encode(os.urandom(15)).decode()
VARIANTS = ("baseline", "basic", "basic-botnet", "basic+param", "register", "register-taken")
lines: list[str] = []


def say(msg: str = ""):
    print(msg, flush=True)
    lines.append(msg)


def log(msg: str):
    print(f"[{time.time() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def run(*cmd: str, **kw) -> str:
    return procs.run(*cmd, who="flood", **kw)


def pg_env() -> dict:
    """The environment of make and scripts: none of the caller's app settings (a test run's
    short throttling window or trusted proxy would land in the deployed kiva.env)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "KIVA_", "MAKE", "MFLAGS"))}
    e.update(PG_PORT=PG_PORT, PG_DIR=PG_DIR)
    return e


def make(*args: str):
    run("make", "--no-print-directory", *args, f"PG_PORT={PG_PORT}", f"PG_DIR={PG_DIR}", env=pg_env())


#
# the server
#


def deploy_knows_demo() -> bool:
    """After issue #10, DB_INIT=demo loads the demo users and DB_INIT=1 does not."""
    for path in ("Makefile", "deploy/deploy.sh"):
        with open(os.path.join(ROOT, path)) as f:
            if "demo" in f.read():
                return True
    return False


def setup(target: str) -> str:
    log(f"PostgreSQL on port {PG_PORT} ({PG_DIR}), fsync on")
    e = pg_env()
    run("scripts/pg.sh", "stop", env=e)  # started again below with fsync on, whatever it was
    run("scripts/pg.sh", "start", env=dict(e, PG_FSYNC="on"))
    fsync = run(
        f"{PG_BIN}/psql",
        "-X",
        "-tA",
        "-h",
        PG_DIR,
        "-p",
        PG_PORT,
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-c",
        "SHOW fsync",
    ).strip()
    if fsync != "on":
        raise SystemExit(f"flood: fsync is {fsync}, not on")
    make("db-setup", f"DEPLOY_DB={DB}")
    db_init = "demo" if deploy_knows_demo() else "1"
    log(f"make deploy DB_INIT={db_init} to {target}")
    make(
        "deploy",
        "DEPLOY_FORCE=1",
        f"DB_INIT={db_init}",
        f"DEPLOY_TARGET={target}",
        f"DEPLOY_DB={DB}",
        f"APP_SECRET={SECRET}",
    )
    return db_init


def apache(action: str, target: str):
    make(
        f"apache-{action}",
        f"DEPLOY_TARGET={target}",
        f"APACHE_PORT={PORT}",
        f"APACHE_PROCESSES={PROCESSES}",
        f"APACHE_THREADS={THREADS}",
    )


def bcrypt_seconds(target: str) -> float:
    """CPU seconds of one bcrypt check at the production cost, in the deployed venv."""
    out = run(
        f"{target}/venv/bin/python",
        "-c",
        "import bcrypt, time\n"
        "h = bcrypt.hashpw(b'x', bcrypt.gensalt(12))\n"
        "t = time.process_time()\n"
        "for _ in range(3): bcrypt.checkpw(b'y', h)\n"
        "print((time.process_time() - t) / 3)",
    )
    return float(out)


def pids_of(root: int) -> dict[int, bytes]:
    """root and its descendants, with their command lines."""
    found = {}
    for pid in procs.descendants(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found[pid] = f.read()
        except OSError:  # gone meanwhile
            found[pid] = b""
    return found


def wsgi_cpu(target: str) -> dict[int, float]:
    """CPU seconds (user + system) of each mod_wsgi daemon process."""
    with open(os.path.join(target, "apache", "httpd.pid")) as f:
        root = int(f.readline())
    cpu = {}
    for pid, cmdline in pids_of(root).items():
        if cmdline.startswith(b"(wsgi:"):
            cpu[pid] = procs.cpu_ticks([pid]) / TICK
    return cpu


#
# the clients
#


def request(conn: http.client.HTTPConnection, method: str, path: str, headers: dict, body: str | None = None):
    if body is not None:
        headers = dict(headers, **{"Content-Type": "application/x-www-form-urlencoded"})
    conn.request(method, path, body=body, headers=headers)
    res = conn.getresponse()
    return res.status, res.read()


def guess() -> tuple[str, str]:
    """A random login (a valid name, never an existing one) and a random password."""
    return "f" + os.urandom(6).hex(), os.urandom(9).hex()


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def attack_request(variant: str, taken: str) -> tuple[str, str, dict, str | None]:
    login, password = guess()
    if variant in ("basic", "basic-botnet"):
        return "GET", "/api/whoami", {"Authorization": basic(login, password)}, None
    if variant == "basic+param":
        other, other_password = guess()
        return "POST", "/api/login", {"Authorization": basic(login, password)}, f"USER={other}&PASS={other_password}"
    if variant == "register":
        return "POST", "/api/register", {}, f"login={login}&pword={password}"
    if variant == "register-taken":
        return "POST", "/api/register", {}, f"login={taken}&pword={password}"
    raise ValueError(variant)


def attacker(variant: str, deadline: float, taken: str, out) -> None:
    """One client thread: requests back to back until the deadline; statuses and latencies to out."""
    botnet = variant == "basic-botnet"
    conn = None
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    # random source addresses, not secrets
    rng = random.Random(os.urandom(8))  # noqa: S311
    while time.time() < deadline:
        method, path, headers, body = attack_request(variant, taken)
        if conn is None or botnet:
            source = (f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", 0) if botnet else None
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=TIMEOUT, source_address=source)
            if botnet:
                headers = dict(headers, Connection="close")
        start = time.time()
        try:
            status, _ = request(conn, method, path, headers, body)
            key = str(status)
        except TimeoutError:
            key = "timeout"
        except (OSError, http.client.HTTPException) as e:
            key = type(e).__name__
        latencies.append(time.time() - start)
        statuses[key] = statuses.get(key, 0) + 1
        if key[0] not in "12345" or botnet:
            conn.close()
            conn = None
    out.put((statuses, latencies))


def attacker_process(variant: str, threads: int, deadline: float, taken: str, out) -> None:
    """threads client threads in one process (several processes: the attack is not bound by one GIL)."""
    workers = [threading.Thread(target=attacker, args=(variant, deadline, taken, out)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


class Measurer:
    """GET /version and GET /things/1 at RATE a second each, on schedule, every answer checked."""

    def __init__(self, token: str):
        self.token = token
        self.results: list[tuple[str, float, str]] = []  # route, latency, status
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def one(self, route: str, scheduled: float):
        headers = {"Connection": "close"}
        if route == "token":
            headers["Authorization"] = "Bearer " + self.token
        path = "/api/version" if route == "open" else "/api/things/1"
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=TIMEOUT)
        try:
            status, body = request(conn, "GET", path, headers)
            key = str(status)
            if status == 200:
                data = json.loads(body)
                good = "now" in data if route == "open" else data.get("tid") == 1
                key = key if good else "200-bad-body"
        except TimeoutError:
            key = "timeout"
        except (OSError, http.client.HTTPException, ValueError) as e:
            key = type(e).__name__
        finally:
            conn.close()
        with self.lock:
            self.results.append((route, time.time() - scheduled, key))

    def run(self, start: float, duration: float):
        n = int(duration * RATE)
        for i in range(n):
            scheduled = start + i / RATE
            time.sleep(max(0.0, scheduled - time.time()))
            for route in ("open", "token"):
                t = threading.Thread(target=self.one, args=(route, scheduled))
                t.start()
                self.threads.append(t)
        for t in self.threads:
            t.join()


def get(path: str, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=TIMEOUT)
    try:
        return request(conn, "GET", path, headers or {})
    finally:
        conn.close()


def measurer_token() -> str:
    """A user of its own (registered, cost-12 hash) and its token, before any attack."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=TIMEOUT)
    status, body = request(conn, "POST", "/api/register", {}, f"login={MEASURER}&pword={MEASURER_PASSWORD}")
    conn.close()
    if status != 201:
        raise SystemExit(f"flood: /register answered {status}: {body!r}")
    status, body = get("/api/login", {"Authorization": basic(MEASURER, MEASURER_PASSWORD)})
    if status != 200:
        raise SystemExit(f"flood: /login answered {status}: {body!r}")
    token = json.loads(body)
    status, body = get("/api/things/1", {"Authorization": "Bearer " + token})
    if status != 200 or json.loads(body).get("tid") != 1:
        raise SystemExit(f"flood: /things/1 answered {status}: {body!r}")
    return token


def drain(limit: float = 60):
    """Wait until the server answers /version fast again (the queue left by a phase is served)."""
    end = time.time() + limit
    while time.time() < end:
        start = time.time()
        try:
            status, _ = get("/api/version")
        except (OSError, http.client.HTTPException):
            status = 0
        if status == 200 and time.time() - start < 0.1:
            break
        time.sleep(0.5)
    time.sleep(2)


#
# a phase and its figures
#


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def fmt_statuses(statuses: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())) or "-"


def phase(target: str, token: str, variant: str, clients: int) -> dict:
    load = os.getloadavg()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = time.time() + 0.5
    deadline = start + DURATION
    procs = []
    if clients:
        nprocs = min(clients, 4)
        for i in range(nprocs):
            threads = clients // nprocs + (1 if i < clients % nprocs else 0)
            p = ctx.Process(target=attacker_process, args=(variant, threads, deadline, MEASURER, out))
            procs.append(p)
    cpu0 = wsgi_cpu(target)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for p in procs:
        p.start()
    measurer = Measurer(token)
    measurer.run(start, DURATION)
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    for _ in range(clients):
        s, lat = out.get()
        latencies += lat
        for k, v in s.items():
            statuses[k] = statuses.get(k, 0) + v
    for p in procs:
        p.join()
    elapsed = time.time() - start
    cpu1 = wsgi_cpu(target)
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    app_cpu = sum(cpu1.get(pid, 0) - c for pid, c in cpu0.items()) + sum(
        c for pid, c in cpu1.items() if pid not in cpu0
    )
    client_cpu = children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime
    res: dict = {
        "variant": variant,
        "clients": clients,
        "load": load,
        "elapsed": elapsed,
        "sent": sum(statuses.values()),
        "statuses": statuses,
        "attack_p50": quantile(latencies, 0.5),
        "app_cpu": app_cpu,
        "client_cpu": client_cpu,
        "restarts": len(set(cpu0) - set(cpu1)),
        "measured": {},
    }
    for route in ("open", "token"):
        rows = [(lat, st) for r, lat, st in measurer.results if r == route]
        lat = [lat for lat, _ in rows]
        st: dict[str, int] = {}
        for _, s in rows:
            st[s] = st.get(s, 0) + 1
        res["measured"][route] = {
            "count": len(rows),
            "statuses": st,
            "p50": quantile(lat, 0.5),
            "p95": quantile(lat, 0.95),
            "p99": quantile(lat, 0.99),
            "max": max(lat, default=float("nan")),
            "over": sum(1 for x in lat if x > BOUND),
        }
    log(
        f"{variant} x{clients}: {res['sent']} attacker requests {fmt_statuses(statuses)}, "
        f"app CPU {app_cpu / DURATION:.2f} cores; open p99 {res['measured']['open']['p99']:.3f}s "
        f"token p99 {res['measured']['token']['p99']:.3f}s"
    )
    drain()
    return res


def checks(res: dict, fixed: bool) -> int:
    """Password checks (bcrypt runs) the attackers' answers imply: a 401 ran bcrypt once
    (twice with Basic and USER/PASS before issue #10; after it, that is a 400 without any),
    a register 201 hashed once, a register 409 too before issue #10 (after it, a taken
    login is refused before hashing); 429, 503 and 400 run none."""
    s = res["statuses"]
    if res["variant"] == "register":
        return s.get("201", 0)
    if res["variant"] == "register-taken":
        return s.get("201", 0) + (0 if fixed else s.get("409", 0))
    return s.get("401", 0) * (2 if res["variant"] == "basic+param" and not fixed else 1)


def report(results: list[dict], db_init: str, bcrypt_s: float, target: str):
    fixed = db_init == "demo"  # DB_INIT=demo came with the fix of issue #10
    commit = run("git", "rev-parse", "--short", "HEAD").strip()
    dirty = " (+ uncommitted changes)" if run("git", "status", "--porcelain", "--untracked-files=no").strip() else ""
    subject = run("git", "log", "-1", "--format=%s").strip()
    say(f"# Kiva under a password-guessing flood, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    say()
    say(f"- commit {commit}{dirty}: {subject}")
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    say(f"- machine: {os.cpu_count()} cores, {cpu}; load averages before the run: {results[0]['load_run']}")
    say(
        f"- server: make deploy DB_INIT={db_init}, Apache + mod_wsgi {PROCESSES} processes x {THREADS} threads, "
        f"server.conf (bcrypt cost 12: {bcrypt_s * 1000:.0f} ms of CPU per check, measured), "
        f"PostgreSQL fsync on"
    )
    say(
        f"- phases of {DURATION:.0f} s; measuring client: {RATE:.0f} req/s on each of GET /version (OPEN) and "
        f"GET /things/1 (token), open loop, a new connection each, timeout {TIMEOUT:.0f} s; bound counted: {BOUND:g} s"
    )
    say("- attackers: processes of threads on the same 2 cores, each request with new random credentials")
    say()
    say("## Attackers")
    say()
    say(
        "| phase | clients | requests | req/s | statuses | password checks/s implied | "
        "attacker p50 (s) | app CPU (cores) | app CPU / one check (/s) | attacker CPU (cores) | wsgi restarts | "
        "load 1 min |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        d = DURATION
        say(
            f"| {r['variant']} | {r['clients']} | {r['sent']} | {r['sent'] / d:.1f} | {fmt_statuses(r['statuses'])} | "
            f"{checks(r, fixed) / d:.1f} | {r['attack_p50']:.3f} | {r['app_cpu'] / d:.2f} | "
            f"{r['app_cpu'] / d / bcrypt_s:.1f} | {r['client_cpu'] / d:.2f} | {r['restarts']} | {r['load'][0]:.2f} |"
        )
    say()
    say(f"## Measured routes (latency in seconds from the scheduled start; > {BOUND:g} s counted)")
    say()
    say("| phase | clients | route | count | statuses | p50 | p95 | p99 | max | over bound |")
    say("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for route, name in (("open", "GET /version"), ("token", "GET /things/1 token")):
            m = r["measured"][route]
            say(
                f"| {r['variant']} | {r['clients']} | {name} | {m['count']} | {fmt_statuses(m['statuses'])} | "
                f"{m['p50']:.3f} | {m['p95']:.3f} | {m['p99']:.3f} | {m['max']:.3f} | {m['over']} |"
            )
    say()
    say(
        f"password checks/s implied: the bcrypt runs the answers imply on the code "
        f"{'after' if fixed else 'before'} the fix of issue #10 (detected by DB_INIT=demo): "
        + (
            "a 401 ran one, a register 201 hashed once; 400 (Basic with USER/PASS), 409 (taken login), "
            "429 and 503 ran none. "
            if fixed
            else "a 401 ran one (two for basic+param), a register 201 or 409 hashed once; 429 and 503 ran none. "
        )
        + "app CPU / one check: the daemon processes' CPU over the phase divided by one check's CPU, "
        "an upper bound of the checks run (all of the CPU when the app only checks passwords)."
    )
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    log(f"report in {OUT}; deployed folder {target}{' kept' if KEEP else ' removed'}")


def main():
    phases = []
    for item in PHASES.split(","):
        variant, _, count = item.partition(":")
        if variant not in VARIANTS:
            raise SystemExit(f"flood: unknown variant {variant}: {', '.join(VARIANTS)}")
        phases.append((variant, int(count or 0)))
    load_run = " ".join(f"{x:.2f}" for x in os.getloadavg())
    target = tempfile.mkdtemp(prefix="kiva-flood.")
    os.chmod(target, 0o755)  # Apache's account (www-data, as root) enters it
    try:
        db_init = setup(target)
        apache("start", target)
        bcrypt_s = bcrypt_seconds(target)
        token = measurer_token()
        log(f"token of {MEASURER}; bcrypt cost 12: {bcrypt_s * 1000:.0f} ms a check")
        results = []
        for variant, clients in phases:
            log(f"phase {variant} x{clients}, {DURATION:.0f} s")
            results.append(phase(target, token, variant, clients))
        results[0]["load_run"] = load_run
        report(results, db_init, bcrypt_s, target)
    finally:
        if os.path.exists(os.path.join(target, "apache", "httpd.pid")):
            apache("stop", target)
        run("scripts/pg.sh", "stop", env=pg_env())
        if not KEEP:
            shutil.rmtree(target, ignore_errors=True)


if __name__ == "__main__":
    main()
