"""Errors are JSON, always, with the right status: `{"error": "<message>"}`.

Database refusals become HTTP answers here, once for all routes: the constraints
of create.sql are the source of truth (unique → 409, check → 400…), and an
unreachable database is a 503 until it comes back, without any restart.

FlaskSimpleAuth already answers JSON for its own errors and for Werkzeug's HTTP
exceptions; this module closes the gaps its version 36 leaves (the course's shared/LIBRARY-NOTES.md):
a body that is not a JSON object or nested too deep, a body over the size limit, a
405 without its `Allow` header, a closed route's plain-text 403, and messages that
echo a secret the request carried (FlaskSimpleAuth's cast errors echo the value).
"""

import json
import logging
import sqlite3

import flask
import FlaskSimpleAuth as fsa
import psycopg
import werkzeug.datastructures
import werkzeug.exceptions

from production import context, metrics

log = logging.getLogger("kiva.errors")

DB_ERRORS = (sqlite3.Error, psycopg.Error)
# what a query may raise: a driver's error, or the ErrorResponse refusal() made of it
DB_FAILURES = (*DB_ERRORS, fsa.ErrorResponse)
UNAVAILABLE = "database unavailable, please retry later"

NO_FORM: werkzeug.datastructures.ImmutableMultiDict = werkzeug.datastructures.ImmutableMultiDict()
MAX_MESSAGE = 1000  # an error message echoes user input: keep it readable

# the request parameters that hold a password, whatever the route
SECRET_PARAMS = ("PASS", "pword", "password", "current", "apass")
REDACTED = "***"
MIN_SECRET = 4
# the messages of FlaskSimpleAuth's parameter checks, which quote the value refused
PARAMETER_ERRORS = ('parameter "', "error on parameter ")


def json_error(message: str, status: int) -> flask.Response:
    """An error response in the format of every other one: {"error": message}."""
    res = flask.jsonify({"error": message})
    res.status_code = status
    return res


def unavailable(e: BaseException) -> fsa.ErrorResponse:
    """The database cannot answer: this whole request will be a 503.

    The flag matters where FlaskSimpleAuth catches the error itself: a lookup
    failing during authentication would otherwise end as a plain 401.
    """
    log.error(f"database unavailable: {e}")
    metrics.DB_ERRORS.labels("unavailable").inc()
    metrics.DB_UP.set(0)
    if flask.has_app_context():  # not when the pool opens its first connection at start-up
        context.state().db_unavailable = True
    return fsa.ErrorResponse(UNAVAILABLE, 503)


def refusal(e: BaseException) -> BaseException:
    """The HTTP answer to a database refusal or failure, or the error itself if a bug.

    anodb calls it on a failed query, so that FlaskSimpleAuth answers the
    ErrorResponse at once; error_response uses it for the errors raised while
    reading rows or ending the transaction.
    """
    # statement_timeout (server.conf): in Kiva only an unselective filter on a large
    # table runs that long, an input to change; lock_timeout: a busy row, to retry
    if isinstance(e, psycopg.errors.QueryCanceled):
        return fsa.ErrorResponse("this request ran too long: use a more selective filter", 400)
    if isinstance(e, psycopg.errors.LockNotAvailable):
        return fsa.ErrorResponse("the data is busy, please retry", 503, headers={"Retry-After": "1"})
    if isinstance(e, (psycopg.OperationalError, psycopg.InterfaceError, sqlite3.OperationalError)):
        return unavailable(e)
    if isinstance(e, psycopg.errors.ReadOnlySqlTransaction):
        # a primary demoted under this connection (a failover, docs/high-availability.md):
        # writes are unavailable until it reaches the new primary
        return unavailable(e)
    if isinstance(e, psycopg.InternalError) and e.sqlstate is None:
        # psycopg's own, not the server's: a connection dying mid-answer (PgBouncer passing
        # on a shutdown: "received 2 results from command 'BEGIN'") is lost, not a bug
        return unavailable(e)
    if isinstance(e, psycopg.errors.UniqueViolation) or (isinstance(e, sqlite3.IntegrityError) and "UNIQUE" in str(e)):
        return fsa.ErrorResponse("conflict: this name is already taken", 409)
    if isinstance(e, psycopg.errors.ForeignKeyViolation) or (
        isinstance(e, sqlite3.IntegrityError) and "FOREIGN KEY" in str(e)
    ):
        return fsa.ErrorResponse("conflict: still referenced, or referencing nothing", 409)
    if isinstance(e, (sqlite3.IntegrityError, psycopg.IntegrityError, psycopg.DataError)):
        return fsa.ErrorResponse("invalid value", 400)
    if isinstance(e, OverflowError):  # SQLite binds 64-bit integers at most
        return fsa.ErrorResponse("integer out of range", 400)
    return e


def error_response(e: BaseException) -> flask.Response:
    """Flask error handler for database errors and for the ErrorResponse they map to."""
    answer = e if isinstance(e, fsa.ErrorResponse) else metrics.database_refusal(refusal(e))
    if isinstance(answer, fsa.ErrorResponse):
        res = json_error(answer.message, answer.status)
        res.headers.update(answer.headers or {})
        return res
    log.error(f"unexpected database error: {e!r}")
    metrics.DB_ERRORS.labels("other").inc()
    return json_error("internal database error", 500)


