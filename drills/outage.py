"""Database outage drill against a live server (deploy/outage.sh runs it through Apache).

Client threads keep writing (POST /stuff with unique names, DELETE of some of them)
and reading (GET /stuff/<sid>, /version, /health, /whoami with a token) while the
drill stops PostgreSQL for a few seconds and starts it again, once with
`pg_ctl stop -m fast` and once with `-m immediate`. It checks that:

1. every request answers within MAX_LATENCY, never a 500 nor a hang; while the
   database is down (between the end of the stop and the start of the restart),
   every request that needs the database is a JSON 503 (a token request whose user's
   row its process holds, CACHED_ROUTES, may be answered: 200, with the right login);
2. after the restart the app serves again by itself within RECOVERY seconds, and
   every request after that succeeds (each process retries within a second: a 503
   may come from one of them until then);
3. every acknowledged write (201, 204) is in the database (psql) and through the
   API; a write answered 503 is absent (POST) or untouched (DELETE), with one
   exception, a commit whose acknowledgement was lost: the server saw the commit
   fail (503 "…during commit…": the connection died while committing) and the
   row may be there. Such rows are counted and reported, and only allowed then.

   python drills/outage.py http://127.0.0.1:8095/api "host=… dbname=… user=…"

Environment: PG_CTL_STOP (command stopping PostgreSQL, the mode appended),
PG_CTL_START (command starting it), OUTAGE_USER / OUTAGE_PASS (a seed user).
"""

import itertools
import json
import os
import random
import shlex
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import requests

THREADS = 3
TIMEOUT = 5.0  # client timeout of every request: a longer answer is a hang
# the set-up's login, not measured: it may be a daemon process's first request, which loads
# the app (mod_wsgi's request-timeout, 30 s; the login timed out at 5 s at load 13 so)
SETUP_TIMEOUT = 30.0
MAX_LATENCY = 3.0  # no request may take longer, outage or not
DOWN_SECONDS = 3.0  # how long PostgreSQL stays down
RECOVERY = 5.0  # after the restart, the app must serve within this delay
STEADY = 2.0  # normal traffic before the first outage and after each recovery
MODES = ["fast", "immediate"]
DB_ROUTES = {"POST /stuff", "DELETE /stuff", "GET /stuff", "GET /version", "GET /health"}
# a token request needs the database for its user's row, unless the process holds it (the
# local cache of a single server, production/localcache.py: no user can change while the
# database is down): a JSON 503, or 200 with the token's login
CACHED_ROUTES = {"GET /whoami"}


