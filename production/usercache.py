"""The shared cache of authentication look-ups for several servers: Redis (KIVA_REDIS).

Off by default: without KIVA_REDIS every call loads from the database, as before.
With it, the user rows behind tokens and groups (auth.user_row: uid, login,
isadmin, pwchanged; never a password hash: with Redis, password checks and their
throttling counts always read the database) and the object-permission answers are kept in
Redis for all the processes of all the nodes. Redis is a trust boundary: anything
read from it is input (docs/shared-cache.md has the design and its bounds).

- Authenticated entries: each is `<HMAC>.<JSON>`, the HMAC-SHA256 of the key and
  the JSON under a key derived from APP_SECRET. A forged, altered or moved entry
  (another key's) is a miss: the database answers, and the entry is replaced.
- Versioned keys, not deletions: an entry holds the generations it depends on
  (`generation:users`: every user; `generation:owned:<oid>`: an object), as read in the same MGET
  *before* its value was loaded. A generation is a random value, never a counter: a
  missing one (evicted by allkeys-lru, a restarted Redis, a flush) is a miss, and is
  created anew before the load, so that no old entry can ever match again.
- Bumps after the commit, on real changes only: a write of the users blueprint to
  an existing user (not /login, /register, POST /users: a new user has no entry), a
  write to an object, and also such a write whose outcome is unknown (a 5xx: the
  commit may have happened). `python -m production.usercache flush` (a restore, DB_INIT) bumps
  `generation:users`, on which every entry depends.
- A failed bump is not lost: this process stops using the cache (the database
  answers) and a thread of its own retries (every RETRY seconds, or at once after a
  timeout) until it lands.
- Every entry also carries the time its generations were read, under its HMAC:
  it is refused MAX_AGE seconds later, whatever Redis says, which bounds what a
  writer dying before its bump landed could leave (and any replay).
- Redis unreachable or slow (TIMEOUT): the database answers, and this process
  stops trying Redis for PAUSE seconds.

Only positive answers are cached: an unknown login, a missing object (None) are
read from the database each time, so creating them needs no invalidation.
"""

import datetime
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
import threading
import time
import typing
from collections.abc import Callable
from typing import Any

import flask
import redis

from production import context, localcache, metrics
from production.context import READ_ONLY_METHODS

log = logging.getLogger("kiva.usercache")

PREFIX = "kiva:"
MAX_AGE = 30.0  # seconds an entry is trusted after its generations were read (docs/shared-cache.md)
MAX_SKEW = 1.0  # seconds an entry may seem to come from the future (the nodes' clocks differ)
TTL = int(MAX_AGE) + 1  # Redis forgets an entry once no node would trust it
GENERATION_TTL = 3600  # per-object generations do not pile up: a missing one is a miss anyway
TIMEOUT = 0.25  # seconds: a slower Redis counts as down, the database answers
PAUSE = 1.0  # seconds without Redis after a failure
RETRY = 0.1  # seconds between two attempts of a bump that failed
USERS_GENERATION = "generation:users"
# the key of the entries' HMACs: derived from APP_SECRET, for this use only
KEY_LABEL = b"kiva shared cache entries, v1"
# routes of the users blueprint that change no existing user (a new user has no entry)
NO_USER_CHANGE = {"users.post_register", "users.get_login", "users.post_users"}
NEW_USER_ROUTES = {"users.post_register", "users.post_users"}  # …but these create one
NEW_USERS = "new users"  # not a generation of Redis: the local cache's login rows


def new_generation() -> str:
    return secrets.token_hex(8)


