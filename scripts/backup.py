"""Backups and restores of Kiva's database, verified by per-table counts and checksums.

    python -m scripts.backup backup [--sqlite] CONN DIR      # → DIR/kiva-<time>-schema<N>.dump[.db] (+ .json)
    python -m scripts.backup restore [--sqlite] CONN BACKUP  # a new database, verified, made the app's

PostgreSQL: `pg_dump -Fc` (custom format: compressed, restored by pg_restore), run with a
PostgreSQL superuser's CONN so that every table, owner and grant is in it. The
manifest (BACKUP.json) holds each table's row count and checksum, computed in the
very snapshot pg_dump copies (pg_export_snapshot + pg_dump --snapshot). A restore goes
into a new database, <db>_r<time>, by pg_restore in one transaction; it is compared
with the manifest, and only then made the app's: it takes the old one's owner,
connection limit and grants, the old one is closed to connections, its sessions ended,
and the two are renamed (deploy/restore-switch.sql): the old one is kept as
<db>_before_<time>. The app's connection string does not change; its connections,
ended, are opened again by the app on its next requests (database.py).

Secrets at rest: backups hold the users table with its password hashes. The folder of
backups is made 0700 (refused if another account owns it), and every file written there
(dump, manifest) is 0600, whatever the umask. No password on a command line, where any
local account sees it (ps, /proc): CONN "-" is read from the environment variable
BACKUP_DB (as make backup passes it), and pg_dump, pg_restore and psql get the
connection through libpq's environment variables (PGHOST, PGPASSWORD…), never `-d CONN`.
A password is best kept in a PGPASSFILE (~/.pgpass, 0600) and out of CONN altogether.

SQLite: the online backup API (sqlite3.Connection.backup) copies a consistent snapshot
while the app runs; the manifest is computed from the copy. A restore copies the
backup to a new file, checks it, then copies it into the app's file with the same API,
in one locked step that the app's connections see as one transaction.
"""

import argparse
import contextlib
import datetime
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time

import aiosql
import psycopg
from psycopg import sql

from production import snapshot

# the project's root: scripts/ is one level below it
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWITCH = os.path.join(HERE, "deploy", "restore-switch.sql")
QUERIES = os.path.join(HERE, "queries.sql")
PG, SQLITE = aiosql.from_path(QUERIES, "psycopg"), aiosql.from_path(QUERIES, "sqlite3")
PG_BIN = os.environ.get("PG_BIN", "")  # pg_dump, pg_restore, psql: from the PATH by default


def stamp() -> str:
    """Now, to the millisecond: two backups in one second (a retry, a test) are two files, the
    second never overwrites the first."""
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def schema_version(engine: str, db) -> int:
    """The schema version of the database (queries.sql's, as /version says it)."""
    return (PG if engine == "psycopg" else SQLITE).get_schema_version(db) or 0


def tool(name: str) -> str:
    return os.path.join(PG_BIN, name) if PG_BIN else name


# libpq's connection parameters and the environment variables that carry them
LIBPQ_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


def libpq_env(conn: str) -> dict[str, str]:
    """The environment of a PostgreSQL tool connecting with CONN: no secret in its arguments."""
    env = dict(os.environ)  # what CONN does not say comes from there, as for psycopg
    for key, value in psycopg.conninfo.conninfo_to_dict(conn).items():
        if key not in LIBPQ_ENV:
            raise SystemExit(f"connection parameter {key}: not passed to the PostgreSQL tools (use a service file)")
        env[LIBPQ_ENV[key]] = str(value)
    return env


