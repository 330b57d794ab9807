"""The upgrade test (make test-sqlite, make test-pg): a database created at the baseline
schema as databases were before migrations existed (drop.sql, the baseline's SQL, no
migration table: what `make deploy DB_INIT=1` used to do), filled with the seed data
and generated rows, then upgraded to the latest migration: every row must still be
there, with the same values in the columns the baseline had (row count and checksum
per table, before and after). The baseline's CREATE … IF NOT EXISTS make migration 0001
a no-op on such a database: it is adopted, then migrated. The Makefile then runs the
whole test suite on the upgraded database.

    python drills/upgrade.py [--sqlite] CONN [ROWS]
"""

import argparse
import contextlib
import os
import sys
import time

import aiosql

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from production import migrate, snapshot  # noqa: E402

FILL = os.path.join(HERE, "fill.sql")
# columns renamed since the baseline, by table: {name: name at the baseline}
RENAMED = {"authfailure": {"name": "login"}}  # migration 0003


def fill(engine: str, conn: str, n: int, baseline: bool = True):
    """n stuff, n/4 users with 2 objects each, n/10 owners with 10 things each, and at
    the baseline schema (only) failed logins."""
    queries = aiosql.from_path(FILL, engine)
    with contextlib.closing(snapshot.connect(engine, conn)) as db:
        queries.fill_stuff(db, [{"stuff": f"upgrade-stuff-{i}"} for i in range(n)])
        users = [f"upgrade-user-{i}" for i in range(n // 4)]
        queries.fill_user(db, [{"login": u, "pword": "-", "isadmin": i % 50 == 0} for i, u in enumerate(users)])
        queries.fill_owned(db, [{"object": f"upgrade-object-{j}", "login": u} for u in users for j in range(2)])
        owners = [f"upgrade-owner-{i}" for i in range(n // 10)]
        queries.fill_owner(db, [{"oname": o, "omail": f"{o}@example.org"} for o in owners])
        things = [{"tname": f"upgrade-thing-{j}", "oname": o, "tprice": j * 1.25} for o in owners for j in range(10)]
        queries.fill_thing(db, things)
        if baseline:  # AuthFailure changed in migration 0003
            failures = [{"login": f"upgrade-nobody-{i}", "failures": 1, "since": 0.5} for i in range(10)]
            queries.fill_auth_failure(db, failures)
        db.commit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("conn")
    parser.add_argument("rows", nargs="?", type=int, default=4000)
    args = parser.parse_args()
    engine = "sqlite3" if args.sqlite else "psycopg"
    migrate.run_script(engine, args.conn, os.path.join(migrate.ROOT, "drop.sql"))
    folder = os.path.join(migrate.MIGRATIONS, migrate.ENGINE_FOLDER[engine])
    migrate.run_script(engine, args.conn, os.path.join(folder, "0001.baseline.sql"))
    migrate.run_script(engine, args.conn, os.path.join(migrate.ROOT, "data.sql"))
    fill(engine, args.conn, args.rows)
    with contextlib.closing(snapshot.connect(engine, args.conn)) as db:
        app_tables = [t for t in snapshot.tables(engine, db) if "yoyo" not in t]
        columns = {t: {c for row in snapshot.rows(engine, db, t) for c in row} for t in app_tables}
    before = snapshot.snapshot(engine, args.conn, columns)
    start = time.monotonic()
    assert migrate.version(engine, args.conn) == 0, "a database of before the migrations has no version"
    reached = migrate.upgrade(engine, args.conn)
    took = time.monotonic() - start
    after = snapshot.snapshot(engine, args.conn, columns, RENAMED)
    total = sum(count for count, _ in before.values())
    print(
        f"upgrade test ({engine}): version 0 (baseline, no migration table) → {reached} "
        f"in {took:.2f} s, {total} rows in {len(before)} tables"
    )
    for table in before:
        print(f"  {table}: {before[table][0]} rows, {before[table][1][:16]}… before, {after[table][1][:16]}… after")
    assert reached == migrate.expected(engine), f"upgraded to {reached}, expected {migrate.expected(engine)}"
    assert after == before, "rows lost or changed by the upgrade"
    print("upgrade test: every row kept")


if __name__ == "__main__":
    main()
