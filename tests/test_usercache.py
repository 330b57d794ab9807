"""The shared cache's rules (usercache.py), against a real Redis of the test's own.

A redis-server on a Unix socket in a temporary folder (no port to share with other
runs), with the app's module driven directly: what an entry must be to be trusted
(authenticated, under the current generations, young enough), what a missing
generation means, and what happens to an invalidation Redis could not take. Which
requests invalidate what is checked on the route table of the app. In-process only:
a live server's cache is checked by tests/test_cluster.py (make test-cluster).
"""

import datetime
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import flask
import pytest
import redis
from helpers import EXTERNAL, Clock, Loads, basic, register, unique

from production import usercache

pytestmark = pytest.mark.skipif(EXTERNAL or not shutil.which("redis-server"), reason="in-process, with redis-server")
SECRET = "a-test-secret-of-the-servers"


@pytest.fixture(scope="module")
def server():
    """A private redis-server: (its process, its URL)."""
    folder = tempfile.mkdtemp(prefix="kiva-usercache-")
    socket = os.path.join(folder, "redis.sock")
    proc = subprocess.Popen(  # noqa: S603
        ["redis-server", "--port", "0", "--unixsocket", socket, "--save", "", "--dir", folder],  # noqa: S607
        stdout=subprocess.DEVNULL,
    )
    url = f"unix://{socket}"
    client = redis.Redis.from_url(url)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    yield proc, url
    proc.send_signal(signal.SIGCONT)
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(folder)


@pytest.fixture
def cache(server, monkeypatch):
    """usercache's Cache on the private Redis, emptied; the raw client to play with it."""
    _, url = server
    c = usercache.Cache(url, SECRET)
    c.redis.flushall()
    monkeypatch.setattr(usercache, "cache", c)
    return c


ROW = {"uid": 3, "login": "susie", "isadmin": False, "pwchanged": 1.0}


def test_hit_then_missing_generation_is_a_miss(cache):
    load = Loads(ROW)
    for _ in range(3):
        assert usercache.user_row("susie", load) == ROW
    assert load.count == 1
    # an evicted (or flushed, or restarted) generation: a miss, never "generation 0"
    cache.redis.delete("kiva:generation:users")
    assert usercache.user_row("susie", load) == ROW
    assert load.count == 2
    assert cache.redis.get("kiva:generation:users") is not None, "a new generation is made before the load"
    assert usercache.user_row("susie", load) == ROW and load.count == 2
    assert 0 < cache.redis.ttl("kiva:row:susie") <= usercache.TTL  # Redis forgets what no node would trust


def test_uncacheable_value_answered_and_named(cache, caplog):
    """A value JSON cannot carry (a column of another type): answered, not cached, said."""
    import decimal

    load = Loads({**ROW, "balance": decimal.Decimal("1.5")})
    for _ in range(2):
        assert usercache.user_row("susie", load) == {**ROW, "balance": decimal.Decimal("1.5")}
    assert load.count == 2 and cache.redis.get("kiva:row:susie") is None
    assert caplog.messages == ["row:susie: not cacheable: Decimal"] * 2


def test_no_password_hash_stored(cache):
    load = Loads({**ROW, "pword": "$2b$04$" + "x" * 53})
    row = usercache.user_row("susie", load)
    assert row is not None and "pword" not in row
    assert b"$2b$" not in (cache.redis.get("kiva:row:susie") or b"")


@pytest.mark.parametrize("tamper", ["alter", "move", "unsigned", "old"])
def test_forged_entries_are_misses(cache, tamper):
    """An altered entry, another key's genuine entry, an entry without a valid HMAC,
    an entry older than MAX_AGE: each is a miss, the database answers."""
    usercache.user_row("calvin", Loads({**ROW, "uid": 1, "login": "calvin", "isadmin": True}))
    load = Loads(ROW)
    usercache.user_row("susie", load)
    genuine = cache.redis.get("kiva:row:susie")
    gens = [cache.redis.get("kiva:generation:users")]
    forged = {
        "alter": genuine.replace(b'"isadmin": false', b'"isadmin": true'),
        "move": cache.redis.get("kiva:row:calvin"),
        "unsigned": b"0" * 64 + b"." + genuine.partition(b".")[2].replace(b"false", b"true"),
        "old": cache.seal("row:susie", {**ROW, "isadmin": True}, gens, time.time() - usercache.MAX_AGE - 1),
    }[tamper]
    cache.redis.set("kiva:row:susie", forged)
    assert usercache.user_row("susie", load) == ROW
    assert load.count == 2
    assert cache.open("row:susie", cache.redis.get("kiva:row:susie"), gens, time.time()) == (True, ROW)