def unknown_route_first():
    """A path no route has (404), a method its route does not take (405): said before any
    other check (API.md). Flask would raise it only when dispatching, after the hooks."""
    exception = context.request().routing_exception
    if exception is not None:
        raise exception
    return None


def refuse_large_bodies():
    """413 for a body over MAX_CONTENT_LENGTH, before anything reads it.

    Werkzeug raises its 413 from whatever reads the body first. FlaskSimpleAuth's param
    authentication, the first reader of a form, takes that for an internal error: a
    traceback in the log, and the request went on to a 401. The declared Content-Length
    says it all (a chunked body is refused by the front: 411)."""
    req = context.request()
    length = req.content_length  # most requests have none: no config read for them
    if length is not None and req.max_content_length is not None and length > req.max_content_length:
        raise werkzeug.exceptions.RequestEntityTooLarge()


def check_json_body():
    """Parse a JSON body before FlaskSimpleAuth does: it must be an object of parameters.

    An empty body is no body, whatever its Content-Type says (API.md): clients that send
    `Content-Type: application/json` on every request, GETs included, must work. The
    type is dropped from the WSGI environ before anything reads it, so that neither
    Werkzeug nor FlaskSimpleAuth looks for JSON parameters there.
    """
    req = context.request()
    content_type = req.environ.get("CONTENT_TYPE", "").lower()  # media types ignore case
    if "form" not in content_type:
        # not a form (no body, JSON…): Werkzeug's parser would find nothing, and
        # FlaskSimpleAuth reads request.form on every request: the empty answer is set
        # here (Werkzeug documents setting a cached_property as setting its value)
        req.form = req.files = NO_FORM
    if "json" in content_type and not req.get_data(cache=True).strip():
        del req.environ["CONTENT_TYPE"]
        return None
    if not req.is_json:
        return None
    try:
        body = req.get_json(silent=True)
    except RecursionError:  # [[[[…: the JSON parser gives up, silent or not
        return json_error("JSON body nested too deep", 400)
    if body is None:
        return json_error("malformed or empty JSON body", 400)
    if not isinstance(body, dict):
        return json_error("the JSON body must be an object of parameters", 400)
    return None


def method_not_allowed(e: werkzeug.exceptions.MethodNotAllowed) -> flask.Response:
    """405, keeping the `Allow` header FlaskSimpleAuth's generic handler drops."""
    res = json_error(e.description or "method not allowed", 405)
    res.headers["Allow"] = ", ".join(sorted(e.valid_methods or []))
    return res


def request_secrets() -> list[str]:
    """The passwords and tokens this request carries, as they may appear in a message."""
    req = flask.request
    body = context.body_params()
    values: list = [body.get(name) for name in SECRET_PARAMS] if isinstance(body, dict) else []
    user = body.get("user") if isinstance(body, dict) else None
    if isinstance(user, dict):
        values.append(user.get("password"))
    elif isinstance(user, str):  # user=<json> in a form: hide the whole object
        values.append(user)
    header = req.headers.get("Authorization", "")
    basic = context.basic_credentials(header)
    if basic is not None:
        values.append(basic[1])
    values.append(header.partition(" ")[2])  # a token, or Basic's base64 text
    # shorter ones could not be passwords (FSA_PASSWORD_LENGTH), and would blot out the message
    secrets = {str(v) for v in values if v is not None and len(str(v)) >= MIN_SECRET}
    return sorted(secrets | {repr(s)[1:-1] for s in secrets}, key=len, reverse=True)


def redact(message: str) -> str:
    """FlaskSimpleAuth's parameter errors echo the value: remove the request's secrets."""
    if not message.startswith(PARAMETER_ERRORS):
        return message
    for secret in request_secrets():
        message = message.replace(secret, REDACTED)
    return message


def json_errors(res: flask.Response) -> flask.Response:
    """Make sure every error body is a JSON object with a bounded message, and no secret."""
    if res.status_code < 400 or res.is_streamed:
        return res
    try:
        body = json.loads(res.get_data(as_text=True))
        message = body.get("error") if isinstance(body, dict) else None
        if isinstance(message, str) and len(message) <= MAX_MESSAGE and redact(message) == message:
            return res
        extra = {k: v for k, v in body.items() if k != "error"} if isinstance(body, dict) else {}
    except ValueError:
        message, extra = res.get_data(as_text=True), {}
    message = redact(str(message or res.status))[:MAX_MESSAGE]
    res.set_data(json.dumps({"error": message, **extra}))
    res.content_type = "application/json"
    return res


def init_app(app: flask.Flask):  # pragma: no mutate block (set-up)
    """The body size limit and the error handlers (app.py registers the request hooks)."""
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default: no limit
        app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # larger bodies get a 413
    app.register_error_handler(405, method_not_allowed)
    for error in (*DB_ERRORS, OverflowError):
        app.register_error_handler(error, error_response)