def private_folder(folder: str):
    """The folder of backups, created 0700, or one of this account's made 0700."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    found = os.lstat(folder)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
        raise SystemExit(f"{folder}: not a folder of this account: backups hold password hashes")
    os.chmod(folder, 0o700)


def backup_pg(conn: str, folder: str) -> dict:
    with psycopg.connect(conn) as db:
        db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        exported = db.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
        schema = schema_version("psycopg", db)
        path = os.path.join(folder, f"kiva-{stamp()}-schema{schema}.dump")
        start = time.monotonic()
        dump = subprocess.Popen([tool("pg_dump"), "-Fc", f"--snapshot={exported}", "-f", path], env=libpq_env(conn))  # noqa: S603
        tables = {t: list(snapshot.table_snapshot("psycopg", db, t)) for t in snapshot.tables("psycopg", db)}
        if dump.wait() != 0:
            raise SystemExit(f"pg_dump failed ({dump.returncode})")
        seconds = time.monotonic() - start
        db.rollback()
    return {"engine": "psycopg", "file": path, "schema": schema, "seconds": seconds, "tables": tables}


def backup_sqlite(conn: str, folder: str) -> dict:
    start = time.monotonic()
    partial = os.path.join(folder, f".kiva-{stamp()}.partial")
    with contextlib.closing(sqlite3.connect(conn)) as src, contextlib.closing(sqlite3.connect(partial)) as dst:
        src.backup(dst)  # the online backup API: a consistent copy while the app writes
    seconds = time.monotonic() - start
    tables = snapshot.snapshot("sqlite3", partial)
    with contextlib.closing(sqlite3.connect(partial)) as db:
        schema = schema_version("sqlite3", db)
    path = os.path.join(folder, f"kiva-{stamp()}-schema{schema}.dump.db")
    os.replace(partial, path)
    return {"engine": "sqlite3", "file": path, "schema": schema, "seconds": seconds, "tables": tables}


def backup(engine: str, conn: str, folder: str) -> dict:
    private_folder(folder)
    # every file created from here on (pg_dump's too: it inherits it) is 0600
    umask = os.umask(0o077)
    try:
        manifest = backup_sqlite(conn, folder) if engine == "sqlite3" else backup_pg(conn, folder)
        manifest["bytes"] = os.path.getsize(manifest["file"])
        manifest["rows"] = sum(count for count, _ in manifest["tables"].values())
        with open(manifest["file"] + ".json", "w") as out:
            json.dump(manifest, out, indent=1)
    finally:
        os.umask(umask)
    return manifest


def verify(engine: str, conn: str, manifest: dict):
    """The database holds exactly the backup's rows: every table's count and checksum."""
    found = snapshot.snapshot(engine, conn)
    if found != manifest["tables"]:
        differ = sorted(t for t in set(found) | set(manifest["tables"]) if found.get(t) != manifest["tables"].get(t))
        raise SystemExit(f"restore verification failed, tables differ: {', '.join(differ)}")


def psql(conn: str, *args: str):
    subprocess.run([tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *args], env=libpq_env(conn), check=True)  # noqa: S603


def restore_pg(conn: str, manifest: dict) -> dict:
    params = psycopg.conninfo.conninfo_to_dict(conn)
    live, when = params["dbname"], stamp().lower()
    new, old = f"{live}_r{when}", f"{live}_before_{when}"
    admin = psycopg.conninfo.make_conninfo(conn, dbname="postgres")
    target = psycopg.conninfo.make_conninfo(conn, dbname=new)
    start = time.monotonic()
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(new)))
    restored = subprocess.run(  # noqa: S603
        [tool("pg_restore"), "--exit-on-error", "--single-transaction", "-d", new, manifest["file"]],
        env=libpq_env(target),  # -d: the database's name only, the rest (and any password) from there
    )
    if restored.returncode != 0:
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(new)))
        raise SystemExit(f"pg_restore failed ({restored.returncode}): {live} untouched")
    restore_seconds = time.monotonic() - start
    start = time.monotonic()
    verify("psycopg", target, manifest)
    verify_seconds = time.monotonic() - start
    start = time.monotonic()
    psql(admin, "-v", f"db={live}", "-v", f"new={new}", "-v", f"old={old}", "-f", SWITCH)
    switch_seconds = time.monotonic() - start
    return {"database": live, "previous": old, "restore": restore_seconds, "verify": verify_seconds,
            "switch": switch_seconds}  # fmt: skip


def restore_sqlite(conn: str, manifest: dict) -> dict:
    new = f"{conn}.r{stamp().lower()}"
    start = time.monotonic()
    with contextlib.closing(sqlite3.connect(manifest["file"])) as src, contextlib.closing(sqlite3.connect(new)) as dst:
        src.backup(dst)
    restore_seconds = time.monotonic() - start
    start = time.monotonic()
    verify("sqlite3", new, manifest)
    verify_seconds = time.monotonic() - start
    start = time.monotonic()
    with contextlib.closing(sqlite3.connect(new)) as src, contextlib.closing(sqlite3.connect(conn)) as dst:
        src.backup(dst)  # one locked step: the app's connections see the restored rows next
    switch_seconds = time.monotonic() - start
    verify("sqlite3", conn, manifest)
    os.remove(new)
    return {"database": conn, "restore": restore_seconds, "verify": verify_seconds, "switch": switch_seconds}


def restore(engine: str, conn: str, path: str) -> dict:
    with open(path + ".json") as manifest_file:
        manifest = json.load(manifest_file)
    manifest["file"] = path  # the backup may have been moved since
    if manifest["engine"] != engine:
        raise SystemExit(f"a {manifest['engine']} backup cannot be restored into {engine}")
    return restore_sqlite(conn, manifest) if engine == "sqlite3" else restore_pg(conn, manifest)


def flush_shared_cache():
    """The app's shared cache (KIVA_REDIS, if set) forgets the replaced database's rows
    (docs/shared-cache.md); otherwise its entries are trusted for usercache.MAX_AGE more."""
    if os.environ.get("KIVA_REDIS"):
        from production import usercache  # its flask and redis: only when there is a cache

        if not usercache.flush(os.environ["KIVA_REDIS"]):
            print(f"restore: WARNING: the shared cache was not flushed ({usercache.MAX_AGE:.0f} s of stale entries)")


def main():
    parser = argparse.ArgumentParser(description="Kiva's database backups and restores")
    parser.add_argument("action", choices=["backup", "restore"])
    parser.add_argument("--sqlite", action="store_true", help="CONN is a SQLite file")
    parser.add_argument(
        "conn", help="libpq connection string of a superuser (-: from BACKUP_DB), or SQLite file with --sqlite"
    )
    parser.add_argument("path", help="backup: the folder of backups; restore: the backup file")
    args = parser.parse_args()
    engine = "sqlite3" if args.sqlite else "psycopg"
    if args.conn == "-":  # a connection string that may hold a password: never on a command line
        args.conn = os.environ.get("BACKUP_DB") or parser.error("CONN -: BACKUP_DB is not set")
    if args.action == "backup":
        manifest = backup(engine, args.conn, args.path)
        print(
            f"backup: {manifest['file']} ({manifest['bytes']} bytes, {manifest['rows']} rows, "
            f"schema {manifest['schema']}) in {manifest['seconds']:.2f} s"
        )
    else:
        done = restore(engine, args.conn, args.path)
        flush_shared_cache()
        print(
            f"restore: {args.path} into {done['database']}: restored in {done['restore']:.2f} s, "
            f"verified in {done['verify']:.2f} s, switched in {done['switch']:.3f} s"
            + (f", previous database kept as {done['previous']}" if "previous" in done else "")
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
