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
import select
import sqlite3
import threading
import time

import anodb
import flask
import FlaskSimpleAuth as fsa
import psycopg

log = logging.getLogger("kiva")

# one AnoDB connection per concurrent request, created on demand, then reused
db = fsa.Reference()

UTC = datetime.UTC
DB_ERRORS = (sqlite3.Error, psycopg.Error)
# the methods that do not change anything: their requests run without a transaction
READ_ONLY_METHODS = {"GET", "HEAD", "OPTIONS"}
# what a query may raise: a driver's error, or the ErrorResponse refusal() made of it
DB_FAILURES = (*DB_ERRORS, fsa.ErrorResponse)

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
    if flask.has_app_context():  # not when the pool opens its first connection at start-up
        flask.g.kiva_db_unavailable = True
    return fsa.ErrorResponse("database unavailable, please retry later", 503)


class Backoff:
    """Connection attempts while the database is down, shared by the process's connections.

    After a failed attempt, the next one waits a delay doubling from MIN_DELAY to
    MAX_DELAY; meanwhile connecting fails at once (a 503 now, rather than a request
    sleeping), and the server is not hammered: about one attempt per MAX_DELAY per
    process. A successful attempt resets it: the app serves again within MAX_DELAY.
    """

    MIN_DELAY = 0.05
    MAX_DELAY = 1.0

    def __init__(self):
        self._lock = threading.Lock()
        self._delay = 0.0
        self._next = 0.0  # time.monotonic() of the next allowed attempt

    def wait(self) -> float:
        """Seconds before the next attempt is allowed, 0.0 if it is now."""
        with self._lock:
            return max(self._next - time.monotonic(), 0.0)

    def failed(self):
        with self._lock:
            self._delay = min(max(2 * self._delay, self.MIN_DELAY), self.MAX_DELAY)
            self._next = time.monotonic() + self._delay

    def succeeded(self):
        with self._lock:
            self._delay, self._next = 0.0, 0.0


backoff = Backoff()


class DB(anodb.DB):
    """anodb's DB, made to fail fast while the database is down and to recover after.

    anodb 15 reconnects a lost connection by itself, but: it sleeps before each new
    attempt, inside the request, a delay doubling up to 30 s (a hang: replaced by the
    shared Backoff, which fails at once instead); its failed reconnection is raised
    past the `exception` hook (FlaskSimpleAuth made a 500 of it, or a 401 during
    authentication) and leaves no connection, on which its commit and rollback fail
    an assertion (a 500); and an idle connection whose server went away looks fine
    to psycopg until used (`closed` is only set by a failed operation): the first
    request on each of them after a restart would fail (see `revive`).
    """

    def _do_connect(self):
        self._conn_delay = None  # never sleep here: Backoff decides when to try again
        wait = backoff.wait()
        try:
            if wait:
                raise self._db_pkg.OperationalError(f"no connection to the database, next attempt in {wait:.2f} s")
            super()._do_connect()
        except self._db_error as e:
            if not wait:
                backoff.failed()
            self._conn = None
            error = self._exception(e) if self._exception else e
            if error is e:
                raise
            raise error from e
        backoff.succeeded()

    def revive(self):
        """Before a request uses this connection: reconnect it if the server closed it.

        An idle connection has nothing to read unless the server ended it (a shutdown
        or a crash sends an error, or just closes the socket): then anodb reconnects
        before the next query, instead of that query failing.
        """
        conn = self._conn
        if self._db == "psycopg" and conn is not None and not conn.closed:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
            if readable:
                log.warning("database connection closed by the server: reconnecting")
                self._reconn = True

    def commit(self):
        if self._conn is None:  # lost, and not reconnected: nothing was done
            raise self._db_pkg.OperationalError("no connection to the database")
        super().commit()

    def rollback(self):
        """Nothing to roll back on a lost connection: the server ended the transaction."""
        if self._conn is None or getattr(self._conn, "broken", False):
            self._reconn = self._auto_reconnect
            return
        super().rollback()


def connect(config: dict) -> DB:
    """Open one AnoDB connection with the queries loaded (a 503 if it fails)."""
    conn = DB(**config, exception=refusal)
    if conn._db == "sqlite3":
        assert conn._conn is not None  # SQLite opens a file: no server to be down
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
    # statement_timeout (server.conf): in Kiva only an unselective filter on a large
    # table runs that long, an input to change; lock_timeout: a busy row, to retry
    if isinstance(e, psycopg.errors.QueryCanceled):
        return fsa.ErrorResponse("this request ran too long: use a more selective filter", 400)
    if isinstance(e, psycopg.errors.LockNotAvailable):
        return fsa.ErrorResponse("the data is busy, please retry", 503, headers={"Retry-After": "1"})
    if isinstance(e, (psycopg.OperationalError, psycopg.InterfaceError, sqlite3.OperationalError)):
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
    answer = e if isinstance(e, fsa.ErrorResponse) else refusal(e)
    if isinstance(answer, fsa.ErrorResponse):
        res = json_error(answer.message, answer.status)
        res.headers.update(answer.headers or {})
        return res
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
            # …and maybe done: a connection lost during the commit leaves its outcome unknown
            unavailable(e)
            return json_error("database unavailable during commit, please check and retry later", 503)
    return res


def db_checkout(conn: DB):
    """Pool hook: each request gets a connection checked for a server-side end, in
    autocommit mode for the methods that only read (one statement, one transaction),
    in one transaction for the others, which the after-request hook ends."""
    conn.revive()
    pg = conn._conn
    if conn._db == "psycopg" and pg is not None and not pg.closed and flask.has_request_context():
        if pg.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            # a read needs no BEGIN nor COMMIT: two round trips saved on every GET
            pg.autocommit = flask.request.method in READ_ONLY_METHODS


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
    db._set_pool(getter=db_checkout)
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
