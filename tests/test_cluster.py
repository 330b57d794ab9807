"""Freshness of the shared cache across the nodes of a cluster (make test-cluster).

Each check warms the cache through both nodes (and checks that Redis holds the
entry: the cache is really in use), changes something through node 1, and asks
node 2 at once: the change must show on the very next request, from the node
that did not make it. Nodes are reached directly, not through HAProxy, so that
which node answers is known. CLUSTER_NODES (two API URLs) and CLUSTER_REDIS_PORT
come from deploy/cluster.sh env; without them (make check) the module is skipped.
"""

import json
import os
import signal
import subprocess
import threading
import time
from typing import Any

import bcrypt
import psycopg
import pytest
import redis
import requests
from helpers import bearer, new_address, unique

NODES = [url for url in os.environ.get("CLUSTER_NODES", "").split(",") if url]
pytestmark = pytest.mark.skipif(len(NODES) < 2, reason="a cluster's nodes (CLUSTER_NODES): make test-cluster")
ADMIN = ("calvin", "hobbes")
TIMEOUT = 10


ADDRESS = new_address()  # this module's client address (the nodes trust 127.0.0.1 as a proxy)


def call(node: int, method: str, path: str, status: int, auth=None, headers=None, **kwargs) -> requests.Response:
    """A request to node 1 or 2, its status checked, its error body a JSON error."""
    headers = {"X-Forwarded-For": ADDRESS, **(headers or {})}
    res = requests.request(method, NODES[node - 1] + path, auth=auth, headers=headers, timeout=TIMEOUT, **kwargs)
    assert res.status_code == status, f"node {node}: {method} {path}: {res.status_code} {res.text}"
    if status >= 400:
        assert isinstance(res.json()["error"], str)
    return res


REDIS_DIR = os.path.join(os.environ.get("CLUSTER_DIR", "."), "redis")


def redis_secret(account: str) -> str | None:
    """The password of a Redis account, from its 0600 file in the cluster's folder."""
    path = os.path.join(REDIS_DIR, f"{account}.pass")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read().strip()


def admin_redis() -> Any:  # redis-py types get() as bytes | str (decode_responses): bytes here
    """Redis as its administrator: the tests play anyone who can write to it."""
    password = redis_secret("admin")
    return redis.Redis(
        port=int(os.environ["CLUSTER_REDIS_PORT"]), username="admin" if password else None, password=password
    )


def cached(key: str) -> bool:
    return bool(admin_redis().exists(f"kiva:{key}"))


def new_user(admin: bool = False) -> tuple[str, str, int]:
    login, password = unique("cluster"), unique("Pw")
    user = {"login": login, "password": password, "isAdmin": admin}
    uid = call(1, "POST", "/users", 201, auth=ADMIN, json={"user": user}).json()["uid"]
    return login, password, uid


def warm(login: str, password: str, path: str = "/whoami", expect=None) -> str:
    """Both nodes answer 200 (with `expect` as the body) to a password and to a token,
    and the token's user row is in Redis (password checks always read the database)."""
    token = call(1, "GET", "/login", 200, auth=(login, password)).json()
    for node in (1, 2):
        for credentials in ({"auth": (login, password)}, {"headers": bearer(token)}):
            res = call(node, "GET", path, 200, **credentials)
            if expect is not None:
                assert res.json() == expect
    assert cached(f"row:{login}"), "the user row is not in the shared cache"
    return token


def test_password_change():
    login, old, uid = new_user()
    token = warm(login, old, expect=login)
    new = unique("New-Pw")
    call(1, "PATCH", f"/users/{uid}", 204, auth=ADMIN, data={"password": new})
    call(2, "GET", "/whoami", 401, auth=(login, old))
    call(2, "GET", "/whoami", 401, headers=bearer(token))
    assert call(2, "GET", "/whoami", 200, auth=(login, new)).json() == login
    call(1, "GET", "/whoami", 401, auth=(login, old))
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)


