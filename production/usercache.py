"""The shared cache of authentication look-ups for several servers: Redis (KIVA_REDIS).

Off by default: without KIVA_REDIS every call loads from the database, as before.
With it, the user rows behind authentication and groups (auth.lookup with its
throttling counts, auth.user_row without them, for tokens) and the object-permission
answers are kept in Redis for all the processes of all the nodes, and stay fresh
through versioned keys rather than deletions:

- every entry is stored with the generations of what it depends on, read in the
  same MGET as the entry: `gen:users` (any change to users), `gen:login:<login>`
  and `gen:address:<address>` (the login-throttling counts of the login and of the
  client address, which come with the user row), `gen:owned:<oid>` (an object). An entry whose
  generations are not the current ones is a miss, so a bump invalidates at once
  everything that depends on it, on every node;
- a write bumps the generations it touches after its transaction is committed
  (an after-request hook): a request that read the old row before the commit
  stores it under the old generation, where nobody will read it. The writes are
  found by route, not by call site: any successful write of the `users` blueprint
  bumps `gen:users` (password change, demotion, deletion, replacement…), any
  successful write of the `owned` blueprint bumps its object's generation, and a
  refused request (a failed password check may be behind it), or one whose row had
  failures (a success resets them), bumps its logins' and address's generations;
- Redis unreachable (or too slow: 0.25 s): the request falls back to the database,
  and this process stops using Redis for a second at a time. An invalidation it
  could not make must not be lost: before using Redis again, the process bumps
  `gen:users`, on which every entry depends (the equivalent of a flush, atomic).
  Redis runs without persistence: a restarted one is empty. Entries also expire
  (TTL) to bound what a partition could leave: a node cut off from Redis while
  the others still reach it could not invalidate for them until it reconnects.

Only positive answers are cached: an unknown login, a missing object (None) are
read from the database each time, so creating them needs no invalidation.
"""

import datetime
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import flask
import redis

from production import context

log = logging.getLogger("kiva.usercache")

PREFIX = "kiva:"
TTL = 60  # seconds: the bound on staleness if an invalidation could not reach Redis
GENERATION_TTL = 2 * TTL  # longer than any entry that could depend on an older value
TIMEOUT = 0.25  # seconds: a slower Redis counts as down, the database answers
PAUSE = 1.0  # seconds without Redis after a failure
READ_ONLY_METHODS = {"GET", "HEAD", "OPTIONS"}
USERS_GENERATION = "gen:users"


class Cache:
    """A Redis connection pool and this process's view of Redis's health."""

    def __init__(self, url: str):
        # no retries inside redis-py: a failure falls back to the database at once
        self.redis = redis.Redis.from_url(
            url,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
            retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        )
        self.lock = threading.Lock()
        self.retry_at = 0.0  # time.monotonic() before which Redis is not tried
        self.missed = False  # an invalidation may have been missed: bump before any use

    def failed(self, e: Exception):
        log.warning(f"redis unavailable, using the database: {e!r}")
        with self.lock:
            self.missed = True
            self.retry_at = time.monotonic() + PAUSE

    def usable(self) -> bool:
        """Is Redis to be used now? Makes up for missed invalidations first."""
        with self.lock:
            if time.monotonic() < self.retry_at:
                return False
            missed = self.missed
        if missed:
            try:
                self.redis.incr(PREFIX + USERS_GENERATION)
            except redis.RedisError as e:
                self.failed(e)
                return False
            with self.lock:
                self.missed = False
            log.info("redis back: every cached entry invalidated (missed invalidations)")
        return True

    def bump(self, generations: set[str]):
        if not generations:
            return
        if not self.usable():  # the pending bump of gen:users will cover these
            with self.lock:
                self.missed = True
            return
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for gen in sorted(generations):
                    pipe.incr(PREFIX + gen)
                    if gen != USERS_GENERATION:
                        # per-login and per-object counters do not pile up: one back at 0
                        # after GENERATION_TTL finds no entry stored since its last bump
                        pipe.expire(PREFIX + gen, GENERATION_TTL)
                pipe.execute()
        except redis.RedisError as e:
            self.failed(e)


