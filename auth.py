"""Authentication and authorization hooks for FlaskSimpleAuth, each backed by one query.

Freshness over caching: FlaskSimpleAuth's own caches are in-process and would
keep accepting an old password, an old group or a deleted user's token on the
other server processes. So every authenticated request reads its user row once
(one indexed query, memoised for the request in flask.g) and derives the password
hash, the ADMIN group and the "user still exists" check from it. Only pure
computations are cached: the bcrypt verification of a (password, current hash)
pair, which a password change invalidates by changing the hash.
"""

import collections
import hashlib
import hmac
import os
import threading

import flask
import FlaskSimpleAuth as fsa

import throttle
import usercache
from database import db, json_error

# bcrypt only reads the first 72 bytes: longer passwords are refused, not truncated
PASSWORD_MAX_BYTES = 72

# the least bcrypt cost production accepts (about 0.25 s a hash on a 2020s core)
PRODUCTION_ROUNDS = 12

# the hash of a random password nobody knows, set by init_app at the configured cost
UNKNOWN_USER_HASH = ""

# FlaskSimpleAuth's "param" scheme also reads the query string, which access logs keep
CREDENTIAL_PARAMS = {"USER", "PASS"}


def lookup(login: str) -> dict:
    """What the database knows of a login, read once per request.

    uid, login, pword, isadmin (all None for an unknown login), and the failed
    password checks of the throttling window (failures, since).
    """
    memo = flask.g.setdefault("kiva_users", {})
    if login not in memo:
        memo[login] = usercache.user(login, lambda: db.get_user_login(login=login))
    return memo[login]


def user_row(login: str) -> dict | None:
    """The user's row, or None if there is no such user (any more)."""
    row = lookup(login)
    return row if row["uid"] is not None else None


def get_user_pass(login: str) -> str:
    """The password hash FlaskSimpleAuth checks the given password against.

    A throttled login is refused before bcrypt runs (429). An unknown login gets a
    hash no password matches: bcrypt runs all the same, and the 401 ("invalid
    password for …") does not tell whether the login exists.
    """
    row = lookup(login)
    throttle.check(login, row["failures"], row["since"])
    return row["pword"] if row["uid"] is not None else UNKNOWN_USER_HASH


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


def memoise_verification(verify, size: int = 4096):
    """Cache successful password checks by (keyed digest of the password, current hash).

    A changed password has a new hash (new salt): the entry no longer matches and
    the old password goes to bcrypt again, which refuses it. Failures are never
    cached. The key is an HMAC under a per-process random key: the cache holds no
    password, nor any digest that could be brute-forced offline.
    """
    secret = os.urandom(32)
    verified: collections.OrderedDict[tuple[bytes, str], None] = collections.OrderedDict()
    lock = threading.Lock()

    def check(password: str, ref: str) -> bool:
        key = (hmac.new(secret, password.encode(), hashlib.sha256).digest(), ref)
        with lock:
            if key in verified:
                verified.move_to_end(key)
                return True
        if not verify(password, ref):
            return False
        with lock:
            verified[key] = None
            if len(verified) > size:
                verified.popitem(last=False)
        return True

    return check


def token_of_existing_user(token_auth):
    """Wrap token authentication: a token is refused once its user is deleted."""

    def authenticate(app, req) -> str | None:
        login = token_auth(app, req)
        if login and not user_row(login):
            raise fsa.ErrorResponse("invalid token", 401)
        return login

    return authenticate


def no_credentials_in_query_string():
    """Refuse USER/PASS in a query string: they would end up in access logs."""
    if CREDENTIAL_PARAMS & flask.request.args.keys():
        return json_error("credentials must be sent in the request body, not in the URL", 400)
    return None


def init_app(app: fsa.Flask):
    """Register the hooks; in production, refuse to run without a secret or with weak hashes."""
    global UNKNOWN_USER_HASH
    if app.config.get("KIVA_PRODUCTION"):
        if not app.config.get("FSA_TOKEN_SECRET"):
            raise RuntimeError("APP_SECRET must be set in production: tokens would not verify")
        if app.config.get("FSA_PASSWORD_OPTS", {}).get("rounds", 0) < PRODUCTION_ROUNDS:
            raise RuntimeError(f"bcrypt cost must be at least {PRODUCTION_ROUNDS} in production")
    app.before_request(no_credentials_in_query_string)
    app.get_user_pass(get_user_pass)
    app.group_check("ADMIN", is_admin)
    app.password_quality(password_quality)
    app.object_perms("owned", can_access_owned)
    app.object_perms("user", can_access_user)
    # FlaskSimpleAuth has no public hook for these two: wrap its own functions
    fsa_auth = app._fsa  # type: ignore[attr-defined]
    fsa_auth._initialize()
    token_auth = fsa_auth._am._authentication["token"]
    app.authentication("token", token_of_existing_user(token_auth))
    provider = fsa_auth._am._pm._pass_provider
    provider.verify = memoise_verification(provider.verify)
    UNKNOWN_USER_HASH = app.hash_password(os.urandom(16).hex(), check=False)
