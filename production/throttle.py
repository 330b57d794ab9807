"""Login throttling that can neither be dodged nor abused: by login and client, and a
per-login budget whatever the number of clients, with device cookies for the owner.

Every failed password check counts, once for its login and once for its client within
a window (KIVA_THROTTLE_SECONDS, 300 s); the client is the connection's address (see
security.client_address), an IPv6 one by its /64 (client_key: whoever has one address
of a /64 usually has all 2^64 of them). It also counts, over a day-long window
(KIVA_THROTTLE_BUDGET_SECONDS), against the login's budget when the client sent no
device cookie of that login ('untrusted'), or against that device cookie ('device').
A password check is refused (429, Retry-After) before bcrypt runs when:

- the client failed KIVA_THROTTLE_ADDRESS_FAILURES (20) times: password spraying,
  random logins, CPU exhaustion — whatever the logins;
- the login failed KIVA_THROTTLE_FAILURES (5) times and this client failed too;
- with a device cookie of the login: that cookie failed KIVA_THROTTLE_DEVICE_FAILURES
  (5) times within its day (a stolen cookie gives few guesses);
- without one: the login failed KIVA_THROTTLE_LOGIN_BUDGET (50) times within its day
  from clients without one, whatever their addresses.

So the guesses against one login are bounded whatever the number of addresses: at most
the budget per day-long window from clients without a device cookie of it (at most twice
the budget in any 24 hours, as two windows may meet), plus those of the cookies of the
devices that logged in as it, which an attacker does not have (docs/authentication.md).
Nobody locks a user out for free: a throttled login still gets its password checked from
a client that has not failed, until the budget is spent; then from its owner's devices,
and a token obtained before still works. A success resets the login's count, unless the
login is throttled (else each of the victim's logins would give the attacker 5 more
tries), and the device's; never the budget (the owner's logins would refill it).

The device cookie (OWASP's "device cookie" pattern): after a successful password check
without a valid one, the answer sets `kiva_device`, the login and a random id signed with
the app's secret (itsdangerous), with its issue time: it is valid for KIVA_DEVICE_DAYS,
for that login only, and dies with the login's password (issued before the last change).

The counts live in the database (table AuthFailure), so every server process sees
them; they are kept for unknown logins too (a 429 must not tell whether a login
exists); windows that are over are deleted as new failures come, and only logins
that could exist are counted (auth.password_check): the table stays small. The
check costs no query without a device cookie: the counts come with the user row
(auth.lookup), which one host keeps in each process's memory until a count or a user
changes (usercache.counts_changed, docs/shared-cache.md); a device's count is one more
query, only when one is sent.
"""

import functools
import ipaddress
import json
import logging
import math
import os
import time
import typing

import flask
import FlaskSimpleAuth as fsa
import itsdangerous
import werkzeug.http

from production import context, usercache
from production.errors import DB_FAILURES
from production.security import client_address

log = logging.getLogger("kiva.throttle")

REFUSAL = "too many failed logins, retry later"
DEVICE_COOKIE = "kiva_device"

# the app's database (database.db), given by init_app: this layer is below database.py
db: typing.Any = None


def settings() -> tuple[int, int, float]:
    config = flask.current_app.config
    return (
        config["KIVA_THROTTLE_FAILURES"],
        config["KIVA_THROTTLE_ADDRESS_FAILURES"],
        config["KIVA_THROTTLE_SECONDS"],
    )


def client_key() -> str:
    """The client as the throttle counts it: its address, an IPv6 one by its /64."""
    return address_key(client_address())


@functools.lru_cache(maxsize=4096)  # a pure function of the text: parsed once per address
def address_key(address: str) -> str:
    """An address as the throttle counts it: an IPv6 one by its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # "-", or what a trusted proxy forwarded: counted as it is
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return address


def in_window(failures: int | None, since: float | None, now: float, window: float) -> tuple[int, float]:
    """The failures of a window still open, and when it closes."""
    if failures and since is not None and since + window > now:
        return failures, since + window
    return 0, now


def login_throttled(row: dict, now: float) -> bool:
    limit, _, window = settings()
    return in_window(row["login_failures"], row["login_since"], now, window)[0] >= limit


def serializer() -> itsdangerous.URLSafeTimedSerializer:
    """The device cookies' signer: made once per app (it is stateless, thread-safe)."""
    return context.app().extensions["kiva_device_serializer"]


def device(login: str, row: dict) -> str | None:
    """The id of the request's device cookie if it is a valid one of this login: signed
    by the app, not too old, issued after the login's last password change."""
    req = context.request()
    # most clients send no cookie at all: no parse (Werkzeug's cookies) for them
    cookie = req.cookies.get(DEVICE_COOKIE) if "HTTP_COOKIE" in req.environ else None
    if not cookie or row["uid"] is None:
        return None
    days = context.app().config["KIVA_DEVICE_DAYS"]
    try:
        value, issued = serializer().loads(cookie, max_age=days * 86400, return_timestamp=True)
    except itsdangerous.BadData:  # forged, altered, expired, not ours
        return None
    if not (isinstance(value, list) and len(value) == 2 and value[0] == login and isinstance(value[1], str)):
        return None
    return value[1] if issued.timestamp() >= row["pwchanged"] else None


