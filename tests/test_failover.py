"""What the app answers while the database fails over (docs/high-availability.md)."""

import FlaskSimpleAuth as fsa
import psycopg

from production import errors


def test_read_only_server_is_unavailable():
    # a connection still open to a primary just demoted to a standby (Patroni): the write
    # is refused by a read-only server, which is the database being unavailable for writes
    # until the connection goes to the new primary, not a bug of the app (a 500)
    e = psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction")
    answer = errors.refusal(e)
    assert isinstance(answer, fsa.ErrorResponse)
    assert (answer.status, answer.message) == (503, errors.UNAVAILABLE)


def test_commit_not_confirmed_by_the_standby_is_not_acknowledged():
    # PostgreSQL ends a commit's wait for the synchronous standby on a cancel (the
    # statement_timeout of server.conf) with a WARNING, and the commit "succeeds": done
    # on the primary only, which a failover then loses. The app must not acknowledge it
    from production import anodb_private

    class Diagnostic:
        message_primary = "canceling wait for synchronous replication due to user request"

    class Connection:  # psycopg's, as far as commit goes
        closed = False

        def commit(self):
            db._notice(Diagnostic())

        def close(self):
            pass

    db = object.__new__(anodb_private.DB)
    db._db, db._db_pkg, db._conn = "psycopg", psycopg, Connection()
    db._conn_ntx = db._conn_total = db._conn_nstat = 0
    db._auto_reconnect = db._reconn = False
    try:
        db.commit()
    except psycopg.OperationalError as e:
        assert "synchronous standby" in str(e)
    else:
        raise AssertionError("a commit the standby did not confirm was acknowledged")