def test_demotion():
    login, password, uid = new_user(admin=True)
    warm(login, password, "/admin", expect=f"hello admin {login}!")
    # an object permission of an admin: another user's data
    for node in (1, 2):
        assert call(node, "GET", "/users/1", 200, auth=(login, password)).json()["login"] == "calvin"
    assert cached(f"perm:user:1:{login}"), "the permission is not in the shared cache"
    call(1, "PATCH", f"/users/{uid}", 204, auth=ADMIN, data={"isadmin": "false"})
    assert call(2, "GET", "/admin", 403, auth=(login, password)).json()["error"] == 'not in group "ADMIN"'
    call(2, "GET", "/users/1", 403, auth=(login, password))
    call(1, "GET", "/users/1", 403, auth=(login, password))
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)


def test_deletion():
    login, password, uid = new_user()
    warm(login, password)
    token = call(1, "GET", "/login", 200, auth=(login, password)).json()
    for node in (1, 2):
        assert call(node, "GET", "/whoami", 200, headers=bearer(token)).json() == login
    assert cached(f"row:{login}"), "the token's user row is not in the shared cache"
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)
    call(2, "GET", "/whoami", 401, headers=bearer(token))
    call(2, "GET", "/whoami", 401, auth=(login, password))
    call(1, "GET", "/whoami", 401, headers=bearer(token))


def test_object_deletion():
    login, password, uid = new_user()
    name = unique("thing")
    oid = call(1, "POST", "/object", 201, auth=(login, password), data={"object": name}).json()["oid"]
    for node in (1, 2):
        assert call(node, "GET", f"/object/{oid}", 200, auth=(login, password)).json()["object"] == name
        call(node, "GET", f"/object/{oid}", 403, auth=("hobbes", "susie"))
    assert cached(f"perm:owned:{oid}:{login}") and cached(f"perm:owned:{oid}:hobbes")
    call(1, "DELETE", f"/object/{oid}", 204, auth=(login, password))
    assert call(2, "GET", f"/object/{oid}", 404, auth=(login, password)).json()["error"] == "object not found"
    call(2, "GET", f"/object/{oid}", 404, auth=("hobbes", "susie"))
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)


def test_throttling():
    """Failed password checks counted through node 1 throttle the login on node 2 at once.

    From an address of its own: the throttle counts by login and by address, and an
    address's window opened by another test's failures may end in the middle of this one.
    """
    login, password, uid = new_user()
    address = {"X-Forwarded-For": new_address()}
    for node in (1, 2):  # the counts come from the database, never from the cache
        assert call(node, "GET", "/whoami", 200, auth=(login, password), headers=address).json() == login
    for _ in range(5):
        call(1, "GET", "/whoami", 401, auth=(login, "wrong-password"), headers=address)
    res = call(2, "GET", "/whoami", 429, auth=(login, "wrong-password"), headers=address)
    assert int(res.headers["Retry-After"]) > 0
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)


# the shared cache as a trust boundary (issue 20, point 5): what anyone who can write
# to Redis, or an evicting or paused Redis, can make the nodes believe


def redis_pid() -> int:
    with open(os.path.join(REDIS_DIR, "redis.pid")) as f:
        return int(f.read())


