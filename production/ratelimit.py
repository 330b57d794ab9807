"""Per-client limits on password hashing (the `limits` library): 429 with Retry-After.

A bcrypt hash at the production cost takes about 0.25 s of a core. Every hash of a new
password (/register, /cmp/hash, POST and PUT /users, a PATCH /users/<uid> changing the
password) goes through auth.hash_password, which first counts it here: at most
KIVA_HASH_LIMIT (10 per minute by default, a moving window) per client, the
authenticated user, or for /register the client address (an IPv6 one by its /64, as
throttle.client_key counts it). The count is taken where the hash is made, not declared
route by route: a new route that hashes cannot forget it. These hashes also run in
slots of their own (auth.PasswordChecks), never in the logins' ones.

Failed logins are throttle.py's (counted by failures, per login and client, which no
library does); this module is plain rate limiting, the library's job. `limits` is the
library under Flask-Limiter, used directly: Flask-Limiter's route decorators hide the
view's parameters from FlaskSimpleAuth 36 (which reads `__code__.co_varnames` for object
permissions: "missing function parameter uid"), and its before_request hook would run on
every request for the few that hash.

Where the counts live: with KIVA_REDIS (several servers), in that Redis under
`kiva:limits:`, shared by every process of every node; while Redis fails (a timeout of
0.25 s), each process counts in its own memory, and tries Redis again a second later.
Without KIVA_REDIS, in each process's memory: under mod_wsgi with P daemon processes a
client gets up to P times the limit from one server (requests spread over the processes).
"""

import functools
import logging
import math
import threading
import time

import flask
import FlaskSimpleAuth as fsa
import limits
import limits.errors
import limits.storage
import limits.strategies
import redis

from production import context, throttle

log = logging.getLogger("kiva.ratelimit")

TOO_MANY = "too many password hashes, retry later"
# the routes that hash a new password, for the OpenAPI document's 429 (test_hashing.py checks it)
HASHING_ENDPOINTS = {
    "users.post_register",
    "users.post_users",
    "users.put_users_uid",
    "users.patch_users_uid",
    "compute.get_hash",
}
TIMEOUT = 0.25  # seconds: a slower Redis counts as down
PAUSE = 1.0  # seconds of per-process counting after a Redis failure


class HashLimit:
    """The counts of password hashes: in Redis if given (with a per-process fallback), else
    in this process's memory."""

    def __init__(self, redis_url: str | None):
        self.local = limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())
        self.shared = None
        if redis_url:
            storage = limits.storage.RedisStorage(
                redis_url,
                key_prefix="kiva:limits",  # Kiva's key space of the shared Redis
                wrap_exceptions=True,
                socket_timeout=TIMEOUT,
                socket_connect_timeout=TIMEOUT,
            )
            self.shared = limits.strategies.MovingWindowRateLimiter(storage)
        self.lock = threading.Lock()
        self.retry_at = 0.0  # time.monotonic() before which Redis is not tried

    def strategy(self) -> limits.strategies.MovingWindowRateLimiter:
        with self.lock:
            if self.shared is not None and time.monotonic() >= self.retry_at:
                return self.shared
        return self.local

    def hit(self, item: limits.RateLimitItem, key: str) -> float | None:
        """Count one hash of this client: None if within the limit, else the seconds to wait."""
        strategy = self.strategy()
        try:
            if strategy.hit(item, "hashing", key):
                return None
            reset, _ = strategy.get_window_stats(item, "hashing", key)
        except (limits.errors.StorageError, redis.RedisError) as e:
            log.warning(f"redis unavailable, counting hashes in this process: {e!r}")
            with self.lock:
                self.retry_at = time.monotonic() + PAUSE
            return self.hit(item, key) if strategy is not self.local else None
        return reset - time.time()


@functools.lru_cache(maxsize=8)
def parsed(limit: str) -> limits.RateLimitItem:
    return limits.parse(limit)


def client() -> str:
    """Whom the limit counts: the authenticated user, else the client (IPv6 by /64)."""
    user = context.app().current_user()  # type: ignore[attr-defined]
    return f"user:{user}" if user else f"client:{throttle.client_key()}"


def count_hash():
    """Before a new password is hashed: count it for its client, or refuse it (429)."""
    app = context.app()
    wait = app.extensions["kiva_hash_limit"].hit(parsed(app.config["KIVA_HASH_LIMIT"]), client())
    if wait is not None:
        raise fsa.ErrorResponse(TOO_MANY, 429, headers={"Retry-After": str(max(math.ceil(wait), 1))})


def init_app(app: flask.Flask):
    parsed(app.config["KIVA_HASH_LIMIT"])  # a malformed limit fails at start, not in a request
    app.extensions["kiva_hash_limit"] = HashLimit(app.config.get("KIVA_REDIS"))
