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
(one indexed query, memoised for the request in flask.g) and derives the password
hash, the ADMIN group, "this user still exists" and "this token is not older than
the password" from it. Only pure computations are cached: the bcrypt verification
of a (password, current hash) pair, which a password change invalidates.
"""

import base64
import collections
import datetime
import hashlib
import hmac
import logging
import os
import threading
import time
import typing

import flask
import FlaskSimpleAuth as fsa

from database import db
from model import Name
from production import context, fsa_private, throttle, usercache
from production.errors import body_params, json_error
from production.security import client_address

log = logging.getLogger("kiva.auth")

# the running app as FlaskSimpleAuth's Flask: its methods (current_user…) typed
current_app = typing.cast(fsa.Flask, flask.current_app)

# bcrypt only reads the first 72 bytes: longer passwords are refused, not truncated
PASSWORD_MAX_BYTES = 72

# the least bcrypt cost production accepts (about 0.25 s a hash on a 2020s core)
PRODUCTION_ROUNDS = 12

# FlaskSimpleAuth's "param" scheme: never in a query string (access logs keep it), and
# never beside an Authorization header (one kind of credentials per request)
CREDENTIAL_PARAMS = {"USER", "PASS"}

# the course's demo users and their public passwords (data.sql): a warning in production
DEMO_PASSWORDS = {"calvin": "hobbes", "hobbes": "susie", "susie": "derkins"}

INVALID_CREDENTIALS = "invalid user/password"
BUSY = "too many password checks at once, retry later"


class PasswordChecks:
    """The bcrypt work of this process: a bounded number at once, successes memoised.

    bcrypt is slow on purpose (about 0.25 s at cost 12): unbounded, a few clients
    sending random credentials would take every thread and core. Beyond `slots`
    checks at once, a request waits at most `wait` seconds (0 by default), then gets
    a 503.
    A successful check is cached by (keyed digest of the password, current hash): a
    changed password has a new hash (new salt), so the entry no longer matches.
    Failures are never cached. The key is an HMAC under a per-process random key:
    the cache holds no password, nor any digest that could be brute-forced offline.
    """

    def __init__(self, slots: int, wait: float, size: int = 4096):
        self.slots = threading.BoundedSemaphore(slots)
        self.wait = wait
        self.secret = os.urandom(32)
        self.verified: collections.OrderedDict[tuple[bytes, str], None] = collections.OrderedDict()
        self.size = size
        self.lock = threading.Lock()

    def bounded(self, work: typing.Callable[[], typing.Any]) -> typing.Any:
        """Run some bcrypt work in a free slot, or refuse with a 503 at once."""
        if not self.slots.acquire(timeout=self.wait):
            raise fsa.ErrorResponse(BUSY, 503, headers={"Retry-After": "1"})
        try:
            return work()
        finally:
            self.slots.release()

    def verify(self, app: fsa.Flask, password: str, ref: str) -> bool:
        key = (hmac.new(self.secret, password.encode(), hashlib.sha256).digest(), ref)
        with self.lock:
            if key in self.verified:
                self.verified.move_to_end(key)
                return True
        if not self.bounded(lambda: app.check_password(password, ref)):
            return False
        with self.lock:
            self.verified[key] = None
            if len(self.verified) > self.size:
                self.verified.popitem(last=False)
        return True


def checks() -> PasswordChecks:
    return flask.current_app.extensions["kiva_password_checks"]


def lookup(login: str) -> dict:
    """What the database knows of a login, read once per request.

    uid, login, pword, isadmin, pwchanged (all None for an unknown login), and the
    failed password checks of the throttling window for this login and this client.
    """
    memo = context.g().setdefault("kiva_logins", {})
    if login not in memo:
        # never from the shared cache: it holds no password hash (docs/shared-cache.md)
        memo[login] = db.get_user_login(login=login, address=client_address())
    return memo[login]


def user_row(login: str) -> dict | None:
    """The user's row, or None if there is no such user (any more): uid, login,
    isadmin, pwchanged (and pword, and the throttling counts, if lookup() read them
    already: a password check); read once per request."""
    g = context.g()
    checked = g.get("kiva_logins")
    if checked and login in checked:
        row = checked[login]
    else:
        memo = g.setdefault("kiva_users", {})
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
    if not possible_login(login) or len(password.encode()) > PASSWORD_MAX_BYTES:
        raise fsa.ErrorResponse(INVALID_CREDENTIALS, 401)  # nothing to count nor hash
    row = lookup(login)
    try:
        throttle.check(login, row)
        ok = checks().verify(current_app, password, row["pword"] or flask.current_app.config["KIVA_UNKNOWN_USER_HASH"])
    except fsa.ErrorResponse as e:
        # FlaskSimpleAuth answers the last scheme's error: make sure this one wins
        flask.g.kiva_auth_refusal = e
        raise
    ok = ok and row["uid"] is not None
    throttle.record(login, row, ok)
    return ok


def check_current_password(login: str, password: str) -> bool:
    """A password sent again to confirm a change: checked and counted like a login."""
    try:
        return password_check(login, password)
    except fsa.ErrorResponse as e:
        if e.status == 401:  # not a possible password
            return False
        raise


def hash_password(password: str, check: bool = True) -> str:
    """The password's bcrypt hash, in a bounded slot (a 400 if its quality is too low)."""
    return checks().bounded(lambda: current_app.hash_password(password, check=check))


