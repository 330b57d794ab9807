"""Failure drills of the cluster (make test-cluster, after deploy/cluster.sh start).

Each drill runs under a steady load through HAProxy: client threads writing
(POST /stuff with unique names, DELETE of some of them) and reading (GET /stuff/<sid>,
/version, /whoami with a token, /admin with an admin's token), every request logged
and counted. The drills:

1. kill -9 of every process of node 2's Apache: no failed request but writes in flight
   on it between the kill and the death of its last process (HAProxy does not send
   again what a node may have acted on);
   reads in flight are retried by HAProxy (its retry counters are read from the
   runtime API); node 2 started again and back in rotation.
2. a rolling deploy: for each node, drained through HAProxy's runtime API (set server
   state drain, wait for 0 sessions), `make deploy` to it, warmed directly, then set
   ready: zero failed requests.
3. Redis stopped, then started: zero failed requests; a demotion and a password change
   made while Redis is down are in force on both nodes at once, and still after
   Redis is back (no stale authorization from a cache).
4. PostgreSQL restarted behind PgBouncer (fast, then immediate): drills/outage.py's
   drill through HAProxy (JSON 503s meanwhile, recovery without restart, every
   acknowledged write in the database, refused writes absent).

After each drill: every acknowledged write (201, 204) checked in the database (psql),
every failed write's outcome reported. Environment: deploy/cluster.sh env (CLUSTER_API,
CLUSTER_NODES, CLUSTER_SOCKET, CLUSTER_DIR, CLUSTER_PG, CLUSTER_LOG).
"""

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# the benchmarks' /proc readers (one copy: a process name that is not UTF-8 once stopped
# the copy that had not been fixed)
sys.path.insert(1, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
from typing import Any

import outage  # noqa: E402
from procs import descendants, pidfile, stat_fields  # noqa: E402

API = os.environ["CLUSTER_API"]
NODES = os.environ["CLUSTER_NODES"].split(",")
SOCKET = os.environ["CLUSTER_SOCKET"]
CLUSTER_DIR = os.environ["CLUSTER_DIR"]
PG = os.environ["CLUSTER_PG"]
CLUSTER = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "cluster.sh")]
THREADS = 4
SLOW_READS = 6  # sent just before the kill
TIMEOUT = 10.0
ADMIN = ("calvin", "hobbes")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
EXPECTED = {"POST": 201, "DELETE": 204, "GET": 200}