def test_another_secret_is_refused(cache, server):
    usercache.user_row("susie", Loads(ROW))
    other = usercache.Cache(server[1], "another-secret-entirely")
    gens = [cache.redis.get("kiva:generation:users")]
    assert other.open("row:susie", cache.redis.get("kiva:row:susie"), gens, time.time()) == (False, None)


def test_failed_bump_is_retried_and_distrusted_meanwhile(cache, server):
    """Redis frozen during a bump: the process stops using the cache (the database
    answers each time) and its own thread makes the bump as soon as Redis is back."""
    proc, _ = server
    load = Loads(ROW)
    usercache.user_row("susie", load)
    before = cache.redis.get("kiva:generation:users")
    proc.send_signal(signal.SIGSTOP)
    try:
        cache.bump({"generation:users"})
        assert not cache.usable()
        for _ in range(3):
            assert usercache.user_row("susie", load) == ROW
        assert load.count == 4, "the cache was used before the missed bump was made"
        time.sleep(0.6)
    finally:
        proc.send_signal(signal.SIGCONT)
    resumed = time.monotonic()
    while not cache.usable() and time.monotonic() < resumed + 5:
        time.sleep(0.01)
    print(f"\nbump made {time.monotonic() - resumed:.3f} s after Redis came back")
    assert time.monotonic() - resumed < usercache.RETRY + usercache.TIMEOUT + 0.2
    assert cache.redis.get("kiva:generation:users") != before
    assert cache.retrier is None


def changed(app: flask.Flask, method: str, path: str, status: int) -> set[str]:
    with app.test_request_context(path, method=method):
        return usercache.changed_generations(flask.Response(status=status))


def test_what_invalidates():
    """Only changes to existing users and objects invalidate; a server error of such a
    write too (the commit may have happened); logins and new accounts never do."""
    from app import app

    writes = {
        (r.endpoint, m)
        for r in app.url_map.iter_rules()
        for m in r.methods or ()
        if m not in {"GET", "HEAD", "OPTIONS"}
    }
    assert {e for e, _ in writes if e.startswith("users.")} >= usercache.NO_USER_CHANGE - {"users.get_login"}
    assert changed(app, "POST", "/login", 200) == set()
    assert changed(app, "POST", "/register", 201) == set()
    assert changed(app, "POST", "/register", 503) == set()
    assert changed(app, "POST", "/users", 201) == set()
    for method in ("PATCH", "PUT", "DELETE"):
        assert changed(app, method, "/users/2", 204) == {"generation:users"}
        assert changed(app, method, "/users/2", 503) == {"generation:users"}, "a commit of unknown outcome"
        assert changed(app, method, "/users/2", 409) == set()
        assert changed(app, method, "/users/2", 400) == set(), "a 4xx was rolled back, 400 included"
        assert changed(app, method, "/users/2", 499) == set()
    assert changed(app, "DELETE", "/object/7", 204) == {"generation:owned:7"}
    assert changed(app, "PATCH", "/object/7", 500) == {"generation:owned:7"}
    # another blueprint's <oid> (an owner, not an owned object) has no permission cached
    assert changed(app, "DELETE", "/owners/7", 204) == set()
    assert changed(app, "PATCH", "/owners/7", 204) == set()
    assert changed(app, "GET", "/users/2", 200) == set()
    # every other write of the users blueprint invalidates (a new route is safe by default)
    for endpoint, method in writes:
        if endpoint.startswith("users.") and endpoint not in usercache.NO_USER_CHANGE:
            rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
            path = rule.rule.replace("<uid>", "2").replace("<int:uid>", "2")
            assert changed(app, method, path, 204) == {"generation:users"}, (endpoint, method)


def test_restore_flushes(cache, server, monkeypatch):
    """scripts/backup.py restore, with KIVA_REDIS set: every entry invalidated."""
    from scripts import backup

    load = Loads(ROW)
    usercache.user_row("susie", load)
    monkeypatch.setenv("KIVA_REDIS", server[1])
    backup.flush_shared_cache()
    usercache.user_row("susie", load)
    assert load.count == 2


