"""Login throttling, by login and by client address, that can neither be dodged nor abused.

Every failed password check counts, once for its login and once for the client
address (the connection's, see security.client_address), within a window
(KIVA_THROTTLE_SECONDS, 300 s). A password check is refused (429, Retry-After)
before bcrypt runs when:

- the address failed KIVA_THROTTLE_ADDRESS_FAILURES (20) times: password spraying,
  random logins, CPU exhaustion — whatever the logins;
- the login failed KIVA_THROTTLE_FAILURES (5) times and this address failed too.

So guessing one login's password gets 5 tries per window, plus one per fresh
address; and nobody can lock a user out for free: a throttled login still gets its
password checked from an address that has not failed, where the right one works.
A success resets the login's count, unless the login is throttled (else each of
the victim's logins would give the attacker 5 more tries).

The counts live in the database (table AuthFailure), so every server process sees
them; they are kept for unknown logins too (a 429 must not tell whether a login
exists); windows that are over are deleted as new failures come, and only logins
that could exist are counted (auth.password_check): the table stays small. The
check costs no query: the counts come with the user row (auth.lookup).
"""

import logging
import math
import time
import typing

import flask
import FlaskSimpleAuth as fsa

from production import context
from production.errors import DB_FAILURES
from production.security import client_address

log = logging.getLogger("kiva.throttle")

REFUSAL = "too many failed logins, retry later"

# the app's database (database.db), given by init_app: this layer is below database.py
db: typing.Any = None


def settings() -> tuple[int, int, float]:
    config = flask.current_app.config
    return (
        config["KIVA_THROTTLE_FAILURES"],
        config["KIVA_THROTTLE_ADDRESS_FAILURES"],
        config["KIVA_THROTTLE_SECONDS"],
    )


def in_window(failures: int | None, since: float | None, now: float, window: float) -> tuple[int, float]:
    """The failures of a window still open, and when it closes."""
    if failures and since is not None and since + window > now:
        return failures, since + window
    return 0, now


def login_throttled(row: dict, now: float) -> bool:
    limit, _, window = settings()
    return in_window(row["login_failures"], row["login_since"], now, window)[0] >= limit


def check(login: str, row: dict):
    """Before a password is checked: refuse it (429) if the throttle says so."""
    limit, address_limit, window = settings()
    now = time.time()
    login_failures, login_end = in_window(row["login_failures"], row["login_since"], now, window)
    address_failures, address_end = in_window(row["address_failures"], row["address_since"], now, window)
    if address_failures >= address_limit:
        wait = address_end - now
    elif login_failures >= limit and address_failures:
        wait = min(login_end, address_end) - now
    else:
        return
    raise fsa.ErrorResponse(REFUSAL, 429, headers={"Retry-After": str(max(math.ceil(wait), 1))})


def record(login: str, row: dict, ok: bool):
    """After a password check: remember its outcome, written once the request is over."""
    flask.g.setdefault("kiva_password_checks", []).append((login, ok, login_throttled(row, time.time()), row))


def count(res: flask.Response) -> flask.Response:
    """After the request's own transaction: count the failures, reset on a success."""
    outcomes = context.g().get("kiva_password_checks")
    if not outcomes:
        return res
    _, _, window = settings()
    try:
        for login, ok, throttled, row in outcomes:
            now = time.time()
            if not ok:
                for kind, name in (("login", login), ("address", client_address())):
                    db.add_auth_failure(kind=kind, name=name, now=now, start=now - window)
                db.purge_auth_failures(start=now - window)
            elif row["login_failures"] and not throttled:
                db.del_auth_failures(kind="login", name=login)
        db.commit()
    except DB_FAILURES as e:  # counting must not turn an answer into an error (nor a 500)
        log.error(f"login throttling: {e}")
        db.rollback()
    return res


def init_app(app: flask.Flask, database: typing.Any):
    """The settings and the database (app.py runs `count` after the request's transaction)."""
    global db
    db = database
    app.config.setdefault("KIVA_THROTTLE_FAILURES", 5)
    app.config.setdefault("KIVA_THROTTLE_ADDRESS_FAILURES", 20)
    app.config.setdefault("KIVA_THROTTLE_SECONDS", 300.0)
