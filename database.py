"""Database access: the shared pool of AnoDB connections and the transaction hooks.

Every request runs in one transaction. The after-request hook commits when the
status is below 400 and rolls back otherwise; the teardown hook rolls back when an
exception escaped and gives the connection back to the pool, so that no connection
is ever left inside a failed transaction nor held after its request.

Database refusals become HTTP answers here, once for all routes: the constraints
of create.sql are the source of truth (unique → 409, check → 400…), and an
unreachable database is a 503 until it comes back, without any restart.
"""

import datetime
import decimal
import logging
import os
import sqlite3

import anodb
import flask
import FlaskSimpleAuth as fsa
import psycopg

log = logging.getLogger("kiva")

# one AnoDB connection per concurrent request, created on demand, then reused
db = fsa.Reference()

UTC = datetime.UTC
DB_ERRORS = (sqlite3.Error, psycopg.Error)

# SQLite has no boolean nor time stamp types: these declared column types are
# converted back to Python values (PARSE_DECLTYPES), as psycopg does natively.
sqlite3.register_converter("BOOLEAN", lambda b: b != b"0")
sqlite3.register_converter("TIMESTAMP", lambda b: datetime.datetime.fromisoformat(b.decode()).replace(tzinfo=UTC))


def sqlite_dict_row(cursor: sqlite3.Cursor, row: tuple) -> dict:
    """SQLite rows as dicts with lower-case keys, like psycopg's dict_row."""
    return {desc[0].lower(): value for desc, value in zip(cursor.description, row, strict=True)}


def iso8601(when: datetime.datetime) -> str:
    """The same time stamp text on both engines: UTC, to the second."""
    return when.astimezone(UTC).isoformat(timespec="seconds")


def number(value: decimal.Decimal) -> int | float:
    """PostgreSQL NUMERIC as a JSON number: 12.50 → 12.5, 40.00 → 40."""
    return int(value) if value == value.to_integral_value() else float(value)


def unavailable(e: BaseException) -> fsa.ErrorResponse:
    """The database cannot answer: this whole request will be a 503.

    The flag matters where FlaskSimpleAuth catches the error itself: a lookup
    failing during authentication would otherwise end as a plain 401.
    """
    log.error(f"database unavailable: {e}")
    flask.g.kiva_db_unavailable = True
    return fsa.ErrorResponse("database unavailable, please retry later", 503)


def connect(config: dict) -> anodb.DB:
    """Open one AnoDB connection with the queries loaded."""
    try:
        conn = anodb.DB(**config, exception=refusal)
    except DB_ERRORS as e:
        unavailable(e)
        raise
    if conn._db == "sqlite3":
        conn._conn.row_factory = sqlite_dict_row
        conn.sqlite_setup()
    return conn


def json_error(message: str, status: int) -> flask.Response:
    """An error response in the format of every other one: {"error": message}."""
    res = flask.jsonify({"error": message})
    res.status_code = status
    return res


def refusal(e: BaseException) -> BaseException:
    """The HTTP answer to a database refusal or failure, or the error itself if a bug.

    anodb calls it on a failed query, so that FlaskSimpleAuth answers the
    ErrorResponse at once; the error handlers below use it for the errors raised
    while reading rows (list queries are generators) or ending the transaction.
    """
    if isinstance(e, (psycopg.OperationalError, psycopg.InterfaceError, sqlite3.OperationalError)):
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
    answer = e if isinstance(e, fsa.ErrorResponse) else refusal(e)
    if isinstance(answer, fsa.ErrorResponse):
        return json_error(answer.message, answer.status)
    log.error(f"unexpected database error: {e!r}")
    return json_error("internal database error", 500)


def close_broken():
    """Drop a connection whose commit or rollback failed: anodb reconnects next time."""
    try:
        db.close()
    except DB_ERRORS as e:  # already dead, nothing more to do
        log.warning(f"closing a broken connection: {e}")


def db_commit(res: flask.Response) -> flask.Response:
    """Commit below 400, roll back otherwise; a 503 if the database failed meanwhile."""
    if flask.g.get("kiva_db_unavailable") and res.status_code != 503:
        res = json_error("database unavailable, please retry later", 503)
    if not db._has_obj():  # this request did not touch the database
        return res
    try:
        if res.status_code < 400:
            db.commit()
        else:  # 4xx user errors, 5xx server errors
            db.rollback()
    except DB_ERRORS as e:
        close_broken()
        log.error(f"transaction end failed: {e}")
        if res.status_code < 400:  # the commit failed: the write is not acknowledged
            return error_response(e)
    return res


def db_release(exc: BaseException | None):
    """After the request: roll back if an exception escaped, give the connection back."""
    if not db._has_obj():
        return
    if exc is not None:
        try:
            db.rollback()
        except DB_ERRORS as e:
            close_broken()
            log.error(f"rollback after an exception failed: {e}")
    db._ret_obj()


def init_db():
    """Drop and recreate the tables with the seed data: back to a known state."""
    conn = db._get_obj()
    sqlite = conn._db == "sqlite3"
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ["drop.sql", "create-sqlite.sql" if sqlite else "create.sql", "data.sql"]:
        with open(os.path.join(here, name)) as script:
            if sqlite:
                conn._conn.executescript(script.read())
            else:
                conn._conn.execute(script.read())
    conn.commit()
    db._ret_obj()


def init_app(app: fsa.Flask):
    """Set the pool, the transaction hooks and the database error answers."""
    config = app.config["ANODB"]
    db._set(fun=lambda _: connect(config))
    app.after_request(db_commit)
    app.teardown_request(db_release)
    for error in (*DB_ERRORS, OverflowError):
        app.register_error_handler(error, error_response)
    app.add_json_converter(datetime.datetime, iso8601)
    app.add_json_converter(decimal.Decimal, number)

    @app.cli.command("db-init")
    def db_init():
        """Recreate the configured database from drop, create and data.sql."""
        init_db()
        print(f"database reset: {config['conn']}")