def test_entries_carry_dates():
    """A row's dates come back as dates, and an object that merely looks like one stays."""
    when = datetime.datetime(2026, 12, 3, 7, 30, 1, 250000, tzinfo=datetime.UTC)
    value = {"login": "susie", "pwchanged": when, "nested": [{"at": when}]}
    text = usercache.encode(value)
    assert '"$datetime": "2026-12-03T07:30:01.250000+00:00"' in text
    assert usercache.decode(text) == value
    assert usercache.decode(text.encode()) == value
    assert usercache.decode('{"a": {"b": 1}}') == {"a": {"b": 1}}
    with pytest.raises(TypeError, match="not cacheable: bytes"):
        usercache.encode({"blob": b"x"})


def test_flush_sets_a_new_generation(cache, server):
    """flush() (restores, DB_INIT) makes a new users generation: True once it is set."""
    before = cache.redis.get("kiva:generation:users")
    assert usercache.flush(server[1]) is True
    after = cache.redis.get("kiva:generation:users")
    assert after is not None and after != before


def test_flush_without_redis_says_so(capsys, monkeypatch):
    """Redis unreachable: every attempt made, False, and the reason on stderr."""
    naps: list[float] = []
    monkeypatch.setattr(usercache.time, "sleep", naps.append)
    folder = tempfile.mkdtemp(prefix="kiva-usercache-none-")
    try:
        assert usercache.flush(f"unix://{folder}/no-redis.sock", attempts=3) is False
        assert naps == [0.5, 0.5, 0.5]
        err = capsys.readouterr().err
        assert err.startswith("shared cache not flushed: ") and "ConnectionError" in err
        assert err.count("\n") == 1, "said once, after the last attempt"
        assert usercache.flush(f"unix://{folder}/no-redis.sock", attempts=1) is False
        assert capsys.readouterr().err.startswith("shared cache not flushed: ")
        naps.clear()
        assert usercache.flush(f"unix://{folder}/no-redis.sock") is False
        assert naps == [0.5] * 20, "by default 20 attempts half a second apart: 10 s for Redis to come back"
    finally:
        shutil.rmtree(folder)


#
# the cache's own mechanics: generations' lifetimes, failures, the retrying thread
#


def test_generation_lifetimes(cache):
    """The users' generation never expires (its loss would be a flush of every entry); an
    object's expires after GENERATION_TTL (a missing one is only a miss), made or bumped."""
    usercache.user_row("susie", Loads(ROW))
    usercache.permission("owned", 7, "susie", Loads(True))
    for _ in range(2):
        assert cache.redis.ttl("kiva:generation:users") == -1
        assert 0 < cache.redis.ttl("kiva:generation:owned:7") <= usercache.GENERATION_TTL
        cache.bump({"generation:users", "generation:owned:7"})
        assert not cache.pending and cache.retrier is None, "Redis up: the bump is made at once"


def test_a_generation_made_meanwhile_wins(cache):
    """Two processes missing the same generation: the first one's stays, both use it."""
    cache.redis.set("kiva:generation:users", b"theirs")
    assert cache.generations(["kiva:generation:users"], [None]) == [b"theirs"]
    assert cache.redis.get("kiva:generation:users") == b"theirs"
    cache.redis.delete("kiva:generation:users")
    [made] = cache.generations(["kiva:generation:users"], [None])
    assert cache.redis.get("kiva:generation:users") == made != b"theirs"


def test_a_failure_pauses_the_cache(cache, monkeypatch, caplog):
    clock = Clock(1000.0)
    monkeypatch.setattr(usercache, "time", clock)
    assert cache.usable()
    cache.failed(redis.ConnectionError("refused"))
    [warning] = caplog.messages
    assert warning.startswith("redis unavailable, using the database: ") and "ConnectionError" in warning
    for elapsed, usable in [(0.0, False), (usercache.PAUSE - 0.01, False), (usercache.PAUSE, True)]:
        clock.now = 1000.0 + elapsed
        assert cache.usable() is usable, elapsed
    cache.failed(redis.ConnectionError("refused"), quiet=True)
    assert len(caplog.messages) == 1 and not cache.usable()
    # a bump not made yet: not usable, however long ago the failure
    clock.now += 2 * usercache.PAUSE
    assert cache.usable()
    cache.pending.add("generation:users")
    assert not cache.usable()


