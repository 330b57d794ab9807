"""Authentication and authorization hooks for FlaskSimpleAuth, each backed by one query.

Every password check of the app goes through `password_check`, FlaskSimpleAuth's
hook (Kiva sets no `get_user_pass`): Basic, USER/PASS and the `current` password of
a password change alike. There, in this order: a login that cannot exist or a
password bcrypt cannot hash is refused (no counting, no hashing), the throttle may
refuse (429), a bounded number of bcrypt checks run at once per process (503
beyond), and the outcome is recorded for the throttle.

Freshness over caching: FlaskSimpleAuth's own caches are in-process and would
keep accepting an old password, an old group or a deleted user's token on the
other server processes. So every authenticated request reads its user row once
(one indexed query, memoised for the request: context.RequestState) and derives the password
hash, the ADMIN group, "this user still exists" and "this token is not older than
the password" from it. Only pure computations are cached: the bcrypt verification
of a (password, current hash) pair, which a password change invalidates. On one host
(KIVA_LOCAL_CACHE), the rows themselves are kept in each process while the generations
the host's processes share say that nothing they hold changed: still exact across
processes, without a round trip (production/localcache.py, docs/shared-cache.md).
"""

import base64
import collections
import concurrent.futures
import contextvars
import datetime
import hashlib
import hmac
import logging
import os
import threading
import time
import typing
import weakref

import flask
import FlaskSimpleAuth as fsa

from database import db
from model import PASSWORD_MAX, Name
from production import context, fsa_private, ratelimit, throttle, usercache
from production.errors import json_error

log = logging.getLogger("kiva.auth")

# the running app as FlaskSimpleAuth's Flask: its methods (current_user…) typed
current_app = typing.cast(fsa.Flask, flask.current_app)


# the least bcrypt cost production accepts (about 0.25 s a hash on a 2020s core)
PRODUCTION_ROUNDS = 12

# FlaskSimpleAuth's "param" scheme: never in a query string (access logs keep it), and
# never beside an Authorization header (one kind of credentials per request)
CREDENTIAL_PARAMS = {"USER", "PASS"}

# the course's demo users and their public passwords (data.sql): a warning in production
DEMO_PASSWORDS = {"calvin": "hobbes", "hobbes": "susie", "susie": "derkins"}

INVALID_CREDENTIALS = "invalid user/password"
BUSY = "too many password checks at once, retry later"
# seconds a request waits for the same password check running for another one: a few
# checks at the production cost, on a loaded machine
SAME_CHECK_WAIT = 5.0
# the nice value of the threads hashing new passwords: a login beside them gets most of the CPU
HASH_NICE = 19


