"""Fixtures shared by every test file (helpers.py holds the rest).

The same tests run in-process (FLASK_TESTER_APP=app, with APP_CONFIG naming the
backend) and against a live server (FLASK_TESTER_APP=http://host:port[/prefix]):
they only talk HTTP through FlaskTester's `ft_client`, create their own rows with
unique names and remove them, so they run in any order, on a long-lived server too.
"""

import os
import subprocess
import sys

import pytest
from helpers import SEED_PASSWORDS, Client, Raw, database_counts, new_address, seed_counts

# FlaskTester's fixtures: ft_authenticator, ft_client
pytest_plugins = ["FlaskTester"]

os.environ.setdefault("FLASK_TESTER_AUTH", ",".join(f"{u}:{p}" for u, p in SEED_PASSWORDS.items()))


@pytest.fixture
def api(ft_client):
    """The application under test, without credentials unless a login is given, from a
    client address of the test's own (see helpers.new_address)."""
    return Client(ft_client, new_address())


@pytest.fixture
def raw():
    return Raw()


@pytest.fixture(scope="session", autouse=True)
def leaves_the_data_as_found():
    """The suite leaves the rows as it found them: per-table row counts at the end of
    the session against those of the start. With KIVA_SEED_CHECK=1 (make check, whose
    every run starts on a freshly seeded database) against those of data.sql itself."""
    before = database_counts()
    if before is not None and os.environ.get("KIVA_SEED_CHECK") == "1":
        before = seed_counts()
    yield
    if before is not None:
        assert database_counts() == before, "the suite left rows behind, or removed some"


@pytest.fixture
def oddly_named_process():
    """A process whose command name is not UTF-8 (a byte 0xc7 alone: what a name cut at
    /proc's 15 bytes in the middle of a character leaves, as mutmut's workers show)."""
    child = subprocess.Popen(  # noqa: S603 (this interpreter)
        [sys.executable, "-c", "open('/proc/self/comm', 'wb').write(b'odd\\xc7name'); print(1, flush=True); input()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdout and child.stdout.readline() == b"1\n"
    with open(f"/proc/{child.pid}/comm", "rb") as comm:
        assert comm.read() == b"odd\xc7name\n"
    yield child.pid
    child.kill()
    child.wait()