def test_entries_age_within_bounds(cache, caplog):
    gens = [b"g1"]
    entry = cache.seal("row:susie", ROW, gens, 1000.0)
    for now, found in [(1000.0 - usercache.MAX_SKEW, True), (1000.0 + usercache.MAX_AGE, True),
                       (999.0 - usercache.MAX_SKEW, False), (1001.0 + usercache.MAX_AGE, False)]:  # fmt: skip
        assert cache.open("row:susie", entry, gens, now) == ((True, ROW) if found else (False, None)), now
    assert not caplog.messages, "an old entry is a plain miss"
    assert cache.open("row:susie", entry.replace(b"susie", b"calvin"), gens, 1000.0) == (False, None)
    assert caplog.messages == ["row:susie: entry refused, not authenticated (forged or altered)"]
    unreadable = cache.mac("row:susie", b"[1, 2]") + b".[1, 2]"
    assert cache.open("row:susie", unreadable, gens, 1000.0) == (False, None)
    assert caplog.messages[1].startswith("row:susie: unreadable entry: TypeError(")


def test_bumps_pile_up_while_redis_is_away(cache, server, caplog):
    """Two bumps missed: both made once Redis is back, by one thread; two warnings (the
    request's attempt, the thread's first one), not one per attempt, and one line when
    the cache is trusted again."""
    caplog.set_level(logging.INFO, logger=usercache.log.name)
    proc, _ = server
    before = {g: cache.redis.get(f"kiva:{g}") for g in ("generation:users", "generation:owned:9")}
    proc.send_signal(signal.SIGSTOP)
    try:
        cache.bump({"generation:users"})
        cache.bump({"generation:owned:9"})
        assert cache.pending == {"generation:users", "generation:owned:9"}
        retrier = cache.retrier
        assert retrier is not None and retrier.daemon and retrier.name == "kiva-cache-bump"
        time.sleep(3 * usercache.TIMEOUT)  # several attempts meanwhile
    finally:
        proc.send_signal(signal.SIGCONT)
    retrier.join(5)
    assert not retrier.is_alive() and cache.retrier is None and not cache.pending
    for g, old in before.items():
        assert cache.redis.get(f"kiva:{g}") not in (None, old), g
    warnings = [m for m in caplog.messages if m.startswith("redis unavailable")]
    assert len(warnings) == 2 and all("TimeoutError" in m for m in warnings), caplog.messages
    done = [m for m in caplog.messages if m.startswith("redis: missed invalidations made (")]
    assert len(done) == 1 and done[0].endswith(" attempts), the cache trusted again"), caplog.messages


def test_bump_waits_in_no_request_during_a_pause(cache, monkeypatch):
    """After a failure, a bump is left to the retrying thread: a request never waits for
    a Redis that failed a moment ago. With Redis well, it is made in the request."""
    threads = []
    make_pending = cache.make_pending

    def spy(quiet: bool = False) -> bool:
        threads.append(threading.current_thread().name)
        return make_pending(quiet)

    monkeypatch.setattr(cache, "make_pending", spy)
    cache.bump({"generation:users"})
    assert threads == [threading.current_thread().name] and cache.retrier is None
    threads.clear()
    cache.failed(redis.ConnectionError("refused"), quiet=True)
    cache.bump({"generation:users"})
    retrier = cache.retrier
    if retrier is not None:
        retrier.join(5)
    assert threads == ["kiva-cache-bump"] and not cache.pending


def test_the_retrier_survives_the_unexpected(cache, monkeypatch, caplog):
    """An error of another kind in an attempt: logged, retried after RETRY, never a dead
    thread (the process would distrust its cache for ever)."""
    calls = []
    make_pending = cache.make_pending

    def once_broken(quiet: bool = False) -> bool:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return make_pending(quiet)

    monkeypatch.setattr(cache, "make_pending", once_broken)
    cache.pending.add("generation:users")
    cache.start_retrier()
    retrier = cache.retrier
    assert retrier is not None
    retrier.join(5)
    assert len(calls) == 2 and not cache.pending and cache.retrier is None
    assert calls[1] - calls[0] >= usercache.RETRY * 0.9, "a pause between two attempts"
    assert "redis: a bump failed unexpectedly, retrying" in caplog.messages


def test_permissions_cached_per_object_and_user(cache, api):
    """The app with the shared cache on: an object permission cached for one user and one
    object answers for that pair only (its key names both), the second time from Redis."""
    users = [register(api, "perm", "password-of-perm") for _ in range(2)]
    auths = [basic(login, password) for login, password, _ in users]
    oids = [api.post("/object", 201, login=None, headers=h, data={"object": unique("perm")}).json["oid"] for h in auths]
    for _ in range(2):
        for i, headers in enumerate(auths):
            for j, oid in enumerate(oids):
                api.get(f"/object/{oid}", 200 if i == j else 403, login=None, headers=headers)
    for (login, _, _), oid in zip(users, oids, strict=True):
        assert cache.redis.exists(f"kiva:perm:owned:{oid}:{login}")
    for headers, oid in zip(auths, oids, strict=True):
        api.delete(f"/object/{oid}", 204, login=None, headers=headers)
    for _, _, uid in users:
        api.delete(f"/users/{uid}", 204, login="calvin")


