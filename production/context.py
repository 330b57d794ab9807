"""The request, its state and the app themselves, for the code run on every request.

flask.request, flask.g and flask.current_app are proxies: every attribute read through
one looks the current context up again, about 0.7 µs here, against 0.02 µs for a read
on the object itself (timeit, bench/RESULTS.md). The hooks run on every request read a
few attributes each: they get the objects once, with the proxies' documented
`_get_current_object()` (Flask's "Notes On Proxies"), then read them directly.
"""

import base64
import typing

import flask
import FlaskSimpleAuth as fsa
import werkzeug.exceptions

# HTTP methods by what they mean here, each set written once (RFC 9110's names)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # a request body: parameters, 411 if chunked
WRITE_METHODS = BODY_METHODS | {"DELETE"}  # change data: cross-site refused, committed, cache invalidated
AUTOMATIC_METHODS = frozenset({"HEAD", "OPTIONS"})  # Flask adds them to every route
READ_ONLY_METHODS = AUTOMATIC_METHODS | {"GET"}  # in autocommit: no transaction to end
METHODS = READ_ONLY_METHODS | WRITE_METHODS  # all Kiva's routes answer (metrics: any other is "other")


def request() -> flask.Request:
    """The current request (not its proxy)."""
    return flask.request._get_current_object()  # type: ignore[attr-defined]


def g() -> typing.Any:
    """The current request's flask.g (not its proxy)."""
    return flask.g._get_current_object()


def app() -> fsa.Flask:
    """The running app, as FlaskSimpleAuth's Flask (not its proxy)."""
    return flask.current_app._get_current_object()  # type: ignore[attr-defined]


class RequestState:
    """What Kiva's modules note about the current request, for the others: one object,
    on flask.g under one name (state()), instead of a string key per note.

    Not a dataclass: its __init__ would assign every field on every request (about
    0.5 µs, timeit); here a request pays one empty object, a field read before any write
    finds the class's default, and a collection is created by its first writer.
    """

    start: float | None = None
    """audit.start_clock: perf_counter() as the request began; read by audit.audit_line
    and metrics.count (the latency). None: the clock did not start (no before hooks)."""

    logins: dict[str, dict] | None = None
    """auth.lookup: the rows of the logins whose password was checked, with their hash
    and throttling counts; read by auth.user_row (no second query)."""

    users: dict[str, dict | None] | None = None
    """auth.user_row: the user rows read (or taken from the shared cache) by login."""

    auth_refusal: fsa.ErrorResponse | None = None
    """auth.password_check (429, 503) and auth.check_token (401): the refusal that must be
    the answer; read by auth.restore_refusal, as FlaskSimpleAuth answers the last
    scheme's error."""

    db_unavailable: bool = False
    """errors.unavailable: the database failed during this request, which is a 503 (even
    where FlaskSimpleAuth caught the error); read by database.end_transaction, cleared by
    database.probe (a scrape's probe failing is its own answer, not the request's)."""

    device_failures: int = 0
    """throttle.check: the failures counted against the client's device cookie; read by
    throttle.count (a success resets them)."""

    password_outcomes: list[tuple] | None = None
    """throttle.record: (login, ok, throttled, row, device) of each password check; read by
    throttle.count, which writes them once the request's transaction is over."""

    new_device: str | None = None
    """throttle.record: the login of a successful check without a device cookie; read by
    throttle.device_cookie, which sets one."""


STATE = "kiva"  # the attribute of flask.g holding the RequestState


def state() -> RequestState:
    """The current request's state (flask.g's in an app context), created at first use."""
    g = flask.g._get_current_object()
    found = g.get(STATE)
    if found is None:
        found = g.kiva = RequestState()
    return found


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(login, password) of an `Authorization: Basic` header; None for another scheme, or
    a malformed one (not base64, not UTF-8, no colon), which FlaskSimpleAuth refuses too."""
    if not header.startswith("Basic "):
        return None
    try:
        login, colon, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    return (login, password) if colon else None


def body_params() -> dict | None:
    """The request's body parameters (JSON object or form), None if it has none or is bad."""
    req = request()
    try:
        body = req.get_json(silent=True) if req.is_json else req.form
    except (RecursionError, werkzeug.exceptions.HTTPException):  # too deep, too large
        return None
    return body if isinstance(body, dict) else None