def test_redis_needs_a_password():
    """No access without a password; the app's account cannot flush, reconfigure or
    read other keys; no password on the server's command line nor in the files others read."""
    anonymous = redis.Redis(port=int(os.environ["CLUSTER_REDIS_PORT"]))
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.set("kiva:row:calvin", "forged")
    kiva = redis.Redis(port=int(os.environ["CLUSTER_REDIS_PORT"]), username="kiva", password=redis_secret("kiva"))
    assert kiva.ping() is True
    for command in (("FLUSHALL",), ("CONFIG", "GET", "requirepass"), ("KEYS", "*"), ("CLIENT", "PAUSE", "10")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            kiva.execute_command(*command)
    with pytest.raises(redis.exceptions.NoPermissionError):
        kiva.set("elsewhere", "x")
    with open(f"/proc/{redis_pid()}/cmdline", "rb") as f:
        cmdline = f.read().decode()
    for account in ("kiva", "admin"):
        secret = redis_secret(account)
        assert secret and secret not in cmdline
        assert os.stat(os.path.join(REDIS_DIR, f"{account}.pass")).st_mode & 0o077 == 0
        for log in (os.path.join(REDIS_DIR, "redis.log"), os.environ["CLUSTER_LOG"]):
            with open(log, errors="replace") as f:
                assert secret not in f.read(), f"a Redis password in {log}"
    assert os.stat(os.path.join(REDIS_DIR, "redis.conf")).st_mode & 0o077 == 0


def generation(client: Any, name: str):
    """A generation as the old format needs it (an int, 0 when missing), else as it is."""
    value = client.get(f"kiva:gen:{name}")
    return 0 if value is None else int(value) if value.isdigit() else value.decode()


def test_forged_user_entry_refused():
    """A forged `user:calvin|<address>` with a hash of the attacker's choice and isadmin
    true, in the format of the entries before HMACs: the password is checked against
    the database."""
    client = admin_redis()
    row = {
        "uid": 1,
        "login": "calvin",
        "isadmin": True,
        "pwchanged": 0.0,
        "pword": bcrypt.hashpw(b"attacker-Pw", bcrypt.gensalt(4)).decode(),
        "login_failures": None,
        "login_since": None,
        "address_failures": None,
        "address_since": None,
    }
    gens = [generation(client, g) for g in ("users", "login:calvin", f"address:{ADDRESS}")]
    client.set(f"kiva:user:calvin|{ADDRESS}", json.dumps({"gens": gens, "value": row}), ex=60)
    for node in (1, 2):
        call(node, "GET", "/admin", 401, auth=("calvin", "attacker-Pw"))
    assert call(2, "GET", "/admin", 200, auth=ADMIN).json() == "hello admin calvin!"
    client.delete(f"kiva:user:calvin|{ADDRESS}")


def test_altered_and_moved_entries_refused():
    """susie's genuine entry altered to isadmin true, then calvin's genuine entry copied
    to susie's key: both are misses, her token stays a non-admin's (from the database)."""
    client = admin_redis()
    susie = call(1, "GET", "/login", 200, auth=("susie", "derkins")).json()
    calvin = call(1, "GET", "/login", 200, auth=ADMIN).json()
    for node in (1, 2):
        call(node, "GET", "/admin", 403, headers=bearer(susie))
        assert call(node, "GET", "/admin", 200, headers=bearer(calvin)).json() == "hello admin calvin!"
    genuine = client.get("kiva:row:susie")
    assert genuine and b'"isadmin": false' in genuine, genuine
    client.set("kiva:row:susie", genuine.replace(b'"isadmin": false', b'"isadmin": true'), ex=60)
    for node in (1, 2):
        res = call(node, "GET", "/admin", 403, headers=bearer(susie))
        assert res.json()["error"] == 'not in group "ADMIN"'
    client.set("kiva:row:susie", client.get("kiva:row:calvin"), ex=60)
    for node in (1, 2):
        call(node, "GET", "/admin", 403, headers=bearer(susie))
        assert call(node, "GET", "/whoami", 200, headers=bearer(susie)).json() == "susie"
    assert b'"isadmin": false' in client.get("kiva:row:susie"), "the refused entry was not replaced"


def test_no_password_hash_in_redis():
    login, password, uid = new_user(admin=True)
    warm(login, password, "/admin", expect=f"hello admin {login}!")
    client = admin_redis()
    keys = list(client.scan_iter("kiva:*"))
    assert any(key.startswith(b"kiva:row:") for key in keys)
    holding = [key for key in keys if client.type(key) == b"string" and b"$2b$" in (client.get(key) or b"")]
    assert holding == [], f"password hashes in Redis: {holding}"
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)