def test_flush_of_a_frozen_redis_ends(cache, server, monkeypatch, capsys):
    """A Redis that accepts but never answers: each attempt gives up after its 1 s timeout."""
    monkeypatch.setattr(usercache.time, "sleep", lambda _: None)
    proc, url = server
    proc.send_signal(signal.SIGSTOP)
    try:
        done: list[bool] = []
        flushing = threading.Thread(target=lambda: done.append(usercache.flush(url, attempts=2)), daemon=True)
        started = time.monotonic()
        flushing.start()
        flushing.join(10)
        took = time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGCONT)
    assert done == [False] and 1.9 < took < 3.5, (done, took)
    assert "TimeoutError" in capsys.readouterr().err


def test_entry_format_stays_readable_across_versions():
    """During a rolling upgrade old and new nodes share the entries: the key derivation
    and the seal are a fixed format (a known answer, computed once by hand with hmac)."""
    import hashlib
    import hmac

    c = usercache.Cache("redis://127.0.0.1:9/0", SECRET)  # no connection made
    key = hmac.new(SECRET.encode(), b"kiva shared cache entries, v1", hashlib.sha256).digest()
    assert c.key == key
    payload = b'{"gens": ["g1"], "at": 1.5, "value": 3}'
    mac = hmac.new(key, b"row:susie\n" + payload, hashlib.sha256).hexdigest().encode()
    assert c.seal("row:susie", 3, [b"g1"], 1.5) == mac + b"." + payload


def test_redis_unreachable_answered_at_once_by_the_database(tmp_path, caplog):
    """No Redis behind the socket: the database answers at once, the cache pauses, the
    warning names the failure."""
    c = usercache.Cache(f"unix://{tmp_path}/nobody-listens.sock", SECRET)
    load = Loads(ROW)
    began = time.monotonic()
    with pytest.MonkeyPatch.context() as m, caplog.at_level(logging.WARNING, logger=usercache.log.name):
        m.setattr(usercache, "cache", c)
        assert usercache.user_row("susie", load) == ROW
    assert time.monotonic() - began < 0.2 and load.count == 1
    assert not c.usable()
    [warning] = caplog.messages
    assert warning.startswith("redis unavailable, using the database: ") and "ConnectionError" in warning, warning


def test_user_permissions_depend_on_the_users_generation_only(cache):
    """A permission on a user record changes with the users (generation:users, bumped by
    every users write): no generation of its own is made for it, unlike an object's."""
    usercache.permission("user", 3, "susie", Loads(True))
    usercache.permission("owned", 5, "susie", Loads(True))
    keys = sorted(k.decode() for k in cache.redis.keys("kiva:generation:*"))
    assert keys == ["kiva:generation:owned:5", "kiva:generation:users"]


def test_user_permissions_cached_per_record_and_user(cache, api):
    """The same for a user record (GET /users/<uid>: its owner, or an administrator): the
    key names the record and the asking user, the second time from Redis."""
    users = [register(api, "uperm", "password-of-uperm") for _ in range(2)]
    auths = [basic(login, password) for login, password, _ in users]
    for _ in range(2):
        for i, headers in enumerate(auths):
            for j, (_, _, uid) in enumerate(users):
                api.get(f"/users/{uid}", 200 if i == j else 403, login=None, headers=headers)
    for login, _, uid in users:
        assert cache.redis.exists(f"kiva:perm:user:{uid}:{login}")
    for _, _, uid in users:
        api.delete(f"/users/{uid}", 204, login="calvin")


def test_users_write_bumps_the_users_generation(cache, api):
    """Through the app with the shared cache on: a users write gives the users' generation
    a new value, a read does not."""
    usercache.user_row("susie", Loads(ROW))  # an entry, hence its generation
    before = cache.redis.get("kiva:generation:users")
    assert before is not None
    api.get("/whoami", 200, login="calvin")
    assert cache.redis.get("kiva:generation:users") == before
    api.patch("/users/3", 204, login="calvin", data={"isadmin": False})
    assert cache.redis.get("kiva:generation:users") not in (before, None)
