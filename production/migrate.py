"""Schema versions: forward-only SQL migrations, applied by yoyo-migrations.

migrations/NNNN.name.sql serve both engines, migrations/postgresql/ and
migrations/sqlite/ hold the ones whose SQL differs (0001.baseline: create.sql and
create-sqlite.sql as they were when Kiva went live). Each file names the one before
it (`-- depends:`), so that the order does not hang on folders. yoyo applies each
migration in one transaction, on PostgreSQL and SQLite alike (both have
transactional DDL): a failed one is rolled back and the database stays at the
previous version. yoyo records what is applied in its table _yoyo_migration; the
version of the schema is the number of the last migration applied (`/version`
reads it with queries.sql's get_schema_version).

    python -m production.migrate [--sqlite] CONN upgrade        # apply what is pending, print the version
    python -m production.migrate [--sqlite] CONN init [DATA…]   # drop everything, upgrade, load DATA files
    python -m production.migrate [--sqlite] CONN version        # the version the database is at
    python -m production.migrate expected                       # the version this code needs

CONN is a libpq connection string (PostgreSQL) or a file name (SQLite).
"""

import argparse
import contextlib
import os
import sqlite3
import urllib.parse

import psycopg
import yoyo

# the project's root: production/ is one level below it
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIGRATIONS = os.path.join(ROOT, "migrations")
ENGINE_FOLDER = {"sqlite3": "sqlite", "psycopg": "postgresql"}


def yoyo_uri(engine: str, conn: str) -> str:
    """yoyo's URI for an anodb engine and connection string (libpq or a file)."""
    if engine == "sqlite3":
        return f"sqlite:///{os.path.abspath(conn)}"
    params = psycopg.conninfo.conninfo_to_dict(conn)
    dbname = params.pop("dbname")
    # every libpq parameter (host, port, user, password…) goes to psycopg.connect as is
    return f"postgresql+psycopg:///{dbname}?{urllib.parse.urlencode(params)}"


def migrations(engine: str, folder: str = MIGRATIONS):
    """The migrations of this engine: the shared ones and its own."""
    return yoyo.read_migrations(folder, os.path.join(folder, ENGINE_FOLDER[engine]))


def number(migration_id: str) -> int:
    """0002.row-version → 2: a migration's version number."""
    return int(migration_id.split(".", 1)[0])


def expected(engine: str = "psycopg", folder: str = MIGRATIONS) -> int:
    """The schema version this code needs: its latest migration."""
    return max(number(m.id) for m in migrations(engine, folder))


def version(engine: str, conn: str) -> int:
    """The schema version the database is at (0: nothing applied)."""
    with yoyo.get_backend(yoyo_uri(engine, conn)) as backend:
        applied = set(backend.get_applied_migration_hashes())
        return max((number(m.id) for m in migrations(engine) if m.hash in applied), default=0)


def upgrade(engine: str, conn: str, target: int | None = None, folder: str = MIGRATIONS) -> int:
    """Apply the pending migrations (up to target), one transaction each; the version reached.

    A failed migration raises, after its rollback: the ones before it stay applied.
    yoyo's lock (its table yoyo_lock) keeps two deployments from migrating at once.
    """
    with yoyo.get_backend(yoyo_uri(engine, conn)) as backend:
        with backend.lock():
            pending = backend.to_apply(migrations(engine, folder))
            if target is not None:
                pending = pending.filter(lambda m: number(m.id) <= target)
            backend.apply_migrations(pending)
    return version(engine, conn)


def run_script(engine: str, conn: str, path: str):
    """Run a SQL script (drop.sql, data.sql…) in one transaction."""
    with open(path) as script:
        sql = script.read()
    if engine == "sqlite3":
        with contextlib.closing(sqlite3.connect(conn)) as lite, lite:  # rolled back on an error
            lite.executescript(f"BEGIN;\n{sql}\nCOMMIT;")
    else:
        with psycopg.connect(conn) as pg:  # one transaction, committed at the end
            pg.execute(sql)  # type: ignore[arg-type]  # a script of ours, no parameter


def init(engine: str, conn: str, data: list[str]) -> int:
    """Drop every table, upgrade to the latest version, load the data files."""
    run_script(engine, conn, os.path.join(ROOT, "drop.sql"))
    reached = upgrade(engine, conn)
    for path in data:
        run_script(engine, conn, path)
    return reached


def main():
    parser = argparse.ArgumentParser(description="Kiva's schema migrations (yoyo-migrations)")
    parser.add_argument("--sqlite", action="store_true", help="CONN is a SQLite file")
    parser.add_argument("conn", help="libpq connection string (-: from KIVA_MIGRATE_DB), or SQLite file with --sqlite")
    parser.add_argument("action", nargs="?", choices=["upgrade", "init", "version"], default="upgrade")
    parser.add_argument("data", nargs="*", help="init: data files to load after the schema")
    args = parser.parse_args()
    if args.conn == "expected":  # python -m production.migrate expected
        print(expected())
        return
    engine = "sqlite3" if args.sqlite else "psycopg"
    if args.conn == "-":  # a connection string that may hold a password: never on a command line
        args.conn = os.environ.get("KIVA_MIGRATE_DB") or parser.error("CONN -: KIVA_MIGRATE_DB is not set")
    if args.action == "upgrade":
        print(upgrade(engine, args.conn))
    elif args.action == "init":
        print(init(engine, args.conn, args.data))
    else:
        print(version(engine, args.conn))


if __name__ == "__main__":
    main()
