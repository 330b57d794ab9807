"""The users loader: users.in lines → CSV rows with bcrypt hashes (no server needed)."""

import csv
import io
import subprocess
import sys

import bcrypt

SCRIPT = "scripts/pass2csv.py"

USERS_IN = """# login password admin
calvin hobbes TRUE

hobbes susie FALSE
susie derkins
"""


def run(text: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, "--rounds", "4", *args], input=text, capture_output=True, text=True, check=False
    )


def test_pass2csv_rows():
    res = run(USERS_IN)
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert [(login, admin) for login, _, admin in rows] == [("calvin", "TRUE"), ("hobbes", "FALSE"), ("susie", "FALSE")]
    for (_, pword, _), password in zip(rows, ["hobbes", "susie", "derkins"], strict=True):
        assert pword.startswith("$2b$04$")
        assert bcrypt.checkpw(password.encode(), pword.encode())


def test_pass2csv_errors():
    for bad, message in [("lonely\n", "expecting"), ("moe pw maybe\n", "admin must be"), ("moe " + "x" * 73, "72")]:
        res = run(bad)
        assert res.returncode != 0 and message in res.stderr, (bad, res.stderr)
