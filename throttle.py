"""Login throttling: after N failed password checks for one login within a window,
further attempts for that login get 429 with Retry-After until the window is over.

The counts live in the database (table AuthFailure), so every server process sees
them. They are kept for unknown logins too: a 429 must not tell whether a login
exists. A successful password check resets the count. The check itself costs no
query: the failures come with the user row (auth.lookup).

Configuration: KIVA_THROTTLE_FAILURES (default 5), KIVA_THROTTLE_SECONDS (300).
"""

import math
import time

import flask
import FlaskSimpleAuth as fsa

from database import DB_FAILURES, db, json_error, log

REFUSAL = "too many failed logins, retry later"


def settings() -> tuple[int, float]:
    config = flask.current_app.config
    return config["KIVA_THROTTLE_FAILURES"], config["KIVA_THROTTLE_SECONDS"]


def check(login: str, failures: int | None, since: float | None):
    """Called before a password is checked: refuse a throttled login."""
    flask.g.kiva_password_login = login
    flask.g.kiva_failures = failures or 0
    limit, window = settings()
    if failures and since is not None and failures >= limit:
        wait = since + window - time.time()
        if wait > 0:
            flask.g.kiva_retry_after = math.ceil(wait)
            raise fsa.ErrorResponse(REFUSAL, 429)


def count(res: flask.Response) -> flask.Response:
    """After the request's own transaction: answer 429, or count a failure, or reset."""
    login = flask.g.get("kiva_password_login")
    if login is None:  # no password was checked
        return res
    retry_after = flask.g.get("kiva_retry_after")
    if retry_after is not None:
        # FlaskSimpleAuth reports the last scheme's error, maybe a 401: the throttle decides
        if res.status_code in (401, 429):
            res = json_error(REFUSAL, 429)
            res.headers["Retry-After"] = str(retry_after)
        return res
    authenticated = flask.current_app.current_user() == login  # type: ignore[attr-defined]
    try:
        if not authenticated and res.status_code == 401:
            _, window = settings()
            now = time.time()
            db.add_auth_failure(login=login, now=now, start=now - window)
            db.purge_auth_failures(start=now - window)
            db.commit()
        elif authenticated and flask.g.kiva_failures:
            db.del_auth_failures(login=login)
            db.commit()
    except DB_FAILURES as e:  # counting must not turn an answer into an error (nor a 500)
        log.error(f"login throttling: {e}")
        db.rollback()
    return res


def init_app(app: flask.Flask):
    """Register the hook; call before database.init_app so that it runs after the commit."""
    app.config.setdefault("KIVA_THROTTLE_FAILURES", 5)
    app.config.setdefault("KIVA_THROTTLE_SECONDS", 300.0)
    app.after_request(count)