def generations() -> dict[bytes, bytes | None]:
    client = admin_redis()
    return {key: client.get(key) for key in client.scan_iter("kiva:generation:*")}


def test_logins_and_registrations_keep_the_cache():
    """No ordinary request invalidates other users' entries: logins (tokens), new
    accounts, an admin's new user, a failed password leave every generation as it was."""
    warm(*ADMIN)
    before = generations()
    assert before, "no generation in Redis"
    call(1, "POST", "/login", 200, auth=("hobbes", "susie"))
    call(2, "GET", "/login", 200, auth=("hobbes", "susie"))
    call(1, "POST", "/register", 201, data={"login": unique("reg"), "pword": unique("Pw")})
    login, _, uid = new_user()
    call(2, "GET", "/whoami", 401, auth=("hobbes", "wrong-password"))
    assert generations() == before
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)
    assert generations() != before, "a deletion must invalidate"


def evict_generations(client: redis.Redis):
    """What allkeys-lru may do to the generation keys (whatever their names)."""
    for key in client.scan_iter("kiva:gen*"):
        client.delete(key)


def test_missing_generation_is_a_miss():
    """An evicted generation (allkeys-lru) never revives entries stored before a change."""
    client = admin_redis()
    login, password, uid = new_user(admin=True)
    token = call(1, "GET", "/login", 200, auth=(login, password)).json()
    evict_generations(client)  # as a fresh or evicting Redis
    for node in (1, 2):
        call(node, "GET", "/admin", 200, headers=bearer(token))
    assert cached(f"row:{login}")
    call(1, "PATCH", f"/users/{uid}", 204, auth=ADMIN, data={"isadmin": "false"})
    evict_generations(client)
    for node in (2, 1):
        call(node, "GET", "/admin", 403, headers=bearer(token))
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)


STALENESS_BOUND = 0.35  # seconds after Redis answers again (docs/shared-cache.md)


def stale_after_pause(pause, resume, poll_while_paused: bool) -> tuple[list[float], float]:
    """A password changed through node 1 while Redis is paused: the times (after the
    change, in seconds) at which node 2 still accepted a token older than the change,
    and the time at which Redis answered again; the old password refused after.

    Node 1 gets no request after the change: nothing but the writer's own retries can
    make up for the invalidation it could not make."""
    login, old, uid = new_user()
    token = warm(login, old)
    accepted: list[float] = []
    done = threading.Event()
    t0 = time.monotonic()

    def poll():  # tokens only: failed passwords would be throttled (429), hiding the answer
        while not done.is_set():
            headers = {"X-Forwarded-For": ADDRESS, **bearer(token)}
            res = requests.get(NODES[1] + "/whoami", headers=headers, timeout=TIMEOUT)
            if res.status_code == 200:
                accepted.append(time.monotonic() - t0)
            else:
                assert res.status_code == 401, res.text

    pause()
    t0 = time.monotonic()
    call(1, "PATCH", f"/users/{uid}", 204, auth=ADMIN, data={"password": unique("New-Pw")})
    t0 = time.monotonic()  # the change is acknowledged: from now on, old credentials are stale
    pollers = [threading.Thread(target=poll) for _ in range(3)]
    if poll_while_paused:
        for p in pollers:
            p.start()
    time.sleep(1.5)
    resume()
    resumed = time.monotonic() - t0
    if not poll_while_paused:  # node 2's processes then never saw Redis fail
        for p in pollers:
            p.start()
    time.sleep(3.0)
    done.set()
    for p in pollers:
        p.join()
    for node in (2, 1):
        call(node, "GET", "/whoami", 401, auth=(login, old))
        call(node, "GET", "/whoami", 401, headers=bearer(token))
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)
    return accepted, resumed