class PasswordChecks:
    """The bcrypt work of this process: a bounded number at once, successes memoised.

    bcrypt is slow on purpose (about 0.25 s at cost 12): unbounded, a few clients
    sending random credentials would take every thread and core. Beyond `slots`
    checks at once, a request waits at most `wait` seconds (0 by default), then gets
    a 503.
    Hashes of new passwords (/register, /cmp/hash, password changes) have slots of their
    own (`hash_slots`): they cannot take the logins' ones, whatever their number; and they
    run at the lowest CPU priority: a login competing with them for a core gets it.
    A successful check is cached by the keyed digests of (the password, the current hash):
    a changed password has a new hash (new salt), so the entry no longer matches.
    Failures are never cached. The key is an HMAC under a per-process random key:
    the cache holds no password nor hash, nor any digest that could be brute-forced offline.
    """

    def __init__(self, slots: int, hash_slots: int, wait: float, size: int = 4096):  # pragma: no mutate block (set-up)
        self.slot_count, self.hash_slot_count = slots, hash_slots
        self.wait = wait
        self.size = size
        self.start()
        # a process forked from this one (gunicorn --preload, mutmut's test runs) has none
        # of its threads: a hash given to the pool it inherits would wait for ever
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (checks := me()) is not None and checks.start())

    def start(self):  # pragma: no mutate block (set-up)
        """This process's slots, hashing threads, memo and its key: anew in a forked child."""
        self.slots = threading.BoundedSemaphore(self.slot_count)  # password checks (logins)
        self.hash_slots = threading.BoundedSemaphore(self.hash_slot_count)  # new hashes (/register…)
        # …computed by threads of a lower CPU priority: beside a hash, a login gets the core
        self.hashers = concurrent.futures.ThreadPoolExecutor(
            self.hash_slot_count, thread_name_prefix="kiva-hash", initializer=lower_priority
        )
        self.secret = os.urandom(32)
        self.verified: collections.OrderedDict[tuple[bytes, bytes], None] = collections.OrderedDict()
        self.running: dict[tuple[bytes, bytes], Running] = {}
        self.lock = threading.Lock()

    def bounded(
        self,
        work: typing.Callable[[], typing.Any],
        busy: typing.Any = BUSY,
        slots: threading.BoundedSemaphore | None = None,
    ) -> typing.Any:
        """Run some bcrypt work in a free slot (a login's by default), or refuse with a 503
        at once (with `busy` None: return None instead)."""
        slots = slots or self.slots
        if not slots.acquire(timeout=self.wait):
            if busy is None:
                return None
            raise fsa.ErrorResponse(BUSY, 503, headers={"Retry-After": "1"})
        try:
            return work()
        finally:
            slots.release()

    def hash(self, work: typing.Callable[[], str]) -> str:
        """A new password's hash: in a hashing slot, by a hashing thread (the request's
        context with it: FlaskSimpleAuth's hash reads the app), the request waiting."""
        request_context = contextvars.copy_context()
        return self.bounded(lambda: self.hashers.submit(request_context.run, work).result(), slots=self.hash_slots)

    def digest(self, text: str) -> bytes:
        """A keyed digest (this process's key): what the memo keeps of a password or a hash."""
        return hmac.new(self.secret, text.encode(), hashlib.sha256).digest()

    def remembered(self, password: str, ref_digest: bytes) -> bool:
        """Whether this password was verified against the hash of this digest (the memo)."""
        with self.lock:
            return self.hit((self.digest(password), ref_digest))

    def hit(self, key: tuple[bytes, bytes]) -> bool:
        """Whether the memo holds this (password, hash) pair, made its newest if so; under the lock."""
        if key in self.verified:
            self.verified.move_to_end(key)
            return True
        return False

    def verify(self, app: fsa.Flask, password: str, ref: str) -> bool:
        key = (self.digest(password), self.digest(ref))
        with self.lock:
            if self.hit(key):  # in the same hold of the lock as the look-up of a running check
                return True
            # the same check already running (a client's parallel requests with the same
            # credentials, each the first of this process): wait for its answer, in no slot,
            # rather than take one slot each and leave none to the other users' logins
            running = self.running.get(key)
            if running is None:
                self.running[key] = running = Running()
                mine = True
            else:
                mine = False
        if not mine:
            if running.done.wait(SAME_CHECK_WAIT) and running.ok is not None:
                return running.ok
            return self.verify_once(app, password, ref, key)  # it was refused (503): our own
        try:
            running.ok = self.verify_once(app, password, ref, key)
            return running.ok
        finally:
            with self.lock:
                del self.running[key]
            running.done.set()

    def verify_once(self, app: fsa.Flask, password: str, ref: str, key: tuple[bytes, bytes]) -> bool:
        if not self.bounded(lambda: app.check_password(password, ref)):
            return False
        with self.lock:
            self.verified[key] = None
            if len(self.verified) > self.size:
                self.verified.popitem(last=False)
        return True


