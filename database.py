"""Database access: one transaction per request, on a pool of AnoDB connections.

Every request runs in one transaction. After the request, `end_transaction` commits
when the status is below 400 and rolls back otherwise; `release` rolls back when an
exception escaped and gives the connection back to the pool, so that no connection
is ever left inside a failed transaction nor held after its request. Reads (GET,
HEAD, OPTIONS) run in autocommit mode on PostgreSQL: no BEGIN nor COMMIT to send.

Database refusals become answers in errors.py; anodb_private.py keeps the
connections failing fast while the database is down, and recovering after.
"""

import logging
import os

import flask
import FlaskSimpleAuth as fsa
import psycopg

import engines
import errors
from anodb_private import DB

log = logging.getLogger("kiva.database")

# the methods that do not change anything: their requests run without a transaction
READ_ONLY_METHODS = {"GET", "HEAD", "OPTIONS"}


def checkout(conn: DB):
    """Pool hook: the connection a request gets, revived if the server closed it, in
    autocommit mode for reads (one statement, one transaction), in one transaction for
    the writes, which end_transaction ends."""
    conn.revive()
    pg = conn.raw()
    if conn.engine == "psycopg" and pg is not None and not pg.closed and flask.has_request_context():
        if pg.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            pg.autocommit = flask.request.method in READ_ONLY_METHODS


# one AnoDB connection per concurrent request, created on demand (init_app), then reused
db = fsa.Reference(getter=checkout)


def connect(config: dict) -> DB:
    """Open one AnoDB connection with the queries loaded (a 503 if it fails)."""
    conn = DB(**config, exception=errors.refusal)
    if conn.engine == "sqlite3":
        conn.raw().row_factory = engines.sqlite_dict_row
        conn.sqlite_setup()
    return conn


def close_broken():
    """Drop a connection whose commit or rollback failed: anodb reconnects next time."""
    try:
        db.close()
    except errors.DB_ERRORS as e:  # already dead, nothing more to do
        log.warning(f"closing a broken connection: {e}")


def end_transaction(res: flask.Response) -> flask.Response:
    """Commit below 400, roll back otherwise; a 503 if the database failed meanwhile."""
    if flask.g.get("kiva_db_unavailable") and res.status_code != 503:
        res = errors.json_error(errors.UNAVAILABLE, 503)
    if not db._has_obj():  # this request did not touch the database
        return res
    try:
        if res.status_code < 400:
            db.commit()
        else:  # 4xx user errors, 5xx server errors
            db.rollback()
    except errors.DB_ERRORS as e:
        close_broken()
        log.error(f"transaction end failed: {e}")
        if res.status_code < 400:  # the commit failed: the write is not acknowledged
            # …and maybe done: a connection lost during the commit leaves its outcome unknown
            errors.unavailable(e)
            return errors.json_error("database unavailable during commit, please check and retry later", 503)
    return res


def release(exc: BaseException | None):
    """After the request: roll back if an exception escaped, give the connection back."""
    if not db._has_obj():
        return
    if exc is not None:
        try:
            db.rollback()
        except errors.DB_ERRORS as e:
            close_broken()
            log.error(f"rollback after an exception failed: {e}")
    db._ret_obj()


def init_db():
    """Drop and recreate the tables with the seed data: back to a known state."""
    conn = db._get_obj()
    sqlite = conn.engine == "sqlite3"
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ["drop.sql", "create-sqlite.sql" if sqlite else "create.sql", "data.sql"]:
        with open(os.path.join(here, name)) as script:
            cursor = conn.cursor()
            if sqlite:
                cursor.executescript(script.read())
            else:
                cursor.execute(script.read())
    conn.commit()
    db._ret_obj()


def init_app(app: fsa.Flask):
    """Connections from the configuration, the engines' JSON, the `db-init` command."""
    config = app.config["ANODB"]
    db.set_fun(lambda _: connect(config))
    engines.init_app(app)

    @app.cli.command("db-init")
    def db_init():
        """Recreate the configured database from drop, create and data.sql."""
        init_db()
        print(f"database reset: {config['conn']}")