def runtime_api(command: str) -> str:
    """One command to HAProxy's runtime API (the stats socket), its answer."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(SOCKET)
        s.sendall(command.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def stats() -> dict[str, dict[str, str]]:
    """HAProxy's counters of the backend `nodes`, by server name (and BACKEND)."""
    lines = runtime_api("show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {r["svname"]: r for r in rows if r["pxname"] == "nodes"}


def retries() -> tuple[int, int]:
    """The backend's retries and redispatches so far."""
    backend = stats()["BACKEND"]
    return int(backend["wretr"] or 0), int(backend["wredis"] or 0)


def cluster(*args: str):
    subprocess.run([*CLUSTER, *args], check=True, stdout=subprocess.DEVNULL)


def wrong_writes(
    acked: dict[int, str], deleted: set[int], failed_deletes: list[int], rows: dict[int, str]
) -> tuple[list[str], int]:
    """What the database holds against what was answered: an acknowledged POST must be
    there (with its name) unless a DELETE of it was acknowledged (then it must be gone);
    a DELETE that failed without an answer (its node killed) may have committed or not:
    either is right, and how many did is counted. Returns (errors, failed DELETEs applied)."""
    errors = []
    unknown = set(failed_deletes)
    for sid, name in acked.items():
        if sid in deleted:
            if sid in rows:
                errors.append(f"sid {sid} deleted (204) but present")
        elif sid in unknown:
            if sid in rows and rows[sid] != name:
                errors.append(f"sid {sid} changed: {rows[sid]!r}, not {name!r}")
        elif rows.get(sid) != name:
            errors.append(f"sid {sid} acknowledged (201) but absent")
    return errors, sum(sid not in rows for sid in unknown)


class Load:
    """Client threads through HAProxy; every request logged."""

    def __init__(self, name: str):
        self.name = name
        self.prefix = f"drill-{name}-{uuid.uuid4().hex[:6]}"
        self.counter = itertools.count()
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.log: list[dict] = []
        self.acked: dict[int, str] = {}  # sid → name of a 201
        self.deleted: set[int] = set()  # sids of a 204
        self.failed_posts: list[str] = []  # names of POSTs without an answer of the app
        self.failed_deletes: list[int] = []
        self.user_token = requests.get(API + "/login", auth=("hobbes", "susie"), timeout=TIMEOUT).json()
        self.admin_token = requests.get(API + "/login", auth=ADMIN, timeout=TIMEOUT).json()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(THREADS)]
        self.retries0 = retries()

    def request(self, session, method: str, path: str, op: str, **kwargs) -> dict:
        start = time.monotonic()
        try:
            res = session.request(method, API + path, timeout=TIMEOUT, **kwargs)
            status, text = res.status_code, res.text
        except requests.RequestException as e:
            status, text = 0, repr(e)
        entry = {"op": op, "method": method, "start": start, "end": time.monotonic(), "status": status, "text": text}
        with self.lock:
            self.log.append(entry)
        return entry

    def client(self, seed: int):
        session = requests.Session()
        rand = random.Random(seed)
        mine: list[int] = []
        user, admin = {"Authorization": f"Bearer {self.user_token}"}, {"Authorization": f"Bearer {self.admin_token}"}
        while not self.stop_event.is_set():
            choice = rand.random()
            if choice < 0.3:
                name = f"{self.prefix}-{next(self.counter)}"
                e = self.request(session, "POST", "/stuff", "POST /stuff", data={"stuff": name})
                if e["status"] == 201:
                    sid = json.loads(e["text"])["sid"]
                    with self.lock:
                        self.acked[sid] = name
                    mine.append(sid)
                else:
                    with self.lock:
                        self.failed_posts.append(name)
            elif choice < 0.4 and mine:
                sid = mine.pop(rand.randrange(len(mine)))
                e = self.request(session, "DELETE", f"/stuff/{sid}", "DELETE /stuff")
                with self.lock:
                    if e["status"] == 204:
                        self.deleted.add(sid)
                    else:
                        self.failed_deletes.append(sid)
            elif choice < 0.55 and mine:
                self.request(session, "GET", f"/stuff/{rand.choice(mine)}", "GET /stuff")
            elif choice < 0.7:
                self.request(session, "GET", "/version", "GET /version")
            elif choice < 0.8:
                self.request(session, "GET", "/whoami", "GET /whoami", headers=user)
            elif choice < 0.85 and seed == 0:  # a slow read (bcrypt at the production cost): often in flight
                self.request(session, "GET", "/cmp/hash", "GET /cmp/hash", headers=user, params={"apass": "x"})
            else:
                self.request(session, "GET", "/admin", "GET /admin", headers=admin)
            time.sleep(0.005)

    def slow_read(self):
        """A read that takes a while (bcrypt at the production cost), on a connection of its own."""
        headers = {"Authorization": f"Bearer {self.user_token}"}
        self.request(
            requests.Session(), "GET", "/cmp/hash", "GET /cmp/hash (slow)", headers=headers, params={"apass": "x"}
        )

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(TIMEOUT + 1)

    def failures(self) -> list[dict]:
        return [e for e in self.log if e["status"] != EXPECTED[e["method"]]]

    def check_writes(self) -> tuple[int, list[str]]:
        """Acknowledged writes in the database; failed ones reported. Returns (present, errors)."""
        with psycopg.connect(PG) as conn:
            rows: dict[int, str] = dict(
                conn.execute("SELECT sid, stuff FROM Stuff WHERE stuff LIKE %s", (self.prefix + "-%",))
            )
        errors, deletes_applied = wrong_writes(self.acked, self.deleted, self.failed_deletes, rows)
        failed_present = sum(name in rows.values() for name in self.failed_posts)
        print(
            f"  writes: {len(self.acked)} POSTs acknowledged, {len(self.deleted)} DELETEs acknowledged, all checked "
            f"in the database: {len(errors)} wrong; {len(self.failed_posts)} failed POSTs, {failed_present} of "
            f"them present (committed before the failure); {len(self.failed_deletes)} failed DELETEs, "
            f"{deletes_applied} of them applied (committed before the failure)"
        )
        # clean up: the drill's rows
        with psycopg.connect(PG) as conn:
            conn.execute("DELETE FROM Stuff WHERE stuff LIKE %s", (self.prefix + "-%",))
        return failed_present, errors

    def report(self, t0: float) -> tuple[int, int]:
        wretr, wredis = retries()
        retried = (wretr - self.retries0[0], wredis - self.retries0[1])
        failed = self.failures()
        print(
            f"drill {self.name}: {len(self.log)} requests sent "
            f"({sum(e['method'] not in SAFE_METHODS for e in self.log)} writes), {len(failed)} failed, "
            f"HAProxy retries {retried[0]}, redispatches {retried[1]}, in {time.monotonic() - t0:.1f} s"
        )
        for e in failed[:10]:
            print(f"  failed: {e['op']} at +{e['start'] - t0:.2f} s: {e['status']} {e['text'][:120]}")
        return retried