def lower_priority():
    """A hashing thread's start: the lowest CPU priority (Linux nice is per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)
    except OSError as e:  # not Linux, or not allowed: hashes at the same priority
        log.warning(f"hashing threads at the usual priority: {e}")


class Running:
    """A password check under way, for the requests waiting for the same one."""

    def __init__(self):
        self.done = threading.Event()
        self.ok: bool | None = None  # None: refused (no slot), or not over


def checks() -> PasswordChecks:
    return flask.current_app.extensions["kiva_password_checks"]


def lookup(login: str, hashed: bool = False) -> dict:
    """What the database knows of a login, read for each of its password checks (one per
    request, two when a password-authenticated user confirms a change with its current
    password), kept for user_row (no second query).

    uid, login, isadmin, pwchanged (all None for an unknown login), the failed password
    checks of the throttling windows for this login and this client, and pword_digest
    (checks().digest of the hash, or of KIVA_UNKNOWN_USER_HASH); pword, the hash itself,
    when read from the database, which `hashed` asks for. On one host, the row comes from
    this process's memory while no user and no count changed (usercache.login_row), without
    its hash: a check already verified needs only the digest (PasswordChecks.remembered).
    """
    client = throttle.client_key()

    def load() -> dict:
        row = db.get_user_login(login=login, address=client)
        row["pword_digest"] = checks().digest(reference_hash(row))
        return row

    def without_hash(row: dict) -> dict | None:
        """What may be kept: no hash, and no row whose hash is due for a rehash."""
        if due_for_rehash(row):
            return None
        return {k: v for k, v in row.items() if k != "pword"}

    row = load() if hashed else usercache.login_row(login, client, load, without_hash)
    state = context.state()
    state.logins = (state.logins or {}) | {login: row}
    return row


def reference_hash(row: dict) -> str:
    """The hash a password is checked against: the login's, or for an unknown login one of
    a random password at the configured cost (the same time, the same refusal)."""
    return row["pword"] or flask.current_app.config["KIVA_UNKNOWN_USER_HASH"]


def user_row(login: str) -> dict | None:
    """The user's row, or None if there is no such user (any more): uid, login,
    isadmin, pwchanged (and pword, and the throttling counts, if lookup() read them
    already: a password check); read once per request."""
    state = context.state()
    checked = state.logins
    row: dict | None
    if checked and login in checked:
        row = checked[login]
    else:
        memo = state.users
        if memo is None:
            memo = state.users = {}
        if login not in memo:
            memo[login] = usercache.user_row(login, lambda: db.get_user(login=login))
        row = memo[login]
    return row if row is not None and row["uid"] is not None else None


def possible_login(login: str) -> bool:
    """A login /register could have accepted: anything else cannot exist."""
    try:
        Name(login)
    except ValueError:
        return False
    return True


def password_check(login: str, password: str) -> bool:
    """FlaskSimpleAuth's hook: is this the user's password? Every check counts."""
    if not possible_login(login) or len(password) > PASSWORD_MAX:
        raise fsa.ErrorResponse(INVALID_CREDENTIALS, 401)  # nothing to count nor hash
    row = lookup(login)
    device = throttle.device(login, row)  # a device cookie of this login: its owner's device
    try:
        throttle.check(login, row, device)
        ok = checks().remembered(bcrypt_input(password), row["pword_digest"])
        if not ok:  # bcrypt: the hash is needed
            if "pword" not in row:  # kept without it: read again (the counts are the same)
                row = lookup(login, hashed=True)
            ok = checks().verify(current_app, bcrypt_input(password), reference_hash(row))
    except fsa.ErrorResponse as e:
        # FlaskSimpleAuth answers the last scheme's error: make sure this one wins
        context.state().auth_refusal = e
        raise
    ok = ok and row["uid"] is not None
    throttle.record(login, row, ok, device)
    if ok and due_for_rehash(row):
        rehash(login, password, row)
    return ok


def due_for_rehash(row: dict) -> bool:
    """Whether the row's hash is cheaper than the configured cost (False for a row kept
    without its hash: lookup keeps none that is due)."""
    pword = row.get("pword")
    return pword is not None and hash_cost(pword) < current_app.config["FSA_PASSWORD_OPTS"]["rounds"]


def hash_cost(pword: str) -> int:
    """The cost of a bcrypt hash ($2b$12$…); a hash of another kind is left as it is."""
    return int(pword[4:6]) if pword.startswith("$2") and pword[4:6].isascii() and pword[4:6].isdigit() else 99


def rehash(login: str, password: str, row: dict):
    """A hash cheaper than the configured cost (demo data, pass2csv --rounds, a raised
    cost): stored again at the configured cost, with the password its owner just gave.
    Otherwise the owner's login answers faster than an unknown one (whose check uses the
    configured cost): timing would tell which logins exist. Only if a slot is free at once:
    a login never waits nor fails for it; the next one will do it."""
    pword = checks().bounded(lambda: current_app.hash_password(bcrypt_input(password), check=False), busy=None)
    if pword is not None and db.rehash_user(login=login, old=row["pword"], pword=pword):
        row["pword"] = pword  # this request's memo; other processes read the new row
        log.info(f"rehashed at the configured cost: {login!r}")


def check_current_password(login: str, password: str) -> bool:
    """A password sent again to confirm a change: checked and counted like a login."""
    try:
        return password_check(login, password)
    except fsa.ErrorResponse as e:
        if e.status == 401:  # not a possible password
            return False
        raise


def hash_password(password: str, check: bool = True) -> str:
    """The password's bcrypt hash (a 400 if its quality is too low): counted for its client
    first (429 beyond the limit, ratelimit.py), then in a bounded slot of the hashes, never
    one of the logins'."""
    ratelimit.count_hash()
    return checks().hash(lambda: current_app.hash_password(bcrypt_input(password), check=check))