class Cache:
    """A Redis connection pool, the key of the entries, this process's view of Redis."""

    def __init__(self, url: str, secret: str):
        # no retries inside redis-py: a failure falls back to the database at once
        self.redis = redis.Redis.from_url(
            url,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
            retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        )
        self.key = hmac.new(secret.encode(), KEY_LABEL, hashlib.sha256).digest()
        self.lock = threading.Lock()
        self.retry_at = 0.0  # time.monotonic() before which Redis is not tried
        self.pending: set[str] = set()  # bumps not made yet: the cache is not trusted meanwhile
        self.retrier: threading.Thread | None = None

    def failed(self, e: Exception, quiet: bool = False):
        if not quiet:
            log.warning(f"redis unavailable, using the database: {e!r}")
        with self.lock:
            self.retry_at = time.monotonic() + PAUSE

    def usable(self) -> bool:
        """Is the cache to be used now? Not while Redis failed lately, nor while an
        invalidation of this process has not reached it."""
        with self.lock:
            return not self.pending and time.monotonic() >= self.retry_at

    def mac(self, key: str, payload: bytes) -> bytes:
        return hmac.new(self.key, key.encode() + b"\n" + payload, hashlib.sha256).hexdigest().encode()

    def seal(self, key: str, value: Any, gens: list[bytes], as_of: float) -> bytes:
        payload = encode({"gens": [g.decode() for g in gens], "at": as_of, "value": value}).encode()
        return self.mac(key, payload) + b"." + payload

    def open(self, key: str, entry: bytes, gens: list[bytes], now: float) -> tuple[bool, Any]:
        """(True, value) for a genuine entry of this key, under these generations, young enough."""
        mac, dot, payload = entry.partition(b".")
        if not dot or not hmac.compare_digest(mac, self.mac(key, payload)):
            log.warning(f"{key}: entry refused, not authenticated (forged or altered)")
            return False, None
        try:
            stored = decode(payload)
            fresh = -MAX_SKEW <= now - stored["at"] <= MAX_AGE
            if fresh and stored["gens"] == [g.decode() for g in gens]:
                return True, stored["value"]
        except (ValueError, KeyError, TypeError) as e:  # an older format: a miss
            log.warning(f"{key}: unreadable entry: {e!r}")
        return False, None

    def generations(self, names: list[str], gens: list[bytes | None]) -> list[bytes]:
        """The generations read, the missing ones created (or another process's, if it
        created them meanwhile): before the load, like the ones read."""
        missing = [name for name, gen in zip(names, gens, strict=True) if gen is None]
        created = {name: new_generation().encode() for name in missing}
        with self.redis.pipeline(transaction=False) as pipe:
            for name in missing:
                ex = None if name == PREFIX + USERS_GENERATION else GENERATION_TTL
                pipe.set(name, created[name], nx=True, get=True, ex=ex)
            found = dict(zip(missing, pipe.execute(), strict=True))
        return [gen if gen is not None else found[name] or created[name] for name, gen in zip(names, gens, strict=True)]

    def bump(self, generations: set[str]):
        """Give these generations new values; kept and retried until done if Redis fails."""
        if not generations:
            return
        with self.lock:
            self.pending |= generations
            wait = self.retrier is not None or time.monotonic() < self.retry_at
        if wait or not self.make_pending():
            self.start_retrier()

    def make_pending(self, quiet: bool = False) -> bool:
        """One attempt at the pending bumps; whether none is left."""
        with self.lock:
            gens = set(self.pending)
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for gen in sorted(gens):
                    pipe.set(PREFIX + gen, new_generation(), ex=None if gen == USERS_GENERATION else GENERATION_TTL)
                pipe.execute()
        except redis.RedisError as e:
            self.failed(e, quiet)
            return False
        with self.lock:
            self.pending -= gens
            self.retry_at = 0.0  # Redis answered: no need to wait for PAUSE
            return not self.pending

    def start_retrier(self):
        with self.lock:
            if self.retrier is not None:
                return
            self.retrier = threading.Thread(target=self.retry, name="kiva-cache-bump", daemon=True)
        self.retrier.start()

    def retry(self):
        """The retrying thread: ends once nothing is pending (checked under the lock)."""
        attempts = 0
        while True:
            attempts += 1
            started = time.monotonic()
            try:
                done = self.make_pending(quiet=attempts > 1)
            except Exception:  # never a dead thread leaving the process without its cache
                log.exception("redis: a bump failed unexpectedly, retrying")
                done = False
            if done:
                with self.lock:
                    if not self.pending:
                        self.retrier = None
                        log.info(f"redis: missed invalidations made ({attempts} attempts), the cache trusted again")
                        return
            else:  # at once after a timeout: an attempt is always on its way to a frozen Redis
                time.sleep(max(0.0, RETRY - (time.monotonic() - started)))


cache: Cache | None = None
local: localcache.LocalCache | None = None  # one host, no Redis: KIVA_LOCAL_CACHE (localcache.py)


def encode(value: Any) -> str:
    def default(o):
        if isinstance(o, datetime.datetime):
            return {"$datetime": o.isoformat()}
        raise TypeError(f"not cacheable: {type(o).__name__}")

    return json.dumps(value, default=default)


def decode(text: bytes | str) -> Any:
    def hook(d: dict):
        return datetime.datetime.fromisoformat(d["$datetime"]) if "$datetime" in d else d

    return json.loads(text, object_hook=hook)


def cached(key: str, generations: list[str], load: Callable[[], Any], keep: Callable[[Any], bool]) -> Any:
    """The value of key if a genuine entry under the current generations, else load()
    (stored if keep)."""
    if cache is None or not cache.usable():
        return load()
    names = [PREFIX + g for g in generations]
    try:
        *gens, entry = typing.cast(list[bytes | None], cache.redis.mget(names + [PREFIX + key]))
        as_of = time.time()  # the generations' time: the load comes after it
        if entry is not None and None not in gens:
            found, value = cache.open(key, entry, typing.cast(list[bytes], gens), as_of)
            if found:
                return value
        current = cache.generations(names, gens) if None in gens else typing.cast(list[bytes], gens)
    except redis.RedisError as e:
        cache.failed(e)
        return load()
    value = load()
    if keep(value):
        try:
            cache.redis.set(PREFIX + key, cache.seal(key, value, current, as_of), ex=TTL)
        except redis.RedisError as e:
            cache.failed(e)
        except TypeError as e:  # a column type JSON cannot carry: not cached
            log.warning(f"{key}: {e}")
    return value


