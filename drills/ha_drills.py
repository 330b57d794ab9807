"""High-availability drills (make test-ha, after deploy/ha.sh start): every host a network
namespace, Patroni + etcd deciding which PostgreSQL is the primary.

Each drill runs under a steady load through HAProxy (client threads: POST /stuff with
unique names, DELETE of some, GET /stuff/<sid>, /version, /whoami with a token), every
request logged. After each one, every acknowledged write (201, 204) is checked in the
database (on the primary of then), every write answered 503 checked absent unless the
app said its commit's outcome was unknown; every answer that is not the expected one
must be a JSON 503. The drills, in this order:

1. kill: kill -9 of every process of the primary's host; writes answered again within
   KILL_BOUND seconds, meanwhile only JSON 503s, no acknowledged write lost; the host
   started again rejoins as the synchronous standby (pg_rewind).
2. switchover: patronictl switchover under load: no failed read, the write 503s span.
3. partition: the primary's host cut from everything (its link down): its PostgreSQL
   refuses writes (a local client on its socket: when?), none is acknowledged there
   after the cut, a new primary is elected; healed, the old primary rejoins as the
   synchronous standby by itself.
4. standby: kill -9 of the standby's host: writes go on (synchronous_mode_strict off:
   the primary drops the synchronous standby it lost and goes on alone).
5. redis: a web node cut off from Redis while the other reaches it: a password changed
   through either node is refused on the other at once (the shared cache holds no
   password hash, docs/shared-cache.md: no staleness that API.md forbids).
6. pitr: a pgBackRest backup from the primary of now (after the failovers), then a
   point-in-time restore of it into a scratch cluster: the rows before the target are
   there, the rows after it are not.

Environment: deploy/ha.sh env (HA_API, HA_CA, HA_NODES, HA_DIR, HA_DB).
"""

import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HA = os.path.join(ROOT, "deploy", "ha.sh")
API = os.environ["HA_API"]
CA = os.environ["HA_CA"]
NODES = os.environ["HA_NODES"].split(",")
DIR = os.environ["HA_DIR"]
DB = os.environ.get("HA_DB", "kiva_ha")
PG_BIN = "/usr/lib/postgresql/15/bin"
AS_PG = ("runuser", "-u", "postgres", "--")
THREADS = 4
TIMEOUT = 15.0  # client timeout: longer is a hang
KILL_BOUND = 10.0  # seconds from the kill of the primary to writes answered again
# seconds of write 503s a planned switchover may cause: the old primary's shutdown
# (its checkpoint, about 1 s), the new one's promotion, HAProxy's check (250 ms), each
# app process's pause after a failed connection (anodb_private's backoff, up to 1 s)
SWITCHOVER_WRITE_BOUND = 5.0
DEMOTION_BOUND = 5.0  # seconds for an isolated primary to stop accepting writes
REJOIN_BOUND = 60.0  # seconds for a host back to be the synchronous standby again
STALE_BOUND = 65.0  # usercache.TTL (60 s) and the checks' time
ADMIN = ("calvin", "hobbes")
READS = {"GET"}
EXPECTED = {"POST": 201, "DELETE": 204, "GET": 200}


def ha(*args: str) -> str:
    return run(HA, *args).strip()


def run(*command: str, quiet: bool = False):
    """A command, its failure an error with its output."""
    res = subprocess.run(command, capture_output=True, text=True, check=False)
    if res.returncode != 0 and not quiet:
        raise AssertionError(f"{' '.join(command)}: {res.returncode} {res.stdout} {res.stderr}")
    return res.stdout