# bcrypt reads the first 72 bytes of a password and ignores the rest
BCRYPT_BYTES = 72


def bcrypt_input(password: str) -> str:
    """What bcrypt hashes for a password: the password itself if it fits in bcrypt's 72
    bytes (every hash stored before, all of them made so, stays valid), else the base64 of
    its SHA-256 (44 bytes): 72 non-ASCII characters are up to 288 bytes in UTF-8, and two
    passwords sharing their first 72 bytes must not be one (passlib's bcrypt_sha256 idea)."""
    raw = password.encode()
    if len(raw) <= BCRYPT_BYTES:
        return password
    return base64.b64encode(hashlib.sha256(raw).digest()).decode()


def restore_refusal(res: flask.Response) -> flask.Response:
    """A throttled (429) or busy (503) password check, or a refused token, is the
    answer, not a later scheme's 401."""
    refusal = context.state().auth_refusal
    if refusal is not None and res.status_code == 401:
        res = json_error(refusal.message, refusal.status)
        res.headers.update(refusal.headers or {})
    return res


def is_admin(login: str) -> bool:
    """Membership of the ADMIN group."""
    row = user_row(login)
    return bool(row and row["isadmin"])


def password_quality(password: str) -> bool:
    """At most 72 characters (FSA_PASSWORD_LENGTH sets the minimum)."""
    if len(password) > PASSWORD_MAX:
        raise fsa.ErrorResponse(f"password longer than {PASSWORD_MAX} characters", 400)
    return True


def can_access_owned(login: str, oid: int, _mode) -> bool | None:
    """Object permission "owned": True for its owner, False for others, None if no such object."""

    def load() -> bool | None:
        res = db.can_access_owned(login=login, oid=oid)
        return bool(res["allowed"]) if res else None

    return usercache.permission("owned", oid, login, load)


def can_access_user(login: str, uid: int, _mode) -> bool | None:
    """Object permission "user": the user themself or an admin; None if no such user."""

    def load() -> bool | None:
        res = db.can_access_user(login=login, uid=uid)
        return bool(res["allowed"]) if res else None

    return usercache.permission("user", uid, login, load)


def token_issued(token: str) -> float:
    """When a valid FlaskSimpleAuth token was issued, in seconds since the epoch, at most
    one second early: its format is realm/<lifetime>m:login:expiry:signature, expiry to the
    second, and the lifetime is its own (app.conf's FSA_TOKEN_ISSUER), not the current one.
    """
    realm, _, e, _ = token.split(":")
    # the fields by hand: strptime cost about 3 % of a token request's CPU (bench/RESULTS.md)
    expiry = datetime.datetime(
        int(e[0:4]), int(e[4:6]), int(e[6:8]), int(e[8:10]), int(e[10:12]), int(e[12:14]), tzinfo=datetime.UTC
    )
    lifetime = datetime.timedelta(minutes=float(realm.rpartition("/")[2][:-1]))
    return (expiry - lifetime).timestamp()