def restore_refusal(res: flask.Response) -> flask.Response:
    """A throttled (429) or busy (503) password check, or a refused token, is the
    answer, not a later scheme's 401."""
    refusal = context.g().get("kiva_auth_refusal")
    if refusal is not None and res.status_code == 401:
        res = json_error(refusal.message, refusal.status)
        res.headers.update(refusal.headers or {})
    return res


def is_admin(login: str) -> bool:
    """Membership of the ADMIN group."""
    row = user_row(login)
    return bool(row and row["isadmin"])


def password_quality(password: str) -> bool:
    """Refuse what bcrypt cannot hash faithfully (FSA_PASSWORD_LENGTH sets the minimum)."""
    if len(password.encode()) > PASSWORD_MAX_BYTES:
        raise fsa.ErrorResponse(f"password longer than {PASSWORD_MAX_BYTES} bytes", 400)
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
    one second early: its format is realm:login:expiry:signature, expiry to the second.
    """
    # the fields by hand: strptime cost about 3 % of a token request's CPU (bench/RESULTS.md)
    e = token.split(":")[2]
    expiry = datetime.datetime(
        int(e[0:4]), int(e[4:6]), int(e[6:8]), int(e[8:10]), int(e[10:12]), int(e[12:14]), tzinfo=datetime.UTC
    )
    lifetime = datetime.timedelta(minutes=context.app().config["FSA_TOKEN_DELAY"])
    return (expiry - lifetime).timestamp()


def check_token(login: str | None, token: str) -> str:
    """A valid token dies with its user, and with the password it was obtained with.

    Its refusal is the answer, even when a later scheme fails too (FlaskSimpleAuth
    answers the last error): see restore_refusal.
    """
    row = user_row(login) if login else None
    if row is None or token_issued(token) < row["pwchanged"]:
        flask.g.kiva_auth_refusal = fsa.ErrorResponse("invalid token", 401)
        raise flask.g.kiva_auth_refusal
    return typing.cast(str, login)


def wait_for_a_new_token_second(login: str):
    """/login right after a password change: wait until a token's issue time, known to
    the second only, cannot be mistaken for one before the change (at most 1 s)."""
    row = user_row(login)
    if row is not None:
        time.sleep(max(row["pwchanged"] + 1.0 - time.time(), 0.0))


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(login, password) of an HTTP Basic Authorization header, None if malformed."""
    try:
        login, colon, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    return (login, password) if colon else None


def one_kind_of_credentials():
    """Before FlaskSimpleAuth: credentials in a URL, or of two kinds, or malformed → 400/401."""
    req = context.request()
    if CREDENTIAL_PARAMS & req.args.keys():
        return json_error("credentials must be sent in the request body, not in the URL", 400)
    header = req.environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    body = body_params()
    if body is not None and CREDENTIAL_PARAMS & body.keys():
        return json_error("one kind of credentials per request: Authorization header or USER/PASS", 400)
    if header.startswith("Basic ") and basic_credentials(header) is None:
        return json_error("malformed authorization header", 401)
    return None


def warn_about_demo_users(app: fsa.Flask):
    """In production, say loudly that a demo user still has its public password."""
    try:
        with app.test_request_context():
            for login, password in DEMO_PASSWORDS.items():
                row = lookup(login)  # with its hash, from the database
                # data.sql's hashes have cost 4: only those are checked, cheaply
                if row["pword"] and row["pword"].startswith("$2b$04$") and app.check_password(password, row["pword"]):
                    log.warning(f"demo user {login} has its public password: remove it or change it")
            db.rollback()
    except Exception as e:  # the database may be down at start: the app must still start
        log.warning(f"demo users not checked: {e}")


def init_app(app: fsa.Flask):
    """Register the hooks; in production, refuse to run without a secret or with weak hashes."""
    config = app.config
    if config.get("KIVA_PRODUCTION"):
        if not config.get("FSA_TOKEN_SECRET"):
            raise RuntimeError("APP_SECRET must be set in production: tokens would not verify")
        if config.get("FSA_PASSWORD_OPTS", {}).get("rounds", 0) < PRODUCTION_ROUNDS:
            raise RuntimeError(f"bcrypt cost must be at least {PRODUCTION_ROUNDS} in production")
    config.setdefault("KIVA_PASSWORD_SLOTS", 2)
    config.setdefault("KIVA_PASSWORD_WAIT", 0.0)
    app.extensions["kiva_password_checks"] = PasswordChecks(config["KIVA_PASSWORD_SLOTS"], config["KIVA_PASSWORD_WAIT"])
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