def on_node(node: int, path: str, auth: tuple[str, str], method: str = "GET", data: str = "", client: str = "") -> int:
    """A request to one web node directly, from the load balancer's host (the node trusts
    its X-Forwarded-Proto, and its X-Forwarded-For: the client's address): the status."""
    command = ["ip", "netns", "exec", "kivaha-lb", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5"]
    command += ["-H", "X-Forwarded-Proto: https", "-u", f"{auth[0]}:{auth[1]}", "-X", method]
    command += ["-H", f"X-Forwarded-For: {client}"] if client else []
    command += ["-d", data] if data else []
    return int(run(*command, NODES[node - 1] + path, quiet=True) or 0)


def conninfo(host: str, dbname: str = DB) -> str:
    """As postgres on the host's socket: a folder, reachable from any namespace."""
    return f"host={DIR}/{host} port=5432 dbname={dbname} user=postgres connect_timeout=3"


def patroni(host: str, path: str) -> int:
    """The status of Patroni's REST endpoint on that host (0: no answer)."""
    address = {"pg1": 21, "pg2": 22}[host]
    net = os.environ.get("HA_NET", "10.77.0")
    try:
        return requests.get(f"http://{net}.{address}:8008{path}", timeout=1).status_code
    except requests.RequestException:
        return 0


def leader() -> str:
    """The host whose Patroni answers 200 on /primary, "" if none."""
    return next((host for host in ("pg1", "pg2") if patroni(host, "/primary") == 200), "")


def other(host: str) -> str:
    return "pg2" if host == "pg1" else "pg1"


def wait(what: str, check, timeout: float) -> float:
    """Wait until check() is true: the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return time.monotonic() - t0
        time.sleep(0.2)
    raise AssertionError(f"{what}: not after {timeout} s")


def full_strength(host: str) -> float:
    """The host is the synchronous standby again (Patroni's /sync answers 200): the seconds."""
    return wait(f"{host} synchronous standby", lambda: patroni(host, "/sync") == 200, REJOIN_BOUND)


class Session(requests.Session):
    """HAProxy's certificate, whatever REQUESTS_CA_BUNDLE says (it would win over Session.verify)."""

    def request(self, *args, **kwargs):
        kwargs.setdefault("verify", CA)
        return super().request(*args, **kwargs)


class Load:
    """Client threads through HAProxy; every request logged."""

    def __init__(self, name: str):
        self.name = name
        self.prefix = f"ha-{name}-{uuid.uuid4().hex[:6]}"
        self.counter = itertools.count()
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.log: list[dict] = []
        self.acked: dict[int, str] = {}  # sid → name of a 201
        self.deleted: set[int] = set()  # sids of a 204
        self.refused_posts: list[tuple[str, str]] = []  # (name, error) of POSTs answered otherwise
        self.refused_deletes: dict[int, str] = {}
        self.token = self.session().get(API + "/login", auth=("hobbes", "susie"), timeout=TIMEOUT).json()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(THREADS)]

    @staticmethod
    def session() -> requests.Session:
        return Session()

    def request(self, session, method: str, path: str, op: str, **kwargs) -> dict:
        start = time.monotonic()
        try:
            res = session.request(method, API + path, timeout=TIMEOUT, **kwargs)
            status, text = res.status_code, res.text
        except requests.RequestException as e:
            status, text = 0, repr(e)
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        entry = {"op": op, "method": method, "start": start, "end": time.monotonic(), "status": status}
        entry["text"], entry["json"] = text, body
        with self.lock:
            self.log.append(entry)
        return entry

    def client(self, seed: int):
        session = self.session()
        rand = random.Random(seed)
        mine: list[int] = []
        auth = {"Authorization": f"Bearer {self.token}"}
        while not self.stop_event.is_set():
            choice = rand.random()
            if choice < 0.35:
                name = f"{self.prefix}-{next(self.counter)}"
                e = self.request(session, "POST", "/stuff", "POST /stuff", data={"stuff": name})
                with self.lock:
                    if e["status"] == 201:
                        self.acked[e["json"]["sid"]] = name
                        mine.append(e["json"]["sid"])
                    else:
                        self.refused_posts.append((name, error_of(e)))
            elif choice < 0.45 and mine:
                sid = mine.pop(rand.randrange(len(mine)))
                e = self.request(session, "DELETE", f"/stuff/{sid}", "DELETE /stuff")
                with self.lock:
                    if e["status"] == 204:
                        self.deleted.add(sid)
                    else:
                        self.refused_deletes[sid] = error_of(e)
            elif choice < 0.6 and mine:
                self.request(session, "GET", f"/stuff/{rand.choice(mine)}", "GET /stuff")
            elif choice < 0.8:
                self.request(session, "GET", "/version", "GET /version")
            else:
                self.request(session, "GET", "/whoami", "GET /whoami", headers=auth)
            time.sleep(0.01)

    def __enter__(self):
        for t in self.threads:
            t.start()
        time.sleep(2)  # steady load first
        return self

    def __exit__(self, *exc):
        time.sleep(2)  # steady load after
        self.stop_event.set()
        for t in self.threads:
            t.join(TIMEOUT + 1)

    def failures(self) -> list[dict]:
        return [e for e in self.log if e["status"] != EXPECTED[e["method"]]]

    def not_json_503(self) -> list[str]:
        """Every failure must be the app's (or HAProxy's) JSON 503."""
        return [
            f"{self.name}: {e['op']} answered {e['status']} {e['text'][:150]}"
            for e in self.failures()
            if e["status"] != 503 or not isinstance(e["json"], dict) or not isinstance(e["json"].get("error"), str)
        ]

    def write_gap(self, after: float) -> tuple[float, float]:
        """(first failed write, first acknowledged write) after `after`, started after it."""
        writes = [e for e in self.log if e["method"] != "GET" and e["start"] >= after]
        failed = [e["start"] for e in writes if e["status"] != EXPECTED[e["method"]]]
        first_failed = min(failed, default=after)
        ok = [e["end"] for e in writes if e["status"] == EXPECTED[e["method"]] and e["start"] >= first_failed]
        return first_failed, min(ok, default=float("inf"))

    def figures(self, t0: float) -> str:
        failed = self.failures()
        reads = [e for e in failed if e["method"] in READS]
        return (
            f"{len(self.log)} requests sent ({sum(e['method'] != 'GET' for e in self.log)} writes), "
            f"{len(failed)} failed ({len(reads)} reads), {sum(e['status'] == 503 for e in failed)} JSON 503s, "
            f"in {time.monotonic() - t0:.1f} s"
        )

    def check_writes(self) -> list[str]:
        """Acknowledged writes present (deleted ones absent), refused ones absent."""
        errors = []
        with psycopg.connect(conninfo(leader())) as conn:
            query = "SELECT sid, stuff FROM Stuff WHERE stuff LIKE %s"
            rows: dict[int, str] = dict(conn.execute(query, (self.prefix + "-%",)).fetchall())
        names = set(rows.values())
        for sid, name in self.acked.items():
            if sid in self.deleted and sid in rows:
                errors.append(f"{self.name}: sid {sid} deleted (204) but present")
            elif sid not in self.deleted and sid not in self.refused_deletes and rows.get(sid) != name:
                errors.append(f"{self.name}: sid {sid} acknowledged (201) but absent: LOST")
        unknown = checked = 0
        for name, error in self.refused_posts:
            if name not in names:
                checked += 1
            elif "commit" in error:  # the server itself could not know the outcome
                unknown += 1
            else:
                errors.append(f"{self.name}: POST {name} refused ({error}) but present")
        for sid, error in self.refused_deletes.items():
            if sid in rows:
                checked += 1
            elif "commit" in error:
                unknown += 1
            else:
                errors.append(f"{self.name}: DELETE of sid {sid} refused ({error}) but applied")
        print(
            f"  writes: {len(self.acked)} POSTs and {len(self.deleted)} DELETEs acknowledged, all checked on the "
            f"primary ({leader()}): {len(errors)} wrong; {len(self.refused_posts) + len(self.refused_deletes)} "
            f"refused, {checked} of them checked not applied, {unknown} with an outcome unknown to the server"
        )
        with psycopg.connect(conninfo(leader())) as conn:
            conn.execute("DELETE FROM Stuff WHERE stuff LIKE %s", (self.prefix + "-%",))
        return errors


def error_of(e: dict) -> str:
    return e["json"].get("error", "") if isinstance(e["json"], dict) else e["text"][:100]


def drill_kill() -> list[str]:
    t0 = time.monotonic()
    old = leader()
    with Load("kill") as load:
        ha("kill", old)
        # its processes are dead once `ha.sh kill` returned: a write started while it ran
        # may still be acknowledged by the old primary (counted as "writes back" at 0.02 s)
        killed = time.monotonic()
        print(f"drill kill: kill -9 of every process of kivaha-{old} (the primary) at +{killed - t0:.2f} s")
        wait("a new primary", lambda: leader() not in ("", old), 30)
        new = leader()
        first_failed, back = load.write_gap(killed)
        wait("writes acknowledged again", lambda: load.write_gap(killed)[1] < float("inf"), 30)
        first_failed, back = load.write_gap(killed)
        print(f"  new primary {new}; writes answered again {back - killed:.2f} s after the kill")
        ha("host-start", old)
        print(f"  kivaha-{old} started again: synchronous standby after {full_strength(old):.1f} s (pg_rewind)")
    print(f"drill kill: {load.figures(t0)}")
    errors = load.not_json_503()
    if back - killed > KILL_BOUND:
        errors.append(f"kill: writes back after {back - killed:.2f} s, more than {KILL_BOUND} s")
    return errors + load.check_writes()


def drill_switchover() -> list[str]:
    t0 = time.monotonic()
    old = leader()
    with Load("switchover") as load:
        start = time.monotonic()
        ha("patronictl", "switchover", "--leader", old, "--candidate", other(old), "--force")
        done = time.monotonic()
        wait("the new primary", lambda: leader() == other(old), 30)
        print(f"drill switchover: {old} → {other(old)} (patronictl switchover took {done - start:.2f} s)")
        print(f"  {old} synchronous standby after {full_strength(old):.1f} s")
    failed = [e for e in load.failures() if e["start"] >= start]
    reads = [e for e in failed if e["method"] in READS]
    writes = [e for e in failed if e["method"] not in READS]
    span = max((e["end"] for e in writes), default=0.0) - min((e["start"] for e in writes), default=0.0)
    rspan = max((e["end"] for e in reads), default=0.0) - min((e["start"] for e in reads), default=0.0)
    print(
        f"drill switchover: {load.figures(t0)}; write 503s for {span:.2f} s; {len(reads)} reads answered 503 "
        f"over {rspan:.2f} s (every read needs the primary: none while it changes)"
    )
    errors = load.not_json_503()
    if span > SWITCHOVER_WRITE_BOUND:
        errors.append(f"switchover: write 503s for {span:.2f} s")
    return errors + load.check_writes()


class LocalWriter(threading.Thread):
    """A client on the primary's own host (its socket): writes, one transaction each, with
    the app's statement timeout, until told to stop. What the isolated primary acknowledges."""

    def __init__(self, host: str, prefix: str):
        super().__init__(daemon=True)
        self.host, self.prefix, self.done = host, prefix, threading.Event()
        self.attempts: list[tuple[float, float, str, str]] = []  # start, end, name, outcome

    def run(self):
        n = 0
        while not self.done.is_set():
            n += 1
            name, start = f"{self.prefix}-{n}", time.monotonic()
            try:
                with psycopg.connect(conninfo(self.host), autocommit=True) as conn:
                    conn.execute("SET statement_timeout = 5000")
                    notices: list[str] = []
                    conn.add_notice_handler(lambda d, notices=notices: notices.append(d.message_primary or ""))  # type: ignore[misc]
                    conn.execute("INSERT INTO Stuff(stuff) VALUES (%s)", (name,))
                    # a commit whose wait for the standby was cancelled: committed here only
                    outcome = "local-only" if any("synchronous replication" in m for m in notices) else "ok"
            except psycopg.Error as e:
                outcome = f"error: {str(e).splitlines()[0][:80]}"
            self.attempts.append((start, time.monotonic(), name, outcome))
            time.sleep(0.1)


def drill_partition() -> list[str]:
    errors = []
    t0 = time.monotonic()
    old = leader()
    local = LocalWriter(old, f"ha-local-{uuid.uuid4().hex[:6]}")
    with Load("partition") as load:
        local.start()
        time.sleep(1)
        ha("partition", old)
        cut = time.monotonic()  # the link is down once `ip link` returned (a write may end just before)
        print(f"drill partition: kivaha-{old} (the primary) cut from everything at +{cut - t0:.2f} s")
        wait("a new primary", lambda: patroni(other(old), "/primary") == 200, 30)
        elected = time.monotonic()
        print(f"  {other(old)} primary {elected - cut:.2f} s after the cut")

        def not_primary() -> bool:
            """Patroni cut off from etcd stops its PostgreSQL (an offline demotion)."""
            try:
                with psycopg.connect(conninfo(old, "postgres")) as conn:
                    return conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]  # type: ignore[index]
            except psycopg.Error:
                return True

        wait(f"{old} demoted", not_primary, 30)
        # its PostgreSQL stopped: the local writer's waiting commit ended (then no connection)
        demoted = min((a[1] for a in local.attempts if a[1] > cut and a[3] != "ok"), default=time.monotonic())
        print(f"  {old} (isolated) no longer a primary (stopped by its Patroni) {demoted - cut:.2f} s after the cut")
        time.sleep(1)
        local.done.set()
        local.join(10)
        healed = time.monotonic()
        ha("heal", old)
        print(f"  link back at +{healed - t0:.2f} s: {old} synchronous standby after {full_strength(old):.1f} s")
    after = [a for a in local.attempts if a[1] > cut]
    acked_after = [a for a in after if a[3] == "ok"]
    last_ok = max((a[1] for a in local.attempts if a[3] == "ok"), default=cut)
    print(
        f"  local writes on {old}'s socket: {len(local.attempts)} sent, {len(after)} ending after the cut, "
        f"{len(acked_after)} of them acknowledged; its last acknowledged write ended {last_ok - cut:+.2f} s "
        f"from the cut; outcomes after the cut: {sorted({a[3] for a in after})}"
    )
    if acked_after:
        errors.append(f"partition: {len(acked_after)} writes acknowledged by the isolated primary after the cut")
    if demoted - cut > DEMOTION_BOUND + 5:
        errors.append(f"partition: the isolated primary read-only after {demoted - cut:.2f} s")
    # the local writes: acknowledged ones present; a "local-only" one (its WARNING: the
    # wait for the standby cancelled) is not acknowledged, and gone if it was rewound away
    with psycopg.connect(conninfo(leader())) as conn:
        rows = {r[0] for r in conn.execute("SELECT stuff FROM Stuff WHERE stuff LIKE %s", (local.prefix + "-%",))}
        conn.execute("DELETE FROM Stuff WHERE stuff LIKE %s", (local.prefix + "-%",))
    for _, end, name, outcome in local.attempts:
        if outcome == "ok" and name not in rows:
            errors.append(f"partition: local write {name} acknowledged at {end - cut:+.2f} s, LOST")
        if outcome != "ok" and end > cut and name in rows:
            errors.append(f"partition: local write {name} refused ({outcome}) but present")
    print(f"drill partition: {load.figures(t0)}")
    return errors + load.not_json_503() + load.check_writes()


