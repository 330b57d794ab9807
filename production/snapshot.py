"""Per-table row counts and checksums of a database: what an upgrade, a backup and a
restore must keep. The same on both engines, computed from the rows as the driver
returns them, in primary key order (the first column of every Kiva table).

    python -m production.snapshot [--sqlite] CONN     # prints {"table": [rows, "sha256"], …} as JSON
"""

import argparse
import contextlib
import hashlib
import json
import os
import sqlite3

import aiosql
import psycopg
from psycopg import sql

CATALOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "snapshot.sql")
PG = aiosql.from_path(CATALOG, "psycopg")
SQLITE = aiosql.from_path(CATALOG, "sqlite3")


def connect(engine: str, conn: str):
    return sqlite3.connect(conn) if engine == "sqlite3" else psycopg.connect(conn)


def tables(engine: str, db) -> list[str]:
    rows = SQLITE.sqlite_tables(db) if engine == "sqlite3" else PG.pg_tables(db)
    return [row[0] for row in rows]


def rows(engine: str, db, table: str):
    """Every row of a table, in the order of its first column (a catalog name, quoted)."""
    if engine == "sqlite3":
        quoted = '"' + table.replace('"', '""') + '"'
        cursor = db.execute(f"SELECT * FROM {quoted} ORDER BY 1")  # noqa: S608 (a catalog name)
    else:
        cursor = db.execute(sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(table)))
    names = [d[0].lower() for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def table_snapshot(
    engine: str, db, table: str, columns: set[str] | None = None, renamed: dict[str, str] | None = None
) -> tuple[int, str]:
    """(rows, sha256 of the rows), over these columns only if given, some known by
    their former names (renamed: {name: former name})."""
    digest, count = hashlib.sha256(), 0
    for row in rows(engine, db, table):
        named = {(renamed or {}).get(k, k): v for k, v in row.items()}
        kept = {k: v for k, v in named.items() if columns is None or k in columns}
        digest.update(repr(sorted(kept.items())).encode())
        count += 1
    return count, digest.hexdigest()


def snapshot(
    engine: str, conn: str, columns: dict[str, set[str]] | None = None, renamed: dict[str, dict] | None = None
) -> dict[str, list]:
    """{table: [rows, checksum]} for every table (only those of `columns` if given)."""
    with contextlib.closing(connect(engine, conn)) as db:
        names = list(columns) if columns else tables(engine, db)
        return {
            t: list(table_snapshot(engine, db, t, columns[t] if columns else None, (renamed or {}).get(t.lower())))
            for t in names
        }


def main():
    parser = argparse.ArgumentParser(description="per-table row counts and checksums")
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("conn")
    args = parser.parse_args()
    print(json.dumps(snapshot("sqlite3" if args.sqlite else "psycopg", args.conn), indent=1))


if __name__ == "__main__":
    main()