def wait_status(server: str, want: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stats()[server]["status"] == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"{server}: not {want} after {timeout} s: {stats()[server]['status']}")


def apache_pids(node: int) -> list[int]:
    """The node's Apache: the parent (its pid file) and all its descendants."""
    return descendants(pidfile(os.path.join(CLUSTER_DIR, f"node{node}", "apache", "httpd.pid")))


def all_dead(pids: list[int], timeout: float = 5.0) -> float:
    """time.monotonic() once every one of these processes is dead (a zombie is): SIGKILL
    is delivered, not instantaneous, and until the last one dies the node's listening
    socket still accepts connections that it will then drop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
        fields is not None and fields[0] != "Z" for fields in map(stat_fields, pids)
    ):
        time.sleep(0.002)
    return time.monotonic()


def drill_kill() -> list[str]:
    errors = []
    t0 = time.monotonic()
    with Load("kill") as load:
        time.sleep(3)
        pids = apache_pids(2)
        # slow reads (a bcrypt hash each) sent just before the kill: half of them on node 2
        slow = [threading.Thread(target=load.slow_read) for _ in range(SLOW_READS)]
        for t in slow:
            t.start()
        time.sleep(0.1)
        killing = time.monotonic()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        killed = all_dead(pids)  # a request reaching node 2 until then may be dropped
        print(
            f"drill kill: kill -9 of node 2's Apache ({len(pids)} processes) at +{killing - t0:.2f} s, "
            f"all dead at +{killed - t0:.3f} s"
        )
        wait_status("node2", "DOWN", 10)
        print(f"  HAProxy saw node 2 DOWN after {time.monotonic() - killed:.2f} s")
        for t in slow:
            t.join(TIMEOUT + 1)
        time.sleep(2)
        cluster("node-start", "2")
        wait_status("node2", "UP", 30)
        print(f"  node 2 started again, UP after {time.monotonic() - killed:.2f} s")
        time.sleep(3)
    retried = load.report(t0)
    for e in load.failures():
        in_flight = e["start"] <= killed and e["end"] >= killing
        if not (in_flight and e["method"] not in SAFE_METHODS):
            errors.append(f"kill: {e['op']} failed, not a write in flight at the kill: {e['status']} {e['text'][:100]}")
    in_flight = [e for e in load.log if e["start"] <= killed and e["end"] >= killing]
    reads = [e for e in in_flight if e["method"] in SAFE_METHODS]
    writes = [e for e in in_flight if e["method"] not in SAFE_METHODS]
    print(
        f"  in flight at the kill (through both nodes): {len(reads)} reads, "
        f"{sum(e['status'] == 200 for e in reads)} of them answered 200; {len(writes)} writes, "
        f"{sum(e['status'] == EXPECTED[e['method']] for e in writes)} acknowledged"
    )
    answered = [e["status"] for e in load.log if e["op"] == "GET /cmp/hash (slow)"]
    print(f"  {len(answered)} slow reads sent just before the kill: {answered.count(200)} answered 200")
    if retried[0] + retried[1] == 0:
        errors.append("kill: HAProxy retried nothing")
    _, wrong = load.check_writes()
    return errors + wrong


def drill_rolling() -> list[str]:
    t0 = time.monotonic()
    with Load("rolling") as load:
        time.sleep(2)
        for node in (1, 2):
            server = f"nodes/node{node}"
            runtime_api(f"set server {server} state drain")
            drained = time.monotonic()
            while int(stats()[f"node{node}"]["scur"] or 0) > 0:
                time.sleep(0.05)
            print(f"drill rolling: node {node} drained (0 sessions) in {time.monotonic() - drained:.2f} s")
            cluster("node-deploy", str(node))
            # the first request to each process after the deploy loads the new code: ours, not a client's
            warm = requests.Session()
            for _ in range(20):
                res = warm.get(NODES[node - 1] + "/version", timeout=TIMEOUT)
                assert res.status_code == 200, f"node {node} after the deploy: {res.status_code} {res.text}"
            runtime_api(f"set server {server} state ready")
            wait_status(f"node{node}", "UP", 10)
            print(f"  node {node} deployed, warmed and ready after {time.monotonic() - drained:.1f} s")
            time.sleep(2)
    load.report(t0)
    errors = [f"rolling: {e['op']} failed: {e['status']} {e['text'][:100]}" for e in load.failures()]
    _, wrong = load.check_writes()
    return errors + wrong


def fresh_everywhere(login: str, password: str, path: str, status: int) -> list[str]:
    """The status of `path` for this user on each node, directly."""
    errors = []
    for i, node in enumerate(NODES, 1):
        res = requests.get(node + path, auth=(login, password), timeout=TIMEOUT)
        if res.status_code != status or (status >= 400 and "error" not in res.json()):
            errors.append(f"redis: node {i}: GET {path} as {login}: {res.status_code} {res.text[:100]}, not {status}")
    return errors


def drill_redis() -> list[str]:
    errors = []
    admin = requests.Session()
    admin.auth = ADMIN
    login, password, new_password = f"drill-{uuid.uuid4().hex[:8]}", "Drill-Pw-1", "Drill-Pw-2"
    user: dict[str, Any] = {"login": login, "password": password, "isAdmin": True}
    uid = admin.post(API + "/users", json={"user": user}, timeout=TIMEOUT).json()["uid"]
    t0 = time.monotonic()
    with Load("redis") as load:
        errors += fresh_everywhere(login, password, "/admin", 200)  # cached now
        time.sleep(2)
        cluster("redis-stop")
        print(f"drill redis: Redis stopped at +{time.monotonic() - t0:.2f} s")
        time.sleep(1)
        res = admin.patch(f"{API}/users/{uid}", data={"isadmin": "false"}, timeout=TIMEOUT)
        errors += [] if res.status_code == 204 else [f"redis: demotion while down: {res.status_code} {res.text}"]
        errors += fresh_everywhere(login, password, "/admin", 403)
        res = admin.patch(f"{API}/users/{uid}", data={"password": new_password}, timeout=TIMEOUT)
        errors += [] if res.status_code == 204 else [f"redis: password change while down: {res.status_code}"]
        errors += fresh_everywhere(login, password, "/whoami", 401)
        time.sleep(2)
        cluster("redis-start")
        print(f"  Redis started at +{time.monotonic() - t0:.2f} s")
        time.sleep(2.5)  # past each process's pause: Redis in use again
        errors += fresh_everywhere(login, password, "/whoami", 401)
        errors += fresh_everywhere(login, new_password, "/admin", 403)
        errors += fresh_everywhere(login, new_password, "/whoami", 200)
        time.sleep(1)
    load.report(t0)
    stale = len(errors)
    print(f"  freshness: 14 checks on the nodes (before, during, after), {stale} wrong")
    errors += [f"redis: {e['op']} failed: {e['status']} {e['text'][:100]}" for e in load.failures()]
    admin.delete(f"{API}/users/{uid}", timeout=TIMEOUT)
    _, wrong = load.check_writes()
    return errors + wrong


def drill_postgres() -> list[str]:
    # with the shared cache, /whoami needs no database (its user row is in Redis): 200 is right
    outage.DB_ROUTES.discard("GET /whoami")
    os.environ["PG_CTL_STOP"] = f"{CLUSTER[0]} pg-stop"
    os.environ["PG_CTL_START"] = f"{CLUSTER[0]} pg-start"
    print("drill postgres: drills/outage.py through HAProxy and PgBouncer")
    t0 = time.monotonic()
    r0 = retries()
    drill = outage.Drill(API, PG)
    ok = drill.run()
    r1 = retries()
    print(
        f"drill postgres: {len(drill.log)} requests sent, {sum(e['status'] not in (200, 201, 204) for e in drill.log)}"
        f" not 2xx ({sum(e['status'] == 503 for e in drill.log)} JSON 503s), HAProxy retries {r1[0] - r0[0]}, "
        f"redispatches {r1[1] - r0[1]}, in {time.monotonic() - t0:.1f} s"
    )
    return [] if ok else [f"postgres: {e}" for e in drill.errors] or ["postgres: failed"]


DRILLS = {"kill": drill_kill, "rolling": drill_rolling, "redis": drill_redis, "postgres": drill_postgres}


def main(names: list[str]) -> int:
    """Run the named drills (all by default), in this order."""
    errors = []
    for name in names or DRILLS:
        errors += DRILLS[name]()
    for e in errors:
        print(f"FAILED: {e}")
    print("drills: passed" if not errors else f"drills: {len(errors)} failures")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
