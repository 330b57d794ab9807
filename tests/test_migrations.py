"""Schema migrations (production/migrate.py): create*.sql is the latest schema, and a failed
migration leaves the database at the version before it. In-process only: these tests
make scratch databases next to the configured one (a file, or a database of the
same PostgreSQL cluster)."""

import contextlib
import os
import shutil
import uuid

import aiosql
import psycopg
import pytest
from helpers import EXTERNAL

from production import migrate, snapshot

pytestmark = pytest.mark.skipif(EXTERNAL, reason="scratch databases beside the app's: in-process only")

CATALOG = aiosql.from_path(snapshot.CATALOG, "psycopg")
SQLITE_CATALOG = aiosql.from_path(snapshot.CATALOG, "sqlite3")


@pytest.fixture
def scratch(tmp_path):
    """A factory of empty scratch databases of the configured engine: (engine, conn)."""
    from app import app

    engine, conn = app.config["ANODB"]["db"], app.config["ANODB"]["conn"]
    created = []

    def make() -> tuple[str, str]:
        name = f"kiva_scratch_{uuid.uuid4().hex[:10]}"
        if engine == "sqlite3":
            return engine, str(tmp_path / f"{name}.db")
        with psycopg.connect(conn, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")  # a generated name
        created.append(name)
        return engine, psycopg.conninfo.make_conninfo(conn, dbname=name)

    yield make
    if created:
        with psycopg.connect(conn, autocommit=True) as admin:
            for name in created:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def schema(engine: str, conn: str) -> list[tuple]:
    with contextlib.closing(snapshot.connect(engine, conn)) as db:
        if engine == "sqlite3":
            return [tuple(r) for r in SQLITE_CATALOG.sqlite_schema(db)]
        return [tuple(r) for r in CATALOG.pg_schema(db)]


def test_create_sql_is_the_latest_schema(scratch):
    engine, migrated = scratch()
    assert migrate.upgrade(engine, migrated) == migrate.expected(engine)
    engine, created = scratch()
    create = "create-sqlite.sql" if engine == "sqlite3" else "create.sql"
    migrate.run_script(engine, created, os.path.join(migrate.ROOT, create))
    expected = schema(engine, migrated)
    assert any(kind == "column" and "version" in definition for kind, _, definition in expected)
    assert schema(engine, created) == expected


def test_failed_migration_keeps_the_previous_version(scratch, tmp_path):
    engine, conn = scratch()
    latest = migrate.upgrade(engine, conn)
    before = snapshot.snapshot(engine, conn)
    # the shipped migrations, and a next one failing after a first successful statement
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, folder)
    last = max(m.id for m in migrate.migrations(engine))
    (folder / f"{latest + 1:04d}.broken.sql").write_text(
        f"-- depends: {last}\nALTER TABLE Stuff ADD COLUMN broken INTEGER;\nINSERT INTO Stuff(stuff) VALUES ('x');\n"
        "SELECT no_such_column FROM Stuff;\n"
    )
    with pytest.raises((psycopg.Error, migrate.sqlite3.Error)):
        migrate.upgrade(engine, conn, folder=str(folder))
    assert migrate.version(engine, conn) == latest
    assert snapshot.snapshot(engine, conn) == before  # no column, no row, no bookkeeping
    assert not any("broken" in definition for _, _, definition in schema(engine, conn))
