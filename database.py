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

from production import context, engines, errors, metrics, migrate, pool_private
from production.anodb_private import DB
from production.context import READ_ONLY_METHODS

log = logging.getLogger("kiva.database")
HERE = os.path.dirname(os.path.abspath(__file__))


def checkout(conn: DB):
    """Pool hook: the connection a request gets, revived if the server closed it, in
    autocommit mode for reads (one statement, one transaction), in one transaction for
    the writes, which end_transaction ends."""
    metrics.POOL_IN_USE.inc()  # until returned()
    conn.revive()
    pg = conn.raw()
    if conn.engine == "psycopg" and pg is not None and not pg.closed and flask.has_request_context():
        if pg.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE:  # libpq's, no ConnectionInfo
            autocommit = context.request().method in READ_ONLY_METHODS
            if pg.autocommit != autocommit:  # psycopg's setter costs a round of its machinery
                pg.autocommit = autocommit


def returned(_conn: DB):
    """Pool hook: a connection back in the pool."""
    metrics.POOL_IN_USE.dec()


# one AnoDB connection per concurrent request, created on demand (init_app), then reused.
# min_size=0: none at import. ProxyPatternPool's default (1) connects when init_app gives
# the pool its function, and a failure there (fsa.ErrorResponse, a BaseException, which
# the pool's "keep running" guard does not catch) failed the app's import: a process
# loading it during an outage (mod_wsgi's second daemon) answered HTML 500s, not 503s
db = fsa.Reference(getter=checkout, retter=returned, min_size=0)


def connect(config: dict) -> DB:
    """Open one AnoDB connection with the queries loaded (a 503 if it fails)."""
    conn = DB(**config, exception=lambda e: metrics.database_refusal(errors.refusal(e)))
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
    if context.state().db_unavailable and res.status_code != 503:
        res = errors.json_error(errors.UNAVAILABLE, 503)
    # no database used, or no transaction to end (a read in autocommit mode)
    conn = pool_private.held(db)
    if conn is None or not conn.in_transaction():
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
    if not pool_private.holds_object(db):
        return
    if exc is not None:
        try:
            db.rollback()
        except errors.DB_ERRORS as e:
            close_broken()
            log.error(f"rollback after an exception failed: {e}")
    pool_private.give_back(db)


def probe() -> bool:
    """Whether a new connection reaches the database now (kiva_database_up, for the metrics).

    On a connection of its own, outside the pool: its failure is this probe's answer,
    not its request's, which goes on (a scrape reports the outage instead of failing
    with a 503); a full server (max_connections) is seen too.
    """
    try:
        conn = connect(flask.current_app.config["ANODB"])
        try:
            conn.now()
        finally:
            conn.close()
    except errors.DB_FAILURES:  # errors.unavailable() counted it, and set kiva_database_up to 0
        context.state().db_unavailable = False
        return False
    metrics.DB_UP.set(1)
    return True


def init_app(app: fsa.Flask):
    """Connections from the configuration, the engines' JSON, the `db-init` command."""
    config = app.config["ANODB"]
    db.set_fun(lambda _: connect(config))
    engines.init_app(app)

    @app.cli.command("db-init")
    def db_init():
        """Drop the configured database, migrate it to the latest version, load data.sql."""
        reached = migrate.init(config["db"], config["conn"], [os.path.join(HERE, "data.sql")])
        print(f"database reset at schema version {reached}: {config['conn']}")

    @app.cli.command("db-upgrade")
    def db_upgrade():
        """Apply the pending migrations to the configured database."""
        reached = migrate.upgrade(config["db"], config["conn"])
        print(f"database at schema version {reached}: {config['conn']}")