cache: Cache | None = None


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
    """The value of key if stored under the current generations, else load() (stored if keep)."""
    if cache is None or not cache.usable():
        return load()
    try:
        *gens, entry = cache.redis.mget([PREFIX + g for g in generations] + [PREFIX + key])
    except redis.RedisError as e:
        cache.failed(e)
        return load()
    current = [int(g or 0) for g in gens]
    if entry is not None:
        try:
            stored = decode(entry)
            if stored["gens"] == current:
                return stored["value"]
        except (ValueError, KeyError, TypeError) as e:  # not ours, or an older format: a miss
            log.warning(f"{key}: unreadable entry: {e!r}")
    value = load()
    if keep(value):
        try:
            cache.redis.set(PREFIX + key, encode({"gens": current, "value": value}), ex=TTL)
        except redis.RedisError as e:
            cache.failed(e)
        except TypeError as e:  # a column type JSON cannot carry: not cached
            log.warning(f"{key}: {e}")
    return value


def user(login: str, address: str, load: Callable[[], dict]) -> dict:
    """auth.lookup's user row of an existing login, with the throttling counts of the
    login and of the client address (the key has both; an address holds no "|")."""
    generations = [USERS_GENERATION, f"gen:login:{login}", f"gen:address:{address}"]
    row = cached(f"user:{login}|{address}", generations, load, lambda r: r is not None and r["uid"] is not None)
    g = context.g()
    g.setdefault("kiva_cache_addresses", set()).add(address)
    if row and row["uid"] is not None:  # unknown logins are never cached: nothing to invalidate
        g.setdefault("kiva_cache_logins", set()).add(login)
    if row and (row.get("login_failures") or row.get("address_failures")):  # a success resets them
        g.kiva_cache_failures = True
    return row


def user_row(login: str, load: Callable[[], dict | None]) -> dict | None:
    """auth.user_row's row of an existing login, without throttling counts (no address
    in the key); a change of any user bumps USERS_GENERATION (changed_generations)."""
    return cached(f"row:{login}", [USERS_GENERATION, f"gen:login:{login}"], load, lambda r: r is not None)


def permission(kind: str, ident: int, login: str, load: Callable[[], bool | None]) -> bool | None:
    """An object-permission answer (True, False; None for no such object, not cached)."""
    generations = [USERS_GENERATION, f"gen:{kind}:{ident}"]
    return cached(f"perm:{kind}:{ident}:{login}", generations, load, lambda v: v is not None)


def changed_generations(res: flask.Response) -> set[str]:
    """What this request's writes invalidate, from its route, method and status."""
    request = flask.request
    gens: set[str] = set()
    if res.status_code >= 400 or flask.g.get("kiva_cache_failures"):
        # a refusal may follow a failed password check (401, 429, or 403 for a wrong
        # `current` password), counted by throttle.py for the login and the address
        gens |= {f"gen:login:{login}" for login in flask.g.get("kiva_cache_logins", ())}
        gens |= {f"gen:address:{address}" for address in flask.g.get("kiva_cache_addresses", ())}
    if request.method not in READ_ONLY_METHODS and res.status_code < 400:
        view_args = request.view_args or {}
        if request.blueprint == "users":
            gens.add(USERS_GENERATION)
        elif request.blueprint == "owned" and "oid" in view_args:
            gens.add(f"gen:owned:{view_args['oid']}")
    return gens


def invalidate(res: flask.Response) -> flask.Response:
    """After the transaction's end: bump the generations of what the request changed."""
    if cache is not None:
        cache.bump(changed_generations(res))
    return res


def init_app(app: flask.Flask):
    """Connect to KIVA_REDIS if set (app.py runs `invalidate` after the commits)."""
    global cache
    url = app.config.get("KIVA_REDIS")
    if not url:
        return
    cache = Cache(url)
    log.info(f"shared cache: redis at {url.split('@')[-1]}")
