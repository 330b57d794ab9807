"""Database refusals as HTTP answers (production/errors.py), every kind in-process.

SQLite cannot raise PostgreSQL's errors, nor the errors that escape AnoDB (those met
while ending a transaction): each is made here and given to refusal() and to the
Flask error handler, so that a student with SQLite only sees their answers checked.
"""

import sqlite3

import FlaskSimpleAuth as fsa
import psycopg
import pytest
from helpers import EXTERNAL, samples, value

from production import context, errors

pytestmark = pytest.mark.skipif(EXTERNAL, reason="in-process: the errors are made by the test")


@pytest.fixture(autouse=True)
def app():
    """The app, created: refusals count in its metrics (made by metrics.init_app)."""
    from app import app

    return app


UNAVAILABLE: tuple[int, str, dict[str, str]] = (503, errors.UNAVAILABLE, {})
CASES = [
    (
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        (400, "this request ran too long: use a more selective filter", {}),
    ),
    (
        psycopg.errors.LockNotAvailable("could not obtain lock"),
        (503, "the data is busy, please retry", {"Retry-After": "1"}),
    ),
    (psycopg.OperationalError("connection refused"), UNAVAILABLE),
    (psycopg.InterfaceError("the connection is closed"), UNAVAILABLE),
    (sqlite3.OperationalError("unable to open database file"), UNAVAILABLE),
    (psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"), UNAVAILABLE),
    (psycopg.InternalError("received 2 results from command 'BEGIN'"), UNAVAILABLE),
    (psycopg.errors.UniqueViolation("duplicate key"), (409, "conflict: this name is already taken", {})),
    (
        sqlite3.IntegrityError("UNIQUE constraint failed: Stuff.stuff"),
        (409, "conflict: this name is already taken", {}),
    ),
    (
        psycopg.errors.ForeignKeyViolation("violates foreign key"),
        (409, "conflict: still referenced, or referencing nothing", {}),
    ),
    (
        sqlite3.IntegrityError("FOREIGN KEY constraint failed"),
        (409, "conflict: still referenced, or referencing nothing", {}),
    ),
    (sqlite3.IntegrityError("CHECK constraint failed: stuff"), (400, "invalid value", {})),
    (psycopg.errors.CheckViolation("violates check constraint"), (400, "invalid value", {})),
    (psycopg.errors.NotNullViolation("null value"), (400, "invalid value", {})),
    (psycopg.errors.StringDataRightTruncation("value too long"), (400, "invalid value", {})),
    (OverflowError("Python int too large to convert to SQLite INTEGER"), (400, "integer out of range", {})),
]


@pytest.mark.parametrize("error, answer", CASES, ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "")
def test_refusal(app, error, answer, caplog):
    with app.test_request_context("/stuff"):
        refused = errors.refusal(error)
        flagged = context.state().db_unavailable
    assert isinstance(refused, fsa.ErrorResponse), refused
    assert (refused.status, refused.message, dict(refused.headers or {})) == answer
    # unavailable: said in the log with its cause, and flagged for the whole request (a
    # lookup failing inside FlaskSimpleAuth's authentication would otherwise be a 401)
    unavailable = answer == UNAVAILABLE
    assert (f"database unavailable: {error}" in caplog.messages) is unavailable, caplog.messages
    assert (flagged is True) is unavailable, flagged


@pytest.mark.parametrize(
    "error", [psycopg.errors.InternalError_("XX000 from the server"), sqlite3.ProgrammingError("x")]
)
def test_a_bug_is_not_a_refusal(error):
    # the server's internal errors and the app's own mistakes stay errors: a 500, logged
    assert errors.refusal(error) is error


@pytest.mark.parametrize("error, answer", CASES, ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "")
def test_error_handler(app, error, answer):
    """An error escaping AnoDB (reading rows, ending the transaction): the same answer, JSON."""
    with app.test_request_context("/stuff", method="POST"):
        res = errors.error_response(error)
    status, message, headers = answer
    assert (res.status_code, res.json, res.mimetype) == (status, {"error": message}, "application/json")
    assert {k: res.headers.get(k) for k in headers} == headers


def counted(kind: str) -> float:
    """kiva_database_errors_total{kind=...} as a scrape gives it."""
    from app import app
    from production import metrics

    with app.app_context():
        exposed = metrics.exposition().get_data(as_text=True)
    return value(samples(exposed), "kiva_database_errors_total", kind=kind)


def test_error_handler_of_a_bug(app, caplog):
    error = sqlite3.ProgrammingError("Cannot operate on a closed cursor.")
    before = counted("other")
    with app.test_request_context("/stuff", method="POST"):
        res = errors.error_response(error)
    assert counted("other") == before + 1
    assert (res.status_code, res.json) == (500, {"error": "internal database error"})
    assert "unexpected database error: ProgrammingError('Cannot operate on a closed cursor.')" in caplog.text


def test_error_handler_of_a_refusal_made_already(app):
    with app.test_request_context("/stuff", method="POST"):
        res = errors.error_response(fsa.ErrorResponse("gone", 410, headers={"X-Why": "test"}))
    assert (res.status_code, res.json, res.headers["X-Why"]) == (410, {"error": "gone"}, "test")
    # counted once, when refusal() made it (anodb's hook), not again here
    before = counted("conflict")
    with app.test_request_context("/stuff", method="POST"):
        res = errors.error_response(fsa.ErrorResponse("conflict: this name is already taken", 409))
    assert (res.status_code, counted("conflict")) == (409, before)


def test_registered_for_every_database_error(app):
    for error in (*errors.DB_ERRORS, OverflowError):
        handler = app.error_handler_spec[None][None][error]
        assert getattr(handler, "__name__", "") == "error_response", error
