"""Races forced, not hoped for: the app's write waits on a row this test holds uncommitted.

Two HTTP requests sent together overlap on the server only when the machine's load
allows (make check failed "the two requests never overlapped" on a busy machine). Here
the first writer is the test itself: on a connection of its own, it runs the app's own
query (queries.sql) and keeps its transaction open; then it sends the request, waits
until the database says the app's write is waiting for that transaction, and only then
commits (or rolls back). The interleaving is the same at every run, whatever the load:

- PostgreSQL: pg_blocking_pids() names the test's connection as the one that blocks a
  backend of the app (its INSERT waits on the uncommitted key, its UPDATE on the row);
- SQLite (in-process): the test holds the database's write lock (BEGIN IMMEDIATE); the
  app's statement is seen entering the driver's execute(), and leaving it only after
  the commit (SQLite serialises writers: waiting there is the only possible overlap).
"""

import concurrent.futures
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import aiosql
import pytest
from helpers import EXTERNAL, HERE

WAIT = 60.0  # seconds: a bound for a loaded machine, never reached when all goes well


def database() -> tuple[str, Any]:
    """The driver's name and a connection of the test's own to the database under test."""
    if not EXTERNAL and os.path.basename(os.environ.get("APP_CONFIG", "")) == "app.conf":
        # autocommit: the test says BEGIN IMMEDIATE itself, to take the write lock at once
        return "sqlite3", sqlite3.connect(os.environ["KIVA_SQLITE"], isolation_level=None, timeout=WAIT)
    if "KIVA_DB" in os.environ:
        import psycopg

        return "psycopg", psycopg.connect(os.environ["KIVA_DB"])
    pytest.skip("the database under test is out of the tests' reach (KIVA_DB unset): the race cannot be forced")


class SqliteWatch:
    """Whether this thread's request entered, then left, the driver's execute() of a query."""

    def __init__(self, sql: str):
        self.sql = sql.strip()
        self.entered, self.left = threading.Event(), threading.Event()
        self.left_at = 0.0

    def profile(self, frame, event: str, arg):
        # c_call/c_return/c_exception: a C function (sqlite3's Cursor.execute) called
        # from Python; its caller's `sql` is the statement (aiosql's adapters)
        if event.startswith("c_") and getattr(arg, "__name__", "") == "execute":
            if str(frame.f_locals.get("sql", "")).strip() == self.sql:
                if event == "c_call":
                    self.entered.set()
                else:
                    self.left_at = time.monotonic()
                    self.left.set()


def queries(driver: str):
    """The app's own queries (queries.sql), for a connection of the test's own."""
    return aiosql.from_path(os.path.join(HERE, "queries.sql"), driver)


def race(query: str, params: dict, request: Callable[[], Any], commit: bool = True) -> Any:
    """What `request()` (an HTTP request to the app) answers when its write of `query`
    waits for this test's own uncommitted write of the same query with `params`, which is
    then committed (or rolled back)."""
    driver, conn = database()
    app_queries = queries(driver)
    probes = aiosql.from_path(os.path.join(HERE, "tests", "race.sql"), driver) if driver == "psycopg" else None
    watch = SqliteWatch(getattr(app_queries, query).sql)

    def send():
        if driver == "sqlite3":  # only this thread's calls are watched
            sys.setprofile(watch.profile)
        try:
            return request()
        finally:
            sys.setprofile(None)

    try:
        if driver == "sqlite3":
            conn.execute("BEGIN IMMEDIATE")
        getattr(app_queries, query)(conn, **params)  # uncommitted: psycopg opened a transaction
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(send)
            waiting(driver, conn, probes, watch, answer)
            ending = time.monotonic()
            if commit:
                conn.commit()
            else:
                conn.rollback()
            result = answer.result(timeout=WAIT)
        if driver == "sqlite3":  # entered execute() before the commit, left it after: it waited
            assert watch.left.is_set() and watch.left_at > ending
        return result
    finally:
        conn.close()


def waiting(driver: str, conn, probes, watch: SqliteWatch, answer: concurrent.futures.Future):
    """Return once the app's write waits for the test's transaction; fail if it never does."""
    deadline = time.monotonic() + WAIT
    if driver == "sqlite3":
        while not watch.entered.wait(0.01):
            assert not answer.done(), f"the request ended without writing: {answer.result()}"
            assert time.monotonic() < deadline, "the request never wrote"
        # it cannot leave execute() before the commit: the test holds the write lock
        assert not watch.left.is_set()
        return
    import psycopg

    pid = probes.backend_pid(conn)
    with psycopg.connect(os.environ["KIVA_DB"], autocommit=True) as probe:
        while not probes.blocked_by(probe, pid=pid):
            assert not answer.done(), f"the request ended without waiting for the test's row: {answer.result()}"
            assert time.monotonic() < deadline, "the request never waited for the test's row"
            time.sleep(0.01)