def drill_standby() -> list[str]:
    t0 = time.monotonic()
    primary = leader()
    standby = other(primary)
    with Load("standby") as load:
        killed = time.monotonic()
        ha("kill", standby)
        print(f"drill standby: kill -9 of every process of kivaha-{standby} (the standby) at +{killed - t0:.2f} s")
        time.sleep(4)
        ha("host-start", standby)
        print(f"  kivaha-{standby} started again: synchronous standby after {full_strength(standby):.1f} s")
    writes = [e for e in load.log if e["method"] != "GET" and e["start"] >= killed]
    slow = max((e["end"] - e["start"] for e in writes), default=0.0)
    print(f"drill standby: {load.figures(t0)}; the slowest write after the kill took {slow:.2f} s")
    errors = [f"standby: {e['op']} failed: {e['status']} {e['text'][:100]}" for e in load.failures()]
    if leader() != primary:
        errors.append(f"standby: the primary changed ({primary} → {leader()})")
    return errors + load.check_writes()


def drill_redis() -> list[str]:
    errors = []
    admin = Load.session()
    admin.auth = ADMIN
    login, pw1, pw2, pw3 = f"ha-{uuid.uuid4().hex[:8]}", "Drill-Pw-1", "Drill-Pw-2", "Drill-Pw-3"
    user: dict[str, str | bool] = {"login": login, "password": pw1, "isAdmin": False}
    res = admin.post(API + "/users", json={"user": user}, timeout=TIMEOUT)
    assert res.status_code == 201, f"redis: user creation: {res.status_code} {res.text}"
    uid = res.json()["uid"]
    t0 = time.monotonic()
    with Load("redis") as load:
        for node in (1, 2):  # cached in Redis now
            if on_node(node, "/whoami", (login, pw1)) != 200:
                errors.append(f"redis: node {node} refuses the first password before the cut")
        ha("cut", "web2", "redis")
        cut = time.monotonic()
        print(f"drill redis: kivaha-web2 cut from kivaha-redis at +{cut - t0:.2f} s (web1 still reaches it)")
        # a) changed through web1 (it reaches Redis and invalidates): web2 refuses the old one
        status = on_node(1, f"/users/{uid}", ADMIN, "PATCH", f"password={pw2}")
        assert status == 204, f"redis: password change through web1: {status}"
        a = {node: on_node(node, "/whoami", (login, pw1)) for node in (2, 1)}
        print(f"  a) changed through web1: the old password on web2 (cut) {a[2]}, on web1 {a[1]}, at once")
        if a != {1: 401, 2: 401}:
            errors.append(f"redis: old password after a change through web1: web2 {a[2]}, web1 {a[1]}, not 401")
        # b) changed through web2 (it cannot invalidate): web1 has the user's entry in
        # Redis, which must not let the old password in (the hash is always the database's).
        # The entry cached through web1: the cached row is per login and client address, and
        # not kept while either has failures (a) left some): a client of its own, twice (the
        # first success resets the login's failures, and its row is dropped)
        client = f"192.0.2.{random.randrange(1, 255)}"
        cached = max(on_node(1, "/whoami", (login, pw2), client=client) for _ in range(2))
        status = on_node(2, f"/users/{uid}", ADMIN, "PATCH", f"password={pw3}")
        assert status == 204, f"redis: password change through web2: {status}"
        changed_at = time.monotonic()
        b = on_node(1, "/whoami", (login, pw2), client=client)
        stale = b == 200
        if cached != 200:
            errors.append(f"redis: the second password on web1 before the change through web2: {cached}")
        if stale:  # how long, for the report: until the entry's TTL (usercache.TTL) ends it
            errors.append("redis: the old password accepted on web1 after its change through web2")
            wait(
                "web1 refusing the old password",
                lambda: on_node(1, "/whoami", (login, pw2), client=client) == 401,
                STALE_BOUND,
            )
        print(
            f"  b) changed through web2 (cut): the old password on web1 {b} at once"
            + (f", accepted for {time.monotonic() - changed_at:.1f} s (stale: API.md forbids it)" if stale else "")
        )
        ha("uncut", "web2", "redis")
        healed = time.monotonic()
        # web2's processes bump gen:users before using Redis again (usercache.py): a request to each
        for _ in range(8):
            on_node(2, "/whoami", (login, pw3))
        fresh = wait("web1 fresh", lambda: on_node(1, "/whoami", (login, pw2), client=client) == 401, 30)
        print(
            f"  healed {healed - changed_at:.1f} s after the change: web1 refuses the old password "
            f"{time.monotonic() - healed:.1f} s after the heal ({fresh:.1f} s of checks)"
        )
        if on_node(1, "/whoami", (login, pw3)) != 200 or on_node(2, "/whoami", (login, pw3)) != 200:
            errors.append("redis: the new password refused after the heal")
    print(f"drill redis: {load.figures(t0)}")
    errors += [f"redis: {e['op']} failed: {e['status']} {e['text'][:100]}" for e in load.failures()]
    admin.delete(f"{API}/users/{uid}", timeout=TIMEOUT)
    return errors + load.check_writes()