class Drill:
    def __init__(self, api: str, conninfo: str):
        self.api = api
        self.conninfo = conninfo
        self.prefix = f"outage-{uuid.uuid4().hex[:8]}"
        self.counter = itertools.count()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.log: list[dict] = []  # every request: op, start, end, status, body
        self.acked: dict[int, str] = {}  # sid → name, acknowledged by a 201
        self.deleted: set[int] = set()  # sids whose DELETE got a 204
        self.unacked_posts: list[tuple[str, str]] = []  # (name, error message) of POSTs answered 503
        self.unacked_deletes: dict[int, str] = {}  # sid → error message of DELETEs answered 503
        self.errors: list[str] = []
        self.token = self.login = ""

    def request(self, session: requests.Session, method: str, path: str, op: str, **kwargs) -> dict:
        start = time.monotonic()
        try:
            res = session.request(method, self.api + path, timeout=TIMEOUT, **kwargs)
            status, text = res.status_code, res.text
        except requests.RequestException as e:  # a hang or a dropped connection
            status, text = 0, repr(e)
        entry = {"op": op, "start": start, "end": time.monotonic(), "status": status, "text": text}
        try:
            entry["json"] = json.loads(text) if text else None
        except ValueError:
            entry["json"] = ValueError
        with self.lock:
            self.log.append(entry)
        return entry

    def client(self, seed: int):
        session = requests.Session()
        rand = random.Random(seed)
        mine: list[int] = []  # acknowledged sids of this thread, not deleted
        auth = {"Authorization": f"Bearer {self.token}"}
        while not self.stop.is_set():
            choice = rand.random()
            if choice < 0.35:
                name = f"{self.prefix}-{next(self.counter)}"
                e = self.request(session, "POST", "/stuff", "POST /stuff", data={"stuff": name})
                if e["status"] == 201:
                    with self.lock:
                        self.acked[e["json"]["sid"]] = name
                    mine.append(e["json"]["sid"])
                elif e["status"] == 503:
                    with self.lock:
                        self.unacked_posts.append((name, (e["json"] or {}).get("error", "")))
            elif choice < 0.45 and mine:
                sid = mine.pop(rand.randrange(len(mine)))
                e = self.request(session, "DELETE", f"/stuff/{sid}", "DELETE /stuff")
                if e["status"] == 204:
                    with self.lock:
                        self.deleted.add(sid)
                elif e["status"] == 503:  # checked at the end, never asked again
                    with self.lock:
                        self.unacked_deletes[sid] = (e["json"] or {}).get("error", "")
            elif choice < 0.6 and mine:
                self.request(session, "GET", f"/stuff/{rand.choice(mine)}", "GET /stuff")
            elif choice < 0.7:
                self.request(session, "GET", "/version", "GET /version")
            elif choice < 0.8:
                self.request(session, "GET", "/health", "GET /health")
            else:
                self.request(session, "GET", "/whoami", "GET /whoami", headers=auth)
            time.sleep(0.01)

    def run(self) -> bool:
        session = requests.Session()
        user, password = os.environ.get("OUTAGE_USER", "calvin"), os.environ.get("OUTAGE_PASS", "hobbes")
        res = session.get(self.api + "/login", auth=(user, password), timeout=SETUP_TIMEOUT)
        assert res.status_code == 200, f"login: {res.status_code} {res.text}"
        self.token, self.login = res.json(), user
        threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(THREADS)]
        for t in threads:
            t.start()
        outages = []
        try:
            time.sleep(STEADY)
            for mode in MODES:
                outages.append(self.outage(mode))
                time.sleep(STEADY)
        finally:
            self.stop.set()
            for t in threads:
                t.join(TIMEOUT + 1)
        ok = self.check_requests(outages)
        ok = self.check_writes() and ok
        return ok

    def outage(self, mode: str) -> dict:
        """Stop PostgreSQL, wait, start it, wait until the app serves again."""
        print(f"outage: stopping PostgreSQL (-m {mode})", flush=True)
        t0 = time.monotonic()
        subprocess.run([*shlex.split(os.environ["PG_CTL_STOP"]), mode], check=True, stdout=subprocess.DEVNULL)
        down = time.monotonic()
        time.sleep(DOWN_SECONDS)
        restart = time.monotonic()
        subprocess.run(shlex.split(os.environ["PG_CTL_START"]), check=True, stdout=subprocess.DEVNULL)
        up = time.monotonic()
        print(
            f"outage: PostgreSQL stopped in {down - t0:.1f} s, down {restart - down:.1f} s, "
            f"started in {up - restart:.1f} s",
            flush=True,
        )
        # the app is back when a request started after the restart succeeds
        deadline = up + RECOVERY
        recovered = None
        while time.monotonic() < deadline and recovered is None:
            time.sleep(0.05)
            with self.lock:
                ok = [e["end"] for e in self.log if e["start"] >= up and e["status"] in (200, 201, 204)]
            recovered = min(ok) if ok else None
        return {"mode": mode, "stopping": t0, "down": down, "restart": restart, "up": up, "recovered": recovered}

    def fail(self, message: str):
        self.errors.append(message)
        print(f"outage: FAILED: {message}", flush=True)

    def check_requests(self, outages: list[dict]) -> bool:
        log = self.log
        latencies = [e["end"] - e["start"] for e in log]
        print(f"outage: {len(log)} requests, max latency {max(latencies):.3f} s")
        for e in log:
            where = f"{e['op']} at +{e['start'] - log[0]['start']:.2f} s"
            if e["status"] == 0:
                self.fail(f"{where}: no answer within {TIMEOUT} s: {e['text']}")
            elif e["status"] >= 500 and e["status"] != 503:
                self.fail(f"{where}: {e['status']} {e['text'][:200]}")
            elif 400 <= e["status"] < 500:  # the drill sends valid requests only: any 4xx is a bug
                self.fail(f"{where}: {e['status']} {e['text'][:200]}")
            elif e["op"] == "GET /health" and e["status"] == 503:  # {"status", "db"} too, for monitoring
                if not (isinstance(e["json"], dict) and e["json"].get("db") == "unreachable" and "error" in e["json"]):
                    self.fail(f"{where}: 503 {e['text'][:200]}")
            elif e["status"] >= 400 and not (isinstance(e["json"], dict) and isinstance(e["json"].get("error"), str)):
                self.fail(f"{where}: {e['status']} without a JSON error: {e['text'][:200]}")
            elif e["end"] - e["start"] > MAX_LATENCY:
                self.fail(f"{where}: {e['end'] - e['start']:.2f} s")
        for o in outages:
            during = [e for e in log if e["start"] >= o["down"] and e["end"] <= o["restart"]]
            not_503 = [e for e in during if e["status"] != 503 and e["op"] in DB_ROUTES]
            lat = max((e["end"] - e["start"] for e in during), default=0.0)
            print(
                f"outage -m {o['mode']}: {len(during)} requests while down, "
                f"{sum(e['status'] == 503 for e in during)} answered 503, max latency {lat:.3f} s"
            )
            if len(during) < 10:
                self.fail(f"-m {o['mode']}: only {len(during)} requests while the database was down")
            for e in not_503:
                self.fail(f"-m {o['mode']}: {e['op']} answered {e['status']} while the database was down")
            cached = [e for e in during if e["op"] in CACHED_ROUTES and e["status"] != 503]
            for e in cached:
                if e["status"] != 200 or e["json"] != self.login:
                    self.fail(f"-m {o['mode']}: {e['op']} answered {e['status']} {e['text'][:100]} while down")
            print(f"outage -m {o['mode']}: {len(cached)} token requests answered from the local cache while down")
            if o["recovered"] is None:
                self.fail(f"-m {o['mode']}: not serving {RECOVERY} s after the restart")
                continue
            # each process tries again within its Backoff delay (1 s at most): a 503 may
            # still come from one of them for that long after the first success
            late = [e for e in log if e["start"] >= o["up"] and e["status"] == 503]
            late = [e for e in late if not any(o["stopping"] < x["stopping"] <= e["end"] for x in outages)]
            last = max((e["end"] for e in late), default=o["recovered"])
            print(
                f"outage -m {o['mode']}: serving again {o['recovered'] - o['up']:.3f} s after the restart, "
                f"everywhere (last 503) after {max(last, o['recovered']) - o['up']:.3f} s"
            )
            for e in late:
                if e["start"] > o["up"] + RECOVERY:
                    self.fail(f"-m {o['mode']}: {e['op']} answered 503 {e['start'] - o['up']:.2f} s after the restart")
        return not self.errors

    def check_writes(self) -> bool:
        errors = len(self.errors)
        with psycopg.connect(self.conninfo) as conn:
            rows: dict[int, str] = dict(
                conn.execute("SELECT sid, stuff FROM Stuff WHERE stuff LIKE %s", (self.prefix + "-%",))
            )
        present = {name: sid for sid, name in rows.items()}
        unsure = self.unacked_deletes
        kept = {sid: name for sid, name in self.acked.items() if sid not in self.deleted and sid not in unsure}
        for sid, name in kept.items():
            if rows.get(sid) != name:
                self.fail(f"acknowledged POST {name} (sid {sid}) missing: {rows.get(sid)!r}")
        for sid in self.deleted:
            if sid in rows:
                self.fail(f"acknowledged DELETE of sid {sid} not applied")
        lost_acks = 0
        refused_checked = 0  # writes answered 503, checked not applied
        for sid, error in unsure.items():  # a DELETE answered 503: the row untouched…
            if sid not in rows:  # …or deleted by a commit whose acknowledgement was lost
                if "commit" in error:
                    lost_acks += 1
                else:
                    self.fail(f"DELETE of sid {sid} answered 503 ({error}) but applied")
            elif rows[sid] != self.acked[sid]:
                self.fail(f"sid {sid} changed: {rows[sid]!r}")
            else:
                refused_checked += 1
        for name, error in self.unacked_posts:
            if name in present:
                if "commit" in error:  # the commit's outcome was unknown to the server itself
                    lost_acks += 1
                else:
                    self.fail(f"POST {name} answered 503 ({error}) but applied")
            else:
                refused_checked += 1
        # the outages must have refused writes, and the check above must have seen them absent
        if refused_checked < 1:
            self.fail("no write answered 503 was checked absent: the drill proved nothing about refused writes")
        if not self.acked or not self.deleted:
            self.fail(f"{len(self.acked)} acknowledged POST, {len(self.deleted)} acknowledged DELETE: too few")
        # every other row of the drill was acknowledged (or its acknowledgement lost)
        expected = set(self.acked.values()) | {name for name, _ in self.unacked_posts}
        for name in set(present) - expected:
            self.fail(f"row {name} written without any answer")
        # the same through the API: acknowledged rows readable, deleted ones gone
        session = requests.Session()
        for sid, name in kept.items():
            res = session.get(f"{self.api}/stuff/{sid}", timeout=TIMEOUT)
            if res.status_code != 200 or res.json().get("stuff") != name:
                self.fail(f"GET /stuff/{sid}: {res.status_code} {res.text[:200]}")
        for sid in self.deleted:
            res = session.get(f"{self.api}/stuff/{sid}", timeout=TIMEOUT)
            if res.status_code != 404:
                self.fail(f"GET /stuff/{sid} after its DELETE: {res.status_code}")
        print(
            f"outage: {len(self.acked)} acknowledged POST, {len(self.deleted)} acknowledged DELETE checked "
            f"(psql and API); {len(self.unacked_posts)} POST and {len(unsure)} DELETE answered 503, "
            f"{refused_checked} of them checked not applied, "
            f"{lost_acks} applied by a commit whose acknowledgement was lost"
        )
        with psycopg.connect(self.conninfo) as conn:  # leave no drill rows behind
            conn.execute("DELETE FROM Stuff WHERE stuff LIKE %s", (self.prefix + "-%",))
        return len(self.errors) == errors


def main() -> int:
    api, conninfo = sys.argv[1], sys.argv[2]
    drill = Drill(api, conninfo)
    ok = drill.run()
    print(f"outage: {'passed' if ok else f'{len(drill.errors)} failure(s)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