def check_token(login: str | None, token: str) -> str:
    """A valid token dies with its user, and with the password it was obtained with.

    Its refusal is the answer, even when a later scheme fails too (FlaskSimpleAuth
    answers the last error): see restore_refusal.
    """
    row = user_row(login) if login else None
    if row is None or token_issued(token) < row["pwchanged"]:
        refusal = context.state().auth_refusal = fsa.ErrorResponse("invalid token", 401)
        raise refusal
    return typing.cast(str, login)


def wait_for_a_new_token_second(login: str):
    """/login right after a password change: wait until a token's issue time, known to
    the second only, cannot be mistaken for one before the change (at most 1 s)."""
    row = user_row(login)
    if row is not None:
        time.sleep(max(row["pwchanged"] + 1.0 - time.time(), 0.0))


def one_kind_of_credentials():
    """Before FlaskSimpleAuth: credentials in a URL, or of two kinds, or malformed → 400/401."""
    req = context.request()
    if CREDENTIAL_PARAMS & req.args.keys():
        return json_error("credentials must be sent in the request body, not in the URL", 400)
    header = req.environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    body = context.body_params()
    if body is not None and CREDENTIAL_PARAMS & body.keys():
        return json_error("one kind of credentials per request: Authorization header or USER/PASS", 400)
    if header.startswith("Basic ") and context.basic_credentials(header) is None:
        return json_error("malformed authorization header", 401)
    return None


def warn_about_demo_users(app: fsa.Flask):  # pragma: no mutate block (set-up)
    """In production, say loudly that a demo user still has its public password."""
    try:
        with app.test_request_context():
            for login, password in DEMO_PASSWORDS.items():
                row = lookup(login)  # with its hash, from the database
                # data.sql's hashes have cost 4: only those are checked, cheaply
                if row["pword"] and row["pword"].startswith("$2b$04$") and app.check_password(password, row["pword"]):
                    log.warning(f"demo user {login} has its public password: remove it or change it")
            db.rollback()
    # the database may be down at start: the app must still start (a process loading it
    # during an outage answers 503s). A failed connection comes as fsa.ErrorResponse (the
    # 503 of database.connect's hook), a BaseException that `except Exception` let through
    except (Exception, fsa.ErrorResponse) as e:
        log.warning(f"demo users not checked: {e}")


def init_app(app: fsa.Flask):  # pragma: no mutate block (set-up)
    """Register the hooks; in production, refuse to run without a secret or with weak hashes."""
    config = app.config
    if config.get("KIVA_PRODUCTION"):
        if not config.get("FSA_TOKEN_SECRET"):
            raise RuntimeError("APP_SECRET must be set in production: tokens would not verify")
        if config.get("FSA_PASSWORD_OPTS", {}).get("rounds", 0) < PRODUCTION_ROUNDS:
            raise RuntimeError(f"bcrypt cost must be at least {PRODUCTION_ROUNDS} in production")
    if config.get("FSA_TOKEN_ISSUER") != f"{config['FSA_TOKEN_DELAY']:g}m":
        # token_issued reads the lifetime from the token: it must be the one it was made with
        raise RuntimeError('FSA_TOKEN_ISSUER must be the token lifetime, f"{FSA_TOKEN_DELAY:g}m" (app.conf)')
    app.extensions["kiva_password_checks"] = PasswordChecks(
        config["KIVA_PASSWORD_SLOTS"], config["KIVA_HASH_SLOTS"], config["KIVA_PASSWORD_WAIT"]
    )
    app.password_check(password_check)
    app.group_check("ADMIN", is_admin)
    app.password_quality(password_quality)
    app.object_perms("owned", can_access_owned)
    app.object_perms("user", can_access_user)
    fsa_private.check_tokens(app, check_token)
    # the hash of a random password nobody knows: unknown logins cost a bcrypt check too,
    # so that their 401 comes as late as a wrong password's
    config["KIVA_UNKNOWN_USER_HASH"] = app.hash_password(os.urandom(16).hex(), check=False)
    if config.get("KIVA_PRODUCTION"):
        warn_about_demo_users(app)
