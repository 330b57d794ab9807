"""The shared cache's rules (usercache.py), against a real Redis of the test's own.

A redis-server on a Unix socket in a temporary folder (no port to share with other
runs), with the app's module driven directly: what an entry must be to be trusted
(authenticated, under the current generations, young enough), what a missing
generation means, and what happens to an invalidation Redis could not take. Which
requests invalidate what is checked on the route table of the app. In-process only:
a live server's cache is checked by tests/test_cluster.py (make test-cluster).
"""

import datetime
import os
import shutil
import signal
import subprocess
import tempfile
import time

import flask
import pytest
import redis
from helpers import EXTERNAL

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


class Loads:
    """A loader counting its calls (each one a database read)."""

    def __init__(self, value):
        self.value, self.count = value, 0

    def __call__(self):
        self.count += 1
        return self.value


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
        naps.clear()
        assert usercache.flush(f"unix://{folder}/no-redis.sock") is False
        assert naps == [0.5] * 20, "by default 20 attempts half a second apart: 10 s for Redis to come back"
    finally:
        shutil.rmtree(folder)
