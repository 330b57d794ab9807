"""Test set-up shared by every test file.

The same tests run in-process (FLASK_TESTER_APP=app, with APP_CONFIG naming the
backend) and against a live server (FLASK_TESTER_APP=http://host:port[/prefix]):
they only talk HTTP through FlaskTester's `ft_client`, create their own rows with
unique names and remove them, so they run in any order, on a long-lived server too.
"""

import os
import uuid

import pytest

# FlaskTester's fixtures: ft_authenticator, ft_client
pytest_plugins = ["FlaskTester"]

# the seed users of data.sql, by login: password
SEED_PASSWORDS = {"calvin": "hobbes", "hobbes": "susie", "susie": "derkins"}
os.environ.setdefault("FLASK_TESTER_AUTH", ",".join(f"{u}:{p}" for u, p in SEED_PASSWORDS.items()))

EXTERNAL = os.environ.get("FLASK_TESTER_APP", "app").startswith("http")


def unique(prefix: str) -> str:
    """A name no other test (nor another run on the same database) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def api(ft_client):
    """The application under test, without credentials unless a login is given."""
    return ft_client
