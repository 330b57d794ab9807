"""Test set-up shared by every test file.

The same tests run in-process (FLASK_TESTER_APP=app, with APP_CONFIG naming the
backend) and against a live server (FLASK_TESTER_APP=http://host:port[/prefix]):
they only talk HTTP through FlaskTester's `ft_client`, create their own rows with
unique names and remove them, so they run in any order, on a long-lived server too.
"""

import base64
import concurrent.futures
import datetime
import hashlib
import os
import threading
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


def new_address() -> str:
    """A client address of its own (10.x.y.z), sent as X-Forwarded-For.

    make check trusts 127.0.0.1 as a proxy (APP_TRUSTED_PROXIES): each test then has
    its own address for the login throttle, whose per-address count would otherwise
    pile up over the whole suite on 127.0.0.1.
    """
    a, b, c = uuid.uuid4().bytes[:3]
    return f"10.{a}.{b}.{c}"


class Client:
    """FlaskTester's client, from one client address: `api.get(path, status, login=…, …)`."""

    def __init__(self, client, address: str):
        self._client = client
        self.address = address

    def request(self, method: str, path: str, status: int | None = None, content: str | None = None, **kwargs):
        kwargs["headers"] = {"X-Forwarded-For": self.address, **(kwargs.get("headers") or {})}
        return self._client.request(method, path, status=status, content=content, **kwargs)

    def get(self, path: str, status: int | None = None, content: str | None = None, **kwargs):
        return self.request("GET", path, status, content, **kwargs)

    def post(self, path: str, status: int | None = None, content: str | None = None, **kwargs):
        return self.request("POST", path, status, content, **kwargs)

    def put(self, path: str, status: int | None = None, content: str | None = None, **kwargs):
        return self.request("PUT", path, status, content, **kwargs)

    def patch(self, path: str, status: int | None = None, content: str | None = None, **kwargs):
        return self.request("PATCH", path, status, content, **kwargs)

    def delete(self, path: str, status: int | None = None, content: str | None = None, **kwargs):
        return self.request("DELETE", path, status, content, **kwargs)

    def from_address(self, address: str) -> "Client":
        """The same client, from another address."""
        return Client(self._client, address)


@pytest.fixture
def api(ft_client):
    """The application under test, without credentials unless a login is given."""
    return Client(ft_client, new_address())


def register(api, prefix: str = "user", password: str = "password") -> tuple[str, str, int]:  # noqa: S107
    """A fresh user, registered through the API: login, password, uid."""
    login = unique(prefix)
    uid = api.post("/register", 201, data={"login": login, "pword": password}).json["uid"]
    return login, password, uid


def basic(login: str, password: str) -> dict[str, str]:
    """Headers for HTTP basic authentication."""
    credentials = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def bearer(token: str) -> dict[str, str]:
    """Headers for token authentication."""
    return {"Authorization": f"Bearer {token}"}


def forge_token(login: str, minutes: float = 60, realm: str = "kiva", secret: str | None = None) -> str:
    """A FlaskSimpleAuth token "realm:login:limit:signature", signed like the server does.

    The tests know the server's secret (APP_SECRET, a test-only value set by the
    Makefile): they can make expired tokens or tokens for another realm without waiting.
    """
    secret = secret or os.environ.get("APP_SECRET")
    assert secret, "APP_SECRET must be set for the token tests (make check sets it)"
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
    data = f"{realm}:{login}:{when:%Y%m%d%H%M%S}"
    signature = hashlib.blake2s(f"{data}:{secret}".encode()).digest()[:16].hex()
    return f"{data}:{signature}"


class Raw:
    """Raw HTTP, for what FlaskTester does not send: bodies that are not a dict.

    Against a live server it is a requests session; in-process a Flask test client.
    Responses offer status_code, headers and json (None if the body is not JSON).
    """

    def __init__(self):
        self.address = new_address()
        if EXTERNAL:
            import requests

            self._session = requests.Session()
        else:
            from app import app

            self._client = app.test_client()

    def request(self, method: str, path: str, **kwargs):
        kwargs["headers"] = {"X-Forwarded-For": self.address, **(kwargs.get("headers") or {})}
        if EXTERNAL:
            res = self._session.request(method, os.environ["FLASK_TESTER_APP"] + path, timeout=30, **kwargs)
            try:
                res.json_body = res.json()
            except ValueError:
                res.json_body = None
            return res
        res = self._client.open(path, method=method, **kwargs)
        res.json_body = res.get_json(silent=True)
        return res


def in_parallel(requests: list[tuple[str, str, dict]]) -> list[tuple[int, dict | None]]:
    """Send requests at the same time, each from its own thread and connection.

    Returns (status, JSON body) in order.
    """
    barrier = threading.Barrier(len(requests))

    def send(method: str, path: str, kwargs: dict):
        raw = Raw()
        barrier.wait()
        res = raw.request(method, path, **kwargs)
        return res.status_code, res.json_body

    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        futures = [pool.submit(send, *request) for request in requests]
        return [f.result() for f in futures]


@pytest.fixture
def raw():
    return Raw()
