"""Secrets at rest (issue #20 points 6 and 11): backups hold the users table and its hashes.

make backup under umask 022 writes a 0700 folder and 0600 files; its variables are never
pasted into a command (a `;` in BACKUP_DIR is part of a file name); pg_dump never gets the
connection string, which may hold a password, on its command line.
"""

import os
import sqlite3
import subprocess

import pytest
from helpers import EXTERNAL

pytestmark = pytest.mark.skipif(EXTERNAL, reason="runs make backup and backup.py here: in-process only")
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INJECTED = "x; echo INJECTED; touch injected"


def make(*args: str, cwd: str = HERE) -> str:
    res = subprocess.run(  # noqa: S603
        ["make", "--no-print-directory", "-C", HERE, *args],  # noqa: S607
        capture_output=True,
        text=True,
        cwd=cwd,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask: files readable by all unless made private
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_make_backup_variables_not_commands(tmp_path):
    for var in ("BACKUP_DIR", "BACKUP_SQLITE", "BACKUP_DB"):
        out = make("-n", "backup", f"{var}={INJECTED}")
        assert "echo INJECTED" not in out, out
    out = make("-n", "restore", f"BACKUP={INJECTED}")
    assert "echo INJECTED" not in out, out


def test_sqlite_backup_private_whatever_the_umask(tmp_path):
    db = tmp_path / "kiva.db"
    with sqlite3.connect(db) as conn:  # a users table with a hash, as the app's
        conn.execute("CREATE TABLE Utilisateur(login TEXT, password TEXT)")
        conn.execute("INSERT INTO Utilisateur VALUES ('calvin', '$2b$12$hash')")
        conn.execute("CREATE TABLE _yoyo_migration(migration_id TEXT)")  # the schema version
        conn.execute("INSERT INTO _yoyo_migration VALUES ('0003.name')")
    folder = tmp_path / INJECTED  # a `;` in the name: a folder of that name, nothing run
    out = make("backup", f"BACKUP_SQLITE={db}", f"BACKUP_DIR={folder}", cwd=str(tmp_path))
    assert "backup: " in out and "INJECTED\n" not in out.replace("echo INJECTED", "")
    assert not (tmp_path / "injected").exists() and not os.path.exists(os.path.join(HERE, "injected"))
    assert os.stat(folder).st_mode & 0o777 == 0o700
    files = sorted(os.listdir(folder))
    assert len(files) == 2 and files[0].endswith(".dump.db") and files[1].endswith(".dump.db.json"), files
    assert all(os.stat(folder / name).st_mode & 0o777 == 0o600 for name in files)
    # an existing folder of ours left open to others is closed
    os.chmod(folder, 0o755)  # noqa: S103  # the mistake the backup repairs
    make("backup", f"BACKUP_SQLITE={db}", f"BACKUP_DIR={folder}", cwd=str(tmp_path))
    assert os.stat(folder).st_mode & 0o777 == 0o700 and len(os.listdir(folder)) == 4


@pytest.mark.skipif("KIVA_DB" not in os.environ, reason="PostgreSQL runs only (make test-pg)")
def test_pg_backup_no_password_on_command_lines(tmp_path, monkeypatch):
    from scripts import backup

    seen: list[list[str]] = []
    popen = subprocess.Popen

    def spy(args, *rest, **kwargs):
        seen.append([str(a) for a in args])
        return popen(args, *rest, **kwargs)

    monkeypatch.setattr(backup.subprocess, "Popen", spy)
    # the test cluster trusts local connections: the password is carried, and ignored
    conn = os.environ["KIVA_DB"] + " password=not-on-a-command-line"
    old = os.umask(0o022)
    try:
        manifest = backup.backup("psycopg", conn, str(tmp_path / "backups"))
    finally:
        os.umask(old)
    assert seen and seen[0][0].endswith("pg_dump")
    assert not any("not-on-a-command-line" in arg or "dbname=" in arg for args in seen for arg in args), seen
    assert os.stat(tmp_path / "backups").st_mode & 0o777 == 0o700
    for path in (manifest["file"], manifest["file"] + ".json"):
        assert os.stat(path).st_mode & 0o777 == 0o600
    assert manifest["rows"] > 0
