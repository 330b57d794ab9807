"""The bcrypt work of password checks and hashes (issue 20, points 2 and 9).

- Every hash of a new password is limited per client (429), and runs in slots of its own:
  one user's /cmp/hash threads, or /register from one address, cannot starve the logins.
- A stored hash cheaper than the configured cost is rehashed at the next successful
  password check: after one login of its owner, a known login answers a wrong password
  as late as an unknown login does (no enumeration by timing).
"""

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable

import pytest
from helpers import EXTERNAL, app_config, app_routes, basic, new_address, other_app, register, unique

in_process_only = pytest.mark.skipif(EXTERNAL, reason="re-creates the app with another configuration: in-process only")

# the cost of the re-created app: a check then takes a few tens of ms against about 1 ms at
# the test configuration's cost 4, well above a request's own time in-process
HIGHER_COST = 10


@pytest.fixture
def costlier_config():
    """A configuration file: the test one with a higher bcrypt cost, and throttling out of
    the way (the test sends many wrong passwords on purpose)."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="kiva-test-cost-", delete=False) as conf:
        base = os.path.abspath(os.environ["APP_CONFIG"])
        conf.write(  # __file__: the test configuration finds its files (queries.sql…) beside it
            f"__file__ = {base!r}\nexec(open(__file__).read())\n"
            f'FSA_PASSWORD_OPTS = {{"rounds": {HIGHER_COST}}}\n'
            "KIVA_THROTTLE_FAILURES = 10**6\nKIVA_THROTTLE_ADDRESS_FAILURES = 10**6\n"
            "KIVA_THROTTLE_LOGIN_BUDGET = 10**6\nKIVA_THROTTLE_DEVICE_FAILURES = 10**6\n"
        )
    yield conf.name
    os.unlink(conf.name)


@in_process_only
def test_cheap_hash_rehashed_at_login(api, costlier_config):
    login, password, uid = register(api, "cheap", "right-password")  # cost 4, the test configuration's
    timings = other_app(
        f"""
        import base64, statistics, time, uuid
        def basic(user, pw):
            return {{"Authorization": "Basic " + base64.b64encode(f"{{user}}:{{pw}}".encode()).decode()}}
        def wrong(user):
            start = time.perf_counter()
            res = client.get("/whoami", headers={{**basic(user, "wrong-password"), "X-Forwarded-For": "10.9.9.9"}})
            assert res.status_code == 401, res.status_code
            return time.perf_counter() - start
        def medians():
            known, unknown = [], []
            for _ in range(7):
                known.append(wrong({login!r}))
                unknown.append(wrong("nobody-" + uuid.uuid4().hex[:10]))
            return statistics.median(known), statistics.median(unknown)
        before = medians()
        out(client.get("/whoami", headers=basic({login!r}, {password!r})))
        after = medians()
        results.append([before, after])
        """,
        APP_CONFIG=costlier_config,
    )
    assert timings[0] == [200, login]
    (known_before, unknown_before), (known_after, unknown_after) = timings[1]
    # a cost-4 hash against the unknown login's cost-10 one: 64 times less work
    assert known_before < unknown_before / 2, timings
    # one login later, the stored hash has the configured cost: the gap is closed
    assert known_after > unknown_after / 2, timings
    # and the password still works, from the suite's app too (its cost is 4: no rehash back)
    assert api.get("/whoami", 200, login=None, headers=basic(login, password)).json == login
    api.delete(f"/users/{uid}", 204, login="calvin")


def stored_hash(login: str) -> str:
    """The user's password hash as the database holds it (the app's own query)."""
    import race

    driver, conn = race.database()
    try:
        row = race.queries(driver).get_user(conn, login=login)
        return row["pword"] if isinstance(row, dict) else row[2]
    finally:
        conn.close()


@in_process_only
def test_rehash_in_process(api, caplog):
    """auth.rehash in this process (the test above sees it from another one): with a
    configured cost above the stored hash's, a wrong password changes nothing, a right
    one stores a new hash of the same password, once the check is over."""
    import auth

    caplog.set_level(logging.INFO, logger=auth.log.name)
    login, password, uid = register(api, "rehash", "right-password")
    before = stored_hash(login)
    assert before.startswith("$2b$04$"), before
    with app_config(FSA_PASSWORD_OPTS={"rounds": 5}):
        api.get("/whoami", 401, login=None, headers=basic(login, "wrong-password") | {"X-Forwarded-For": new_address()})
        assert stored_hash(login) == before and "rehashed" not in caplog.text
        assert api.get("/whoami", 200, login=None, headers=basic(login, password)).json == login
    after = stored_hash(login)
    # the app hashes at its own cost (4): a new salt, the same password
    assert after != before and after.startswith("$2b$04$"), (before, after)
    assert f"rehashed at the configured cost: {login!r}" in caplog.text
    assert api.get("/whoami", 200, login=None, headers=basic(login, password)).json == login
    assert stored_hash(login) == after, "at the configured cost again: no more rehash"
    api.delete(f"/users/{uid}", 204, login="calvin")


@in_process_only
def test_rehash_of_a_password_older_than_the_rules(api, caplog):
    """A password set before today's rules (shorter than FSA_PASSWORD_LENGTH) still logs in,
    and its rehash stores it as it is: the rules judge new passwords, not old ones."""
    import auth
    from app import app
    from database import db

    caplog.set_level(logging.INFO, logger=auth.log.name)
    login, old = unique("old-rules"), "abc"  # noqa: S105 (a test's)
    with app.test_request_context("/register"):
        uid = db.add_user(login=login, pword=app.hash_password(old, check=False), isadmin=False, now=time.time() - 5)
        db.commit()
    try:
        with app_config(FSA_PASSWORD_OPTS={"rounds": 5}):
            assert api.get("/whoami", 200, login=None, headers=basic(login, old)).json == login
        assert f"rehashed at the configured cost: {login!r}" in caplog.text
        assert api.get("/whoami", 200, login=None, headers=basic(login, old)).json == login
    finally:
        api.delete(f"/users/{uid}", 204, login="calvin")


#
# issue 20, point 2: hashing work fairly shared
#

# every route that hashes a new password, and a request of it that does (uid: a user's, i: 0, 1…)
HASHING: dict[tuple[str, str], Callable[[int, int], dict[str, dict]]] = {
    ("POST", "/register"): lambda uid, i: {"data": {"login": unique("hash"), "pword": "password"}},
    ("GET", "/cmp/hash"): lambda uid, i: {"data": {"apass": "password"}},
    ("POST", "/users"): lambda uid, i: {"json": {"user": {"login": unique("hash"), "password": "password"}}},
    ("PUT", "/users/<int:uid>"): lambda uid, i: {
        "json": {"user": {"uid": uid, "login": unique("h"), "password": "pw-word"}}
    },
    ("PATCH", "/users/<int:uid>"): lambda uid, i: {"data": {"password": f"password-{i}"}},
}
TOO_MANY = {"error": "too many password hashes, retry later"}


def admin(api) -> tuple[dict, int]:
    """A fresh administrator (its own hashing count): Basic headers, uid."""
    login = unique("admin")
    user = {"login": login, "password": "admin-password", "isAdmin": True}
    uid = api.post("/users", 201, login="calvin", json={"user": user}).json["uid"]
    return basic(login, "admin-password"), uid


@in_process_only
def test_hashing_routes_are_routes():
    from app import app
    from production import ratelimit

    assert set(HASHING) <= app_routes()
    endpoints = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        for method, path in HASHING
        if path == rule.rule and method in (rule.methods or ())
    }
    assert endpoints == ratelimit.HASHING_ENDPOINTS  # what the OpenAPI document says a 429 of


# beyond the limit, one client's hashes are refused (429) on every hashing route; the next
# client is not affected, nor what hashes nothing
@in_process_only
@pytest.mark.parametrize("method,rule", sorted(HASHING))
def test_hashing_limited_per_client(api, method, rule):
    login, password, uid = register(api, "hasher", "password")
    (me, me_uid), (other, other_uid) = admin(api), admin(api)
    made = [uid, me_uid, other_uid]
    if rule == "/register":  # counted by client address
        me = other = {}
    elif rule == "/cmp/hash":  # counted by user
        me, other = basic(login, password), other
    client = api.from_address(new_address())
    path = rule.replace("<int:uid>", str(uid))
    with app_config(KIVA_HASH_LIMIT="3 per minute"):
        for i in range(3):
            res = client.request(method, path, None, login=None, headers=me, **HASHING[(method, rule)](uid, i))
            assert res.status_code in (200, 201, 204), (i, res.status_code, res.json)
            made += [res.json["uid"]] if res.status_code == 201 else []
        res = client.request(method, path, 429, login=None, headers=me, **HASHING[(method, rule)](uid, 3))
        assert res.json == TOO_MANY and 1 <= int(res.headers["Retry-After"]) <= 60
        # another client hashes at once (another address for /register)
        res = api.from_address(new_address()).request(
            method, path, None, login=None, headers=other, **HASHING[(method, rule)](uid, 4)
        )
        assert res.status_code in (200, 201, 204), (res.status_code, res.json)
        made += [res.json["uid"]] if res.status_code == 201 else []
        if rule == "/users/<int:uid>":  # a PATCH that hashes nothing is not counted
            client.patch(path, 204, login=None, headers=me, data={"isadmin": False})
    for gone in made:
        api.delete(f"/users/{gone}", 204, login="calvin")


# logins never starved: new passwords are hashed in slots of their own
@in_process_only
def test_logins_have_their_own_slots(api):
    from test_security import busy_password_checks

    login, password, uid = register(api, "first", "first-password")
    with busy_password_checks(hashes=True):  # every hashing slot taken
        res = api.post("/register", 503, login=None, data={"login": unique("new"), "pword": "password"})
        assert res.json == {"error": "too many password checks at once, retry later"}
        # a first login (no memoised check): a bcrypt check in a login slot
        assert api.get("/login", 200, login=None, headers=basic(login, password)).json.startswith("kiva/")
    login2, password2, uid2 = register(api, "second", "second-password")
    with busy_password_checks():  # every login slot taken: new passwords still hashed
        res = api.get("/whoami", 503, login=None, headers=basic(login2, password2))
        assert res.json == {"error": "too many password checks at once, retry later"}
        uid3 = api.post("/register", 201, login=None, data={"login": unique("new"), "pword": "password"}).json["uid"]
    for gone in (uid, uid2, uid3):
        api.delete(f"/users/{gone}", 204, login="calvin")


# …and they run at the lowest CPU priority: beside them, a login gets the cores
@in_process_only
def test_hashes_at_the_lowest_priority(api):
    import threading

    uid = register(api, "niced")[2]  # one hash, by a hashing thread
    hashers = [t for t in threading.enumerate() if t.name.startswith("kiva-hash")]
    assert hashers and all(os.getpriority(os.PRIO_PROCESS, t.native_id) == 19 for t in hashers)  # type: ignore[arg-type]
    api.delete(f"/users/{uid}", 204, login="calvin")


@in_process_only
def test_hashing_in_a_forked_process():
    """A process forked after hashes were made (gunicorn --preload, mutmut's test runs)
    hashes too: its hashing threads are its own (the pool it inherited has none, and a
    hash given to it waited for ever)."""
    import signal

    import auth
    from app import app

    with app.app_context():
        assert auth.checks().hash(lambda: "in the parent") == "in the parent"
        pid = os.fork()
        if pid == 0:  # the child: an answer within 10 s, or SIGALRM
            signal.alarm(10)
            os._exit(0 if auth.checks().hash(lambda: "in the child") == "in the child" else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"the child's hash: {os.waitstatus_to_exitcode(status)}"


@in_process_only
def test_rehash_never_waits_for_a_slot(api, caplog):
    """No login slot free at once: no rehash, no wait, no error (the next login does it);
    with one free, the new hash is stored and is this request's memo from then on."""
    import auth
    from app import app
    from database import db

    caplog.set_level(logging.INFO, logger=auth.log.name)
    login, password, uid = register(api, "rehash-busy", "right-password")
    before = stored_hash(login)
    row = {"pword": before}
    with app.test_request_context("/whoami"):
        checks = auth.checks()
        taken = 0
        while checks.slots.acquire(timeout=0):
            taken += 1
        try:
            auth.rehash(login, password, row)
        finally:
            for _ in range(taken):
                checks.slots.release()
        db.commit()
    assert row == {"pword": before} and stored_hash(login) == before
    assert "rehashed" not in caplog.text
    with app.test_request_context("/whoami"):
        auth.rehash(login, password, row)
        db.commit()
    assert row["pword"] != before and stored_hash(login) == row["pword"]
    api.delete(f"/users/{uid}", 204, login="calvin")


def test_hashing_threads_at_the_usual_priority_if_not_allowed(monkeypatch, caplog):
    import auth

    def refused(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refused)
    auth.lower_priority()
    assert caplog.messages == ["hashing threads at the usual priority: [Errno 1] Operation not permitted"]


@in_process_only
def test_hash_of_72_bytes_made_before_sha256_still_valid(api):
    """bcrypt hashes a password of up to 72 bytes itself (every hash stored before the
    SHA-256 of longer ones was made so): one of exactly 72 bytes, hashed raw by bcrypt
    outside the app, still logs in."""
    import bcrypt

    from app import app
    from database import db

    login, password = unique("b72"), "p" * 70 + "é"  # 72 bytes
    assert len(password.encode()) == 72
    with app.test_request_context("/register"):
        pword = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
        uid = db.add_user(login=login, pword=pword, isadmin=False, now=time.time() - 5)
        db.commit()
    try:
        assert api.get("/whoami", 200, login=None, headers=basic(login, password)).json == login
    finally:
        api.delete(f"/users/{uid}", 204, login="calvin")


@in_process_only
def test_login_row_read_once_per_request(api, monkeypatch):
    """A password check reads its login's row once per request (auth.lookup), however
    many parts of the request ask for it (the check, the user's row, the throttle): one
    query, the user's row not read again."""
    import auth

    login, password, uid = register(api, "once", "right-password")
    reads: list[tuple[str, str]] = []

    def counted(query: str):
        original = getattr(auth.db, query)

        def read(**kwargs):
            reads.append((query, kwargs["login"]))
            return original(**kwargs)

        monkeypatch.setattr(auth.db, query, read)

    counted("get_user_login")  # with the hash and the throttling counts: a password check's
    counted("get_user")  # the user's row alone: what user_row reads when no check read it
    try:
        # GET /login reads the user's row after the check (wait_for_a_new_token_second)
        assert api.get("/login", 200, login=None, headers=basic(login, password)).json.count(":") == 3
        assert reads == [("get_user_login", login)]
    finally:
        monkeypatch.undo()
        api.delete(f"/users/{uid}", 204, login="calvin")


@pytest.fixture
def waiting(monkeypatch) -> threading.Event:
    """Set once a request waits for a password check under way (auth.Running's event)."""
    import auth

    waiting = threading.Event()

    class Done(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waiting.set()
            return super().wait(timeout)

    class Watched(auth.Running):
        def __init__(self):
            super().__init__()
            self.done = Done()

    monkeypatch.setattr(auth, "Running", Watched)
    return waiting


def test_parallel_checks_of_the_same_password_share_one_bcrypt(waiting):
    """Parallel requests with the same credentials, each the first of this process, wait
    for the check under way (in no slot) rather than take a slot each: one bcrypt, the
    same answer for both."""
    import auth

    inside, release = threading.Event(), threading.Event()
    calls: list[str] = []

    class App:
        def check_password(self, password: str, ref: str) -> bool:
            calls.append(password)
            inside.set()
            return release.wait(10)

    checks = auth.PasswordChecks(slots=2, hash_slots=1, wait=0)
    answers: list[bool] = []
    first = threading.Thread(target=lambda: answers.append(checks.verify(App(), "pw", "ref")))  # type: ignore[arg-type]
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=lambda: answers.append(checks.verify(App(), "pw", "ref")))  # type: ignore[arg-type]
    second.start()
    deadline = time.monotonic() + 10
    while not waiting.is_set() and len(calls) < 2 and time.monotonic() < deadline:  # either, soon
        time.sleep(0.01)
    release.set()
    first.join(10)
    second.join(10)
    assert (answers, calls) == ([True, True], ["pw"])


class CountingApp:
    """What PasswordChecks asks of the app: check_password, counted; right if "pw"."""

    def __init__(self):
        self.calls: list[str] = []

    def check_password(self, password: str, ref: str) -> bool:
        self.calls.append(password)
        return password == "pw"  # noqa: S105


def test_verify_remembers_successes_newest_last():
    """A verified pair is answered from the memo (no bcrypt), found by its digests
    (remembered), and kept as the newest when used again: the oldest is forgotten first."""
    import auth

    checks = auth.PasswordChecks(slots=1, hash_slots=1, wait=0, size=2)
    app = CountingApp()
    for ref in ("ref-a", "ref-b", "ref-a", "ref-a"):
        assert checks.verify(app, "pw", ref) is True  # type: ignore[arg-type]
    assert app.calls == ["pw", "pw"]  # a and b once each
    assert checks.remembered("pw", checks.digest("ref-a")) and not checks.remembered("wrong", checks.digest("ref-a"))
    assert checks.verify(app, "pw", "ref-c")  # type: ignore[arg-type]  # the memo's bound: b, the oldest, goes
    assert [checks.remembered("pw", checks.digest(r)) for r in ("ref-a", "ref-b", "ref-c")] == [True, False, True]
    assert not checks.verify(app, "wrong", "ref-a") and not checks.remembered("wrong", checks.digest("ref-a"))  # type: ignore[arg-type]


def test_waiting_for_a_refused_check_runs_its_own(waiting):
    """A request waiting for the same check under way, which was refused (no slot: 503),
    runs its own check, and answers by it, not by the refused one's missing answer."""
    import FlaskSimpleAuth as fsa

    import auth

    checks = auth.PasswordChecks(slots=1, hash_slots=1, wait=2.0)
    app = CountingApp()
    assert checks.slots.acquire(timeout=1)  # another login holds the only slot
    answers: list[object] = []

    def check():
        try:
            answers.append(checks.verify(app, "pw", "ref"))  # type: ignore[arg-type]
        except fsa.ErrorResponse as e:
            answers.append(e.status)

    first = threading.Thread(target=check)
    first.start()
    deadline = time.monotonic() + 10
    while not checks.running and time.monotonic() < deadline:  # the first one's check under way
        time.sleep(0.005)
    second = threading.Thread(target=check)
    second.start()
    assert waiting.wait(10)  # the second waits for the first
    first.join(10)  # refused after its 2 s wait for a slot
    checks.slots.release()  # now the second one's own check gets it
    second.join(10)
    assert (answers, app.calls) == ([503, True], ["pw"])