def drill_pitr() -> list[str]:
    errors = []
    primary = leader()
    config = f"{DIR}/{primary}/pgbackrest.conf"
    t0 = time.monotonic()
    with Load("pitr") as load:
        run("ip", "netns", "exec", f"kivaha-{primary}", *AS_PG, "pgbackrest", f"--config={config}", "--stanza=kiva",
            "--type=full", "backup")  # fmt: skip
        backed = time.monotonic()
        print(f"drill pitr: full backup from {primary} (the primary after the failovers) in {backed - t0 - 2:.1f} s")
        before, after = f"ha-mark-before-{uuid.uuid4().hex[:6]}", f"ha-mark-after-{uuid.uuid4().hex[:6]}"
        session = Load.session()
        for i in range(5):
            assert session.post(API + "/stuff", data={"stuff": f"{before}-{i}"}, auth=ADMIN, timeout=TIMEOUT).ok
        with psycopg.connect(conninfo(primary)) as conn:
            time.sleep(1.1)  # the target to the second after these commits
            target = conn.execute("SELECT to_char(now(), 'YYYY-MM-DD HH24:MI:SS.US+00')").fetchone()[0]  # type: ignore[index]
            time.sleep(1.1)
        for i in range(5):
            assert session.post(API + "/stuff", data={"stuff": f"{after}-{i}"}, auth=ADMIN, timeout=TIMEOUT).ok
        with psycopg.connect(conninfo(primary), autocommit=True) as conn:
            conn.execute("SELECT pg_switch_wal()")
    scratch = f"{DIR}/pitr"
    run("rm", "-rf", scratch)
    os.makedirs(scratch)
    run("chown", "postgres:", scratch)
    os.chmod(scratch, 0o700)
    # the WAL of the second after the target archived (the switch above)
    time.sleep(2)
    run(*AS_PG, "pgbackrest", f"--config={config}", "--stanza=kiva", f"--pg1-path={scratch}/data", "--type=time",
        f"--target={target}", "--target-action=promote", "restore")  # fmt: skip
    # Patroni's postgresql.conf names its host's address and files: overridden here
    options = (
        f"-c listen_addresses='' -c unix_socket_directories={scratch} -c port=5432 -c archive_mode=off "
        f"-c hba_file={scratch}/data/pg_hba.conf -c ident_file={scratch}/data/pg_ident.conf"
    )
    run(*AS_PG, f"{PG_BIN}/pg_ctl", "-D", f"{scratch}/data", "-o", options, "-l", f"{scratch}/log", "-w", "-t", "60",
        "start")  # fmt: skip
    try:
        with psycopg.connect(f"host={scratch} port=5432 dbname={DB} user=postgres") as conn:
            recovering = "SELECT pg_is_in_recovery()"
            wait("recovery done", lambda: not conn.execute(recovering).fetchone()[0], 60)  # type: ignore[index]
            found = [r[0] for r in conn.execute("SELECT stuff FROM Stuff WHERE stuff LIKE 'ha-mark-%'")]
    finally:
        run(*AS_PG, f"{PG_BIN}/pg_ctl", "-D", f"{scratch}/data", "-m", "immediate", "stop", quiet=True)
    restored = time.monotonic()
    n_before, n_after = sum(f.startswith(before) for f in found), sum(f.startswith(after) for f in found)
    print(
        f"drill pitr: restored to {target} in {restored - backed:.1f} s: {n_before} of 5 rows written before the "
        f"target, {n_after} of 5 written after it"
    )
    if (n_before, n_after) != (5, 0):
        errors.append(f"pitr: {n_before} rows before the target (5 expected), {n_after} after (0 expected)")
    with psycopg.connect(conninfo(leader())) as conn:
        conn.execute("DELETE FROM Stuff WHERE stuff LIKE 'ha-mark-%'")
    run("rm", "-rf", scratch)
    print(f"drill pitr: {load.figures(t0)}")
    return errors + load.not_json_503() + load.check_writes()


DRILLS = {
    "kill": drill_kill,
    "switchover": drill_switchover,
    "partition": drill_partition,
    "standby": drill_standby,
    "redis": drill_redis,
    "pitr": drill_pitr,
}


def main(names: list[str]) -> int:
    errors = []
    for name in names or DRILLS:
        errors += DRILLS[name]()
        sys.stdout.flush()
    for e in errors:
        print(f"FAILED: {e}")
    print("ha drills: passed" if not errors else f"ha drills: {len(errors)} failures")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
