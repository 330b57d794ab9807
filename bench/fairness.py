#!/usr/bin/python3
# A local tool: it runs local commands, in /tmp folders, on loopback URLs it builds itself
# ruff: noqa: S103, S108, S603, S607
"""Logins under hashing floods (issue 20, point 2): `make bench-fairness` runs it.

Stdlib only (/usr/bin/python3), the server of `make flood` (bench/flood.py: a private
PostgreSQL with fsync on, `make deploy DB_INIT=demo`, Apache + mod_wsgi 2 x 4, server.conf:
bcrypt cost 12, the production limits), then phases of FAIRNESS_DURATION seconds:

- baseline: no attack;
- cmp-hash: one ordinary user, 4 threads of GET /cmp/hash?apass=… back to back;
- register: 2 threads of POST /register with fresh logins, back to back, from one address.

During each phase, FAIRNESS_LOGINS users registered before (each from its own loopback
address, cost-12 hashes) log in for the first time (GET /login, Basic: a real bcrypt
check, none memoised), one every DURATION/LOGINS seconds, each on a new connection:
every one must answer 200 with a token within the bound: FAIRNESS_BOUND seconds (2 s, about
8 checks at cost 12 on these 2 cores), or 3 times the slowest first login of the baseline
phase if more (the machine is shared: its load alone can make one check take a second).
Figures to stdout and FAIRNESS_OUT
(bench/fairness-last-run.md); the exit status is 1 if a login missed the bound.
"""

import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import flood

say, log = flood.say, flood.log
PORT = flood.PORT
DURATION = float(os.environ.get("FAIRNESS_DURATION", "15"))
LOGINS = int(os.environ.get("FAIRNESS_LOGINS", "6"))
BOUND = float(os.environ.get("FAIRNESS_BOUND", "2"))
OUT = os.environ.get("FAIRNESS_OUT", os.path.join(flood.ROOT, "bench", "fairness-last-run.md"))
PHASES = (("baseline", 0), ("cmp-hash", 4), ("register", 2))


def send(method: str, path: str, headers: dict, body: str | None = None, source: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30, source_address=(source, 0) if source else None)
    try:
        return flood.request(conn, method, path, dict(headers, Connection="close"), body)
    finally:
        conn.close()


def register(login: str, password: str, source: str):
    status, body = send("POST", "/api/register", {}, f"login={login}&pword={password}", source)
    if status != 201:
        raise SystemExit(f"fairness: /register of {login} answered {status}: {body!r}")


def attacker(variant: str, deadline: float, user: tuple[str, str], counts: dict, lock: threading.Lock):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    while time.time() < deadline:
        args: tuple
        if variant == "cmp-hash":
            args = ("GET", f"/api/cmp/hash?apass={os.urandom(6).hex()}", {"Authorization": flood.basic(*user)})
        else:
            args = ("POST", "/api/register", {}, f"login=r{os.urandom(6).hex()}&pword={os.urandom(6).hex()}")
        try:
            status, _ = flood.request(conn, *args)
            key = str(status)
        except (OSError, http.client.HTTPException) as e:
            key = type(e).__name__
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        with lock:
            counts[key] = counts.get(key, 0) + 1
    conn.close()


def phase(variant: str, threads: int, victims: list[tuple[str, str]], user: tuple[str, str]) -> dict:
    counts: dict[str, int] = {}
    lock = threading.Lock()
    deadline = time.time() + DURATION
    workers = [threading.Thread(target=attacker, args=(variant, deadline, user, counts, lock)) for _ in range(threads)]
    for w in workers:
        w.start()
    time.sleep(0.5)  # the attack under way
    logins = []
    for login, password in victims:
        start = time.time()
        status, body = send("GET", "/api/login", {"Authorization": flood.basic(login, password)})
        elapsed = time.time() - start
        ok = status == 200 and json.loads(body).startswith("kiva")
        logins.append((status if ok else f"{status} {body[:80]!r}", elapsed))
        time.sleep(max((DURATION - 1) / len(victims) - elapsed, 0))
    for w in workers:
        w.join()
    times = [t for _, t in logins]
    load = os.getloadavg()[0]
    res = {"variant": variant, "threads": threads, "attack": counts, "logins": logins, "max": max(times), "load": load}
    log(f"{variant} x{threads}: attack {flood.fmt_statuses(counts)}; first logins {logins}")
    flood.drain(30)
    return res


def main():
    target = tempfile.mkdtemp(prefix="kiva-fairness.")
    os.chmod(target, 0o755)  # Apache's account (www-data, as root) enters it
    failed = False
    try:
        flood.setup(target)
        flood.apache("start", target)
        bcrypt_s = flood.bcrypt_seconds(target)
        user = ("hasher_" + os.urandom(4).hex(), os.urandom(8).hex())
        register(*user, "127.0.0.2")
        victims: dict[str, list] = {variant: [] for variant, _ in PHASES}
        for i, (variant, _) in enumerate(PHASES):
            for j in range(LOGINS):
                victim = (f"victim_{os.urandom(4).hex()}", os.urandom(8).hex())
                register(*victim, f"127.0.{10 + i}.{10 + j}")  # one address each: not the register limit
                victims[variant].append(victim)
        results = [phase(variant, threads, victims[variant], user) for variant, threads in PHASES]
        bound = max(BOUND, 3 * results[0]["max"])
        commit = flood.run("git", "rev-parse", "--short", "HEAD").strip()
        say(f"# First logins under hashing floods, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        say()
        say(
            f"- commit {commit}; Apache + mod_wsgi {flood.PROCESSES} x {flood.THREADS}, server.conf (bcrypt cost 12: "
            f"{bcrypt_s * 1000:.0f} ms a check, measured), {os.cpu_count()} cores shared with the attackers"
        )
        say(
            f"- {LOGINS} first logins (GET /login, Basic) per phase of {DURATION:.0f} s; bound {bound:.2f} s each "
            f"(the larger of {BOUND:g} s and 3 x the slowest baseline first login)"
        )
        say()
        say("| phase | attacker threads | attacker answers | first logins (status, s) | slowest (s) | load 1 min |")
        say("|---|---|---|---|---|---|")
        for r in results:
            logins = ", ".join(f"{s} {t:.2f}" for s, t in r["logins"])
            attack = flood.fmt_statuses(r["attack"])
            say(f"| {r['variant']} | {r['threads']} | {attack} | {logins} | {r['max']:.2f} | {r['load']:.1f} |")
            failed |= r["max"] > bound or any(s != 200 for s, _ in r["logins"])
        say()
        say(f"every first login 200 within {bound:.2f} s: {'NO' if failed else 'yes'}")
        with open(OUT, "w") as f:
            f.write("\n".join(flood.lines) + "\n")
    finally:
        if os.path.exists(os.path.join(target, "apache", "httpd.pid")):
            flood.apache("stop", target)
        flood.run("scripts/pg.sh", "stop", env=flood.pg_env())
        shutil.rmtree(target, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
