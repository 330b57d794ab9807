"""The one place where Kiva reaches into anodb's internals (version 15): fail fast
while the database is down, recover after.

anodb 15 reconnects a lost connection by itself, but: it sleeps before each new
attempt, inside the request, a delay doubling up to 30 s (a hang: replaced by the
shared Backoff, which fails at once instead); its failed reconnection is raised past
the `exception` hook (FlaskSimpleAuth made a 500 of it, or a 401 during
authentication) and leaves no connection, on which its commit and rollback fail an
assertion (a 500); and an idle connection whose server went away looks fine to
psycopg until used (`closed` is only set by a failed operation): the first request on
each of them after a restart would fail (see `revive`). anodb has no public hook for
any of these: this subclass overrides its connection step and reads its connection
attributes. tests/test_library_workarounds.py fails if anodb changes under it.
"""

import logging
import select
import threading
import time

import anodb
import psycopg

from production import metrics

log = logging.getLogger("kiva.anodb")


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
        self.lock = threading.Lock()
        self.delay = 0.0
        self.next = 0.0  # time.monotonic() of the next allowed attempt

    def wait(self) -> float:
        """Seconds before the next attempt is allowed, 0.0 if it is now."""
        with self.lock:
            return max(self.next - time.monotonic(), 0.0)

    def failed(self):
        with self.lock:
            self.delay = min(max(2 * self.delay, self.MIN_DELAY), self.MAX_DELAY)
            self.next = time.monotonic() + self.delay

    def succeeded(self):
        with self.lock:
            self.delay, self.next = 0.0, 0.0


backoff = Backoff()


class DB(anodb.DB):
    """anodb's DB, made to fail fast while the database is down and to recover after."""

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
        metrics.DB_UP.set(1)
        if self._db == "psycopg" and self._conn is not None:
            self._conn.add_notice_handler(self._notice)

    # a commit whose wait for the synchronous standby PostgreSQL ended (a cancel: the
    # statement_timeout; a shutdown) is done on this server only, with a WARNING: a
    # failover promoting the standby would lose it (docs/high-availability.md)
    _unreplicated = False

    def _notice(self, diagnostic):
        if "synchronous replication" in (diagnostic.message_primary or ""):
            self._unreplicated = True

    @property
    def engine(self) -> str:
        """ "sqlite3" or "psycopg"."""
        return self._db

    def raw(self):
        """The driver's connection, None while it is lost."""
        return self._conn

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

    def in_transaction(self) -> bool:
        """Whether this connection may hold a transaction to end: False when the
        driver says it is idle (nothing was run, or only in autocommit mode), True
        when it is lost (commit then refuses, rollback does nothing)."""
        conn = self._conn
        if conn is None:
            return True
        if self._db == "psycopg":  # libpq's own status (conn.info would build an object first)
            return conn.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE
        return conn.in_transaction

    def commit(self):
        if self._conn is None:  # lost, and not reconnected: nothing was done
            raise self._db_pkg.OperationalError("no connection to the database")
        self._unreplicated = False
        super().commit()
        if self._unreplicated:  # not acknowledged: database.end_transaction answers 503
            raise self._db_pkg.OperationalError("commit not confirmed by the synchronous standby")

    def rollback(self):
        """Nothing to roll back on a lost connection: the server ended the transaction."""
        if self._conn is None or getattr(self._conn, "broken", False):
            self._reconn = self._auto_reconnect
            return
        super().rollback()