def user_row(login: str, load: Callable[[], dict | None]) -> dict | None:
    """auth.user_row's row of an existing login (tokens, groups), without its password
    hash, which never goes to Redis; a change to any user bumps USERS_GENERATION."""

    def without_hash() -> dict | None:
        row = load()
        return None if row is None else {k: v for k, v in row.items() if k != "pword"}

    if local is not None:  # one host: no password hash in its memory either
        return local.user_row(login, without_hash)
    return cached(f"row:{login}", [USERS_GENERATION], without_hash, lambda r: r is not None)


def login_row(login: str, client: str, load: Callable[[], dict], keep: Callable[[dict], dict | None]) -> dict:
    """What a password check reads (auth.lookup): on one host, from this process's memory
    while no user and no throttling count changed (localcache.py), keep(row) being what may
    be kept of it; otherwise, Redis or not, from the database (Redis holds no hash nor count)."""
    if local is not None:
        return local.login_row(login, client, load, keep)
    return load()


def permission(kind: str, ident: int, login: str, load: Callable[[], bool | None]) -> bool | None:
    """An object-permission answer (True, False; None for no such object, not cached).
    A user's record changes with the users (generation:users), an object with itself."""
    generations = [USERS_GENERATION] if kind == "user" else [USERS_GENERATION, f"generation:{kind}:{ident}"]
    return cached(f"perm:{kind}:{ident}:{login}", generations, load, lambda v: v is not None)


def changed_generations(res: flask.Response, new_users: bool = False) -> set[str]:
    """What this request's writes invalidate, from its route, method and status: a
    success, or a server error (the commit may have happened), of a write that can
    change an existing user or object; a 4xx was rolled back. With `new_users` (the local
    cache's login rows, unknown logins' included), NEW_USERS for a write that may have
    created a user."""
    request = context.request()  # not the proxy: 1.5 µs a read (bench/RESULTS.md)
    if request.method in READ_ONLY_METHODS or 400 <= res.status_code < 500:
        return set()
    view_args = request.view_args or {}
    if request.blueprint == "users":
        if request.endpoint not in NO_USER_CHANGE:
            return {USERS_GENERATION}
        return {NEW_USERS} if new_users and request.endpoint in NEW_USER_ROUTES else set()
    if request.blueprint == "owned" and "oid" in view_args:
        return {f"generation:owned:{view_args['oid']}"}
    return set()


def invalidate(res: flask.Response) -> flask.Response:
    """After the transaction's end: bump the generations of what the request changed."""
    if cache is not None:
        cache.bump(changed_generations(res))
    elif local is not None:  # before the answer leaves: the next request of any process sees it
        changed = changed_generations(res, new_users=True)
        if USERS_GENERATION in changed:
            local.bump(localcache.USERS)  # the login rows depend on it too
        elif NEW_USERS in changed:
            local.bump(localcache.CHECKS)  # an unknown login's row kept for password checks
    return res


def counts_changed():
    """throttle.count wrote throttling counts (committed or not): on this host, the login
    rows kept for password checks are read again, in any process (Redis keeps no count)."""
    if local is not None:
        local.bump(localcache.CHECKS)


def init_app(app: flask.Flask):  # pragma: no mutate block (set-up)
    """Connect to KIVA_REDIS if set (app.py runs `invalidate` after the commits)."""
    global cache, local
    local = None
    url = app.config.get("KIVA_REDIS")
    if not url:
        if app.config.get("KIVA_LOCAL_CACHE"):
            path = localcache.generation_path(metrics.base_directory(), app.config["ANODB"]["conn"])
            local = localcache.LocalCache(path)
            log.info("local cache of the user rows: one host, generation in the private runtime folder")
        return
    # the servers' shared secret (APP_SECRET): without it no node could trust another's entries
    secret = app.config.get("FSA_TOKEN_SECRET")
    if not secret:
        raise RuntimeError("KIVA_REDIS needs APP_SECRET: the key of the shared cache's entries")
    cache = Cache(url, secret)
    log.info(f"shared cache: redis at {url.split('@')[-1]}")


def flush(url: str, attempts: int = 20) -> bool:
    """Invalidate every entry (after a restore, DB_INIT): `generation:users` anew, retried."""
    client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    for attempt in range(attempts):
        try:
            client.set(PREFIX + USERS_GENERATION, new_generation())
            return True
        except redis.RedisError as e:
            if attempt == attempts - 1:
                print(f"shared cache not flushed: {e!r}", file=sys.stderr)
            time.sleep(0.5)
    return False


if __name__ == "__main__":  # python -m production.usercache flush, with KIVA_REDIS in the environment
    if sys.argv[1:] != ["flush"]:
        sys.exit("usage: python -m production.usercache flush")
    if not os.environ.get("KIVA_REDIS"):
        print("no shared cache (KIVA_REDIS): nothing to flush")
    elif flush(os.environ["KIVA_REDIS"]):
        print("shared cache flushed: every entry invalidated")
    else:
        sys.exit(f"the shared cache could not be flushed: its entries may be trusted for {MAX_AGE:.0f} s more")