def report(what: str, accepted: list[float], resumed: float):
    last = f"the last at +{max(accepted):.2f} s" if accepted else "none"
    print(f"\n{what}: {len(accepted)} stale acceptances after the change, {last}, Redis back at +{resumed:.2f} s")


def test_staleness_with_redis_stopped():
    """Redis frozen (SIGSTOP) during a password change, then resumed: the old password
    and an older token are refused by both nodes, at most STALENESS_BOUND after Redis
    answers again (the writer retries its invalidation until it lands)."""
    pid = redis_pid()
    try:
        accepted, resumed = stale_after_pause(
            lambda: os.kill(pid, signal.SIGSTOP), lambda: os.kill(pid, signal.SIGCONT), False
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    late = [t for t in accepted if t > resumed + STALENESS_BOUND]
    report("redis stopped 1.5 s", accepted, resumed)
    assert late == [], f"old credentials accepted {late} s after the change (Redis back at +{resumed:.2f} s)"


def test_staleness_with_redis_writes_paused():
    """Redis refusing writes only (CLIENT PAUSE WRITE, reads served): stale answers are
    possible while the invalidation cannot land, never beyond STALENESS_BOUND after."""
    client = admin_redis()
    accepted, resumed = stale_after_pause(
        lambda: client.execute_command("CLIENT", "PAUSE", "60000", "WRITE"),
        lambda: client.execute_command("CLIENT", "UNPAUSE"),
        True,
    )
    client.execute_command("CLIENT", "UNPAUSE")
    late = [t for t in accepted if t > resumed + STALENESS_BOUND]
    report("redis writes paused 1.5 s", accepted, resumed)
    assert late == [], f"old credentials accepted {late} s after the change (Redis back at +{resumed:.2f} s)"


def node_flush(node: int):
    """What deploy.sh (DB_INIT) and scripts/backup.py (restore) run on a node: the cache flushed."""
    folder = os.path.join(os.environ["CLUSTER_DIR"], f"node{node}")
    command = "set -a && . ./kiva.env && venv/bin/python -m production.usercache flush"
    subprocess.run(["/bin/bash", "-c", command], cwd=folder, check=True)


def test_flush_after_database_replaced():
    """A change behind the app's back (a restore, DB_INIT): the flush makes it seen at once."""
    login, password, uid = new_user(admin=True)
    token = warm(login, password, "/admin")
    with psycopg.connect(os.environ["CLUSTER_PG"], autocommit=True) as conn:  # not through the app
        conn.execute("UPDATE Utilisateur SET isAdmin = FALSE WHERE uid = %s", (uid,))
    node_flush(1)
    for node in (2, 1):
        call(node, "GET", "/admin", 403, headers=bearer(token))
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)


def test_db_init_flushes():
    """Last (it resets the database to the demo users, as the drills expect): `make
    deploy DB_INIT=demo` to node 1 flushes the cache: a user of the old database, whose
    row node 2 had cached, is unknown at once."""
    login, password, uid = new_user(admin=True)
    token = warm(login, password, "/admin")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "cluster.sh")
    subprocess.run([script, "node-deploy", "1", "DB_INIT=demo"], check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    # node 2, whose processes cached the row (node 1's are reloading the new code)
    call(2, "GET", "/admin", 401, headers=bearer(token))
    assert call(2, "GET", "/admin", 200, auth=ADMIN).json() == "hello admin calvin!"


def test_hashing_budget_counted_in_redis():
    """The hashing budget of a client (production/ratelimit.py) is counted in Redis, for
    both nodes: the app's Redis account may run limits' scripts (else each process would
    count alone, with a warning, and a client would get the budget once per process)."""
    client = admin_redis()
    login, password, uid = new_user()  # one hash, counted for the admin who made it
    keys = [key for key in client.scan_iter("kiva:limits:*") if client.type(key) == b"list"]
    assert keys, "no hashing count in Redis"
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)