def check(login: str, row: dict, device_id: str | None):
    """Before a password is checked: refuse it (429) if the throttle says so."""
    limit, address_limit, window = settings()
    config = flask.current_app.config
    day = config["KIVA_THROTTLE_BUDGET_SECONDS"]
    now = time.time()
    login_failures, login_end = in_window(row["login_failures"], row["login_since"], now, window)
    address_failures, address_end = in_window(row["address_failures"], row["address_since"], now, window)
    if address_failures >= address_limit:
        wait = address_end - now
    elif login_failures >= limit and address_failures:
        wait = min(login_end, address_end) - now
    elif device_id is not None:
        found = db.get_auth_failures(kind="device", name=device_id) or {"failures": None, "since": None}
        failures, end = in_window(found["failures"], found["since"], now, day)
        context.state().device_failures = failures
        if failures < config["KIVA_THROTTLE_DEVICE_FAILURES"]:
            return
        wait = end - now
    else:
        failures, end = in_window(row["untrusted_failures"], row["untrusted_since"], now, day)
        if failures < config["KIVA_THROTTLE_LOGIN_BUDGET"]:
            return
        wait = end - now
    raise fsa.ErrorResponse(REFUSAL, 429, headers={"Retry-After": str(max(math.ceil(wait), 1))})


def record(login: str, row: dict, ok: bool, device_id: str | None):
    """After a password check: remember its outcome, written once the request is over."""
    outcome = (login, ok, login_throttled(row, time.time()), row, device_id)
    state = context.state()
    if state.password_outcomes is None:
        state.password_outcomes = []
    state.password_outcomes.append(outcome)
    if ok and device_id is None:
        state.new_device = login


def count(res: flask.Response) -> flask.Response:
    """After the request's own transaction: count the failures, reset on a success."""
    state = context.state()
    outcomes = state.password_outcomes
    if not outcomes:
        return res
    _, _, window = settings()
    day = flask.current_app.config["KIVA_THROTTLE_BUDGET_SECONDS"]
    written = False  # a failure counted or a login's count reset, committed or not
    try:
        for login, ok, throttled, row, device_id in outcomes:
            now = time.time()
            if not ok:
                written = True
                # the budget of the login, or the device's own: each over its day
                daily = ("device", device_id) if device_id is not None else ("untrusted", login)
                for kind, name, start in (
                    ("login", login, now - window),
                    ("address", client_key(), now - window),
                    (*daily, now - day),
                ):
                    db.add_auth_failure(kind=kind, name=name, now=now, start=start)
                db.purge_auth_failures(start=now - window, day_start=now - day)
                continue
            if row["login_failures"] and not throttled:
                written = True
                db.del_auth_failures(kind="login", name=login)
            if device_id is not None and state.device_failures:
                db.del_auth_failures(kind="device", name=device_id)  # not in a login row: nothing kept
        db.commit()
    except DB_FAILURES as e:  # counting must not turn an answer into an error (nor a 500)
        log.error(f"login throttling: {e}")
        db.rollback()
    if written:  # before the answer leaves: the next check, in any process, reads them again
        usercache.counts_changed()
    return res


def device_cookie(res: flask.Response) -> flask.Response:
    """A successful password check without a device cookie of its login: set one."""
    login = context.state().new_device
    if login is None or res.status_code >= 400:
        return res
    value = device_value(login)
    res.headers.add("Set-Cookie", f"{DEVICE_COOKIE}={value}; {cookie_attributes(context.request().is_secure)}")
    return res


def device_value(login: str) -> str:
    """A new device cookie of this login, signed: what serializer().dumps([login, id])
    writes when zlib cannot shorten the payload (a short one never is), made without
    trying zlib first, which was half its cost (bench/RESULTS.md); loads() reads both."""
    payload = json.dumps([login, os.urandom(16).hex()], ensure_ascii=False, separators=(",", ":"))
    return serializer().make_signer().sign(itsdangerous.encoding.base64_encode(payload)).decode()


# (second, secure, lifetime in days) → the attributes of a device cookie set then: Expires
# moves each second, and each app has its lifetime (KIVA_DEVICE_DAYS)
_attributes: dict[tuple[int, bool, int], str] = {}


def cookie_attributes(secure: bool) -> str:
    """What follows `kiva_device=<value>; ` in its Set-Cookie header, as Werkzeug's
    set_cookie writes it (Expires, Max-Age, Secure over HTTPS, HttpOnly, Path, SameSite),
    made once a second: every cookieless client's successful check sets one, and the
    signed value, URL-safe base64 and dots, needs no quoting (tests/test_throttle.py)."""
    days = context.app().config["KIVA_DEVICE_DAYS"]
    key = (int(time.time()), secure, days)
    found = _attributes.get(key)
    if found is None:
        header = werkzeug.http.dump_cookie(
            DEVICE_COOKIE, "-", max_age=days * 86400, secure=secure, httponly=True, samesite="Strict"
        )
        found = header.partition("; ")[2]
        _attributes.clear()  # the last second's: a few entries live at most
        _attributes[key] = found
    return found


def init_app(app: flask.Flask, database: typing.Any):  # pragma: no mutate block (set-up)
    """The database (app.py runs `count` and `device_cookie` after the request's
    transaction); the settings are app.conf's."""
    global db
    db = database
    # the token secret (shared by every process in production); else one of this process
    secret = app.extensions["kiva_device_secret"] = app.config.get("FSA_TOKEN_SECRET") or os.urandom(32).hex()
    app.extensions["kiva_device_serializer"] = itsdangerous.URLSafeTimedSerializer(secret, salt="kiva-device")
