"""What the tests share besides fixtures: names, credentials, raw HTTP, the audit log,
the route table and the database's row counts. conftest.py holds the fixtures only.

The same tests run in-process (FLASK_TESTER_APP=app, with APP_CONFIG naming the
backend) and against a live server (FLASK_TESTER_APP=http://host:port[/prefix]).
"""

import base64
import contextlib
import datetime
import hashlib
import importlib
import json
import logging
import os
import re
import sqlite3
import time
import uuid

# the seed users of data.sql, by login: password
SEED_PASSWORDS = {"calvin": "hobbes", "hobbes": "susie", "susie": "derkins"}

EXTERNAL = os.environ.get("FLASK_TESTER_APP", "app").startswith("http")
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def unique(prefix: str) -> str:
    """A name no other test (nor another run on the same database) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


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


# the realm field of the server's tokens: the app's name and the token lifetime (app.conf)
TOKEN_REALM = f"kiva/{float(os.environ.get('KIVA_TOKEN_MINUTES', '60')):g}m"


def token_limit(token: str) -> datetime.datetime:
    """The expiry of a FlaskSimpleAuth token "realm/<lifetime>m:login:limit:signature" (UTC)."""
    limit = token.split(":")[2]
    return datetime.datetime.strptime(limit, "%Y%m%d%H%M%S").replace(tzinfo=datetime.UTC)


def forge_token(
    login: str, minutes: float = 60, realm: str = "kiva", secret: str | None = None, lifetime: float | None = None
) -> str:
    """A FlaskSimpleAuth token "realm/<lifetime>m:login:limit:signature", signed like the
    server does, expiring in `minutes`; its lifetime is the server's (KIVA_TOKEN_MINUTES) unless given.

    The tests know the server's secret (APP_SECRET, a test-only value set by the
    Makefile): they can make expired tokens or tokens for another realm without waiting.
    """
    secret = secret or os.environ.get("APP_SECRET")
    assert secret, "APP_SECRET must be set for the token tests (make check sets it)"
    lifetime = lifetime if lifetime is not None else float(os.environ.get("KIVA_TOKEN_MINUTES", "60"))
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
    data = f"{realm}/{lifetime:g}m:{login}:{when:%Y%m%d%H%M%S}"
    signature = hashlib.blake2s(f"{data}:{secret}".encode()).digest()[:16].hex()
    return f"{data}:{signature}"


def new_address() -> str:
    """A client address of its own (10.x.y.z), sent as X-Forwarded-For.

    make check trusts 127.0.0.1 as a proxy (KIVA_TRUSTED_PROXIES): each test then has
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


class Raw:
    """Raw HTTP, for what FlaskTester does not send: bodies that are not a dict.

    Against a live server it is a requests session; in-process a Flask test client.
    Responses offer status_code, headers and json_body (None if the body is not JSON).
    """

    def __init__(self):
        self.address = new_address()
        if EXTERNAL:
            import requests

            self.session = requests.Session()
        else:
            from app import app

            self.client = app.test_client()

    def request(self, method: str, path: str, **kwargs):
        kwargs["headers"] = {"X-Forwarded-For": self.address, **(kwargs.get("headers") or {})}
        if EXTERNAL:
            res = self.session.request(method, os.environ["FLASK_TESTER_APP"] + path, timeout=30, **kwargs)
            try:
                res.json_body = res.json()  # type: ignore[attr-defined]  # as the Flask one below
            except ValueError:
                res.json_body = None  # type: ignore[attr-defined]
            return res
        res = self.client.open(path, method=method, **kwargs)
        res.json_body = res.get_json(silent=True)
        return res


#
# the audit log: the app's own record of what it served, and when
#

# [Apache's "[pid N:tid M]" prefix] time client user method path status ms
AUDIT_LINE = re.compile(
    r"(?:\[pid (?P<pid>\d+)[^\]]*\].*)?(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?[+-]\d{4}) "
    r"(?P<client>\S+) (?P<user>\S+) (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) (?P<ms>[\d.]+)$"
)


class AuditLog:
    """The audit lines the app writes from now on: in-process from the "kiva.audit"
    logger, against a live server from its log file, named by KIVA_AUDIT_LOG."""

    def __init__(self):
        if EXTERNAL:
            self.path = os.environ.get("KIVA_AUDIT_LOG")
            assert self.path, "KIVA_AUDIT_LOG must name the live server's log file (make check sets it)"
            self.start = os.path.getsize(self.path)
        else:
            # every logger's messages, as a log file would get them: a forged line may
            # come from any logger that writes what a client sent
            self.records: list[str] = []
            self.handler = logging.Handler(logging.DEBUG)
            self.handler.emit = lambda record: self.records.append(record.getMessage())  # type: ignore[method-assign]
            root = logging.getLogger()
            root.addHandler(self.handler)
            self.level = root.level
            root.setLevel(min(root.level, logging.INFO))

    def close(self):
        if not EXTERNAL:
            logging.getLogger().removeHandler(self.handler)
            logging.getLogger().setLevel(self.level)

    def text(self) -> str:
        """Everything logged since this object was made (every line, audit or not)."""
        if not EXTERNAL:
            return "\n".join(self.records)
        time.sleep(0.2)  # let the server flush its last lines
        with open(self.path, errors="replace") as log:  # type: ignore[arg-type]
            log.seek(self.start)
            return log.read()

    def lines(self, **match: str) -> list[dict]:
        """The audit lines, as dicts, whose fields have the given values."""
        found = []
        for m in map(AUDIT_LINE.search, self.text().splitlines()):
            if m and all(m[k] == v for k, v in match.items()):
                line = m.groupdict()
                end = datetime.datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
                line["start"], line["end"] = end - float(line["ms"]) / 1000, end
                found.append(line)
        return found


#
# the route table: every (method, rule) the app serves, from the app module itself
#


def app_routes() -> set[tuple[str, str]]:
    """(method, rule) of every route of app.url_map, e.g. ("GET", "/stuff/<int:sid>").

    A live server's tests import the same module: a route added to the app is in this
    list wherever the tests run. Without APP_CONFIG (the Apache run), the embedded
    SQLite configuration on an in-memory database serves to build the app.
    """
    if "APP_CONFIG" not in os.environ:
        os.environ["APP_CONFIG"] = os.path.join(HERE, "app.conf")
        os.environ.setdefault("KIVA_SQLITE", ":memory:")
    from app import app

    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }


#
# the data the suite leaves behind: the tables of the seed data, counted
#

# data tables, which the suite must leave as it found them; AuthFailure is the
# record of failed logins, which the suite makes on purpose
SEED_TABLES = ["Stuff", "Utilisateur", "Owned", "Owner", "Thing"]


def seed_counts() -> dict[str, int]:
    """Rows per table of a fresh schema with data.sql, loaded into an in-memory SQLite."""
    conn = sqlite3.connect(":memory:")
    for script in ("create-sqlite.sql", "data.sql"):
        with open(os.path.join(HERE, script)) as sql:
            conn.executescript(sql.read())
    return {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in SEED_TABLES}  # noqa: S608


def database_counts() -> dict[str, int] | None:
    """Rows per table of the database under test, when the tests can reach it:
    KIVA_SQLITE in-process with app.conf, else KIVA_DB (PostgreSQL); None otherwise."""
    if not EXTERNAL and os.path.basename(os.environ.get("APP_CONFIG", "")) == "app.conf":
        conn = sqlite3.connect(os.environ["KIVA_SQLITE"])
        try:
            return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in SEED_TABLES}  # noqa: S608
        finally:
            conn.close()
    if "KIVA_DB" in os.environ:
        import psycopg

        with psycopg.connect(os.environ["KIVA_DB"], autocommit=True) as pg:
            return {t: pg.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in SEED_TABLES}  # type: ignore  # noqa: S608
    return None


#
# another server process on the same database, with another configuration
#

OTHER_APP_PRELUDE = """
import json, sys
sys.path.insert(0, {here!r})
from app import app
client = app.test_client()
results = []
def out(res):
    results.append([res.status_code, res.get_json(silent=True)])
"""


def other_app(code: str, **env: str) -> list[list]:
    """Run `code` in a new process whose app is created with these environment variables
    changed (a server restarted with another configuration), on the same database: it
    calls `client.get(...)` etc. and `out(res)`; returns the [status, JSON] of each out()."""
    import subprocess
    import sys
    import textwrap

    script = OTHER_APP_PRELUDE.format(here=HERE) + textwrap.dedent(code) + "\nprint(json.dumps(results))\n"
    done = subprocess.run(  # noqa: S603 (this interpreter, the test's own code)
        [sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


class Loads:
    """A loader counting its calls (each one a database read): the caches' tests."""

    def __init__(self, value):
        self.value, self.count = value, 0

    def __call__(self):
        self.count += 1
        return self.value


## in-process only: the app's configuration and database changed for a while
#


@contextlib.contextmanager
def app_config(**values):
    """The in-process app with some configuration values changed for a while."""
    from app import app

    saved = {k: app.config[k] for k in values}
    app.config.update(values)
    try:
        yield app
    finally:
        app.config.update(saved)


@contextlib.contextmanager
def app_database(conn: str):
    """The in-process app's new connections made to `conn` (a missing file, a closed
    port, other options) for a while, then to the configured database again: each
    change starts a new pool, the connections of the previous one closed."""
    import database
    from app import app

    config = app.config["ANODB"]

    def use(target: str):
        old = database.db._pool
        # no connection made here (database.db's pool has no minimum): each on demand
        database.db.set_fun(lambda _: database.connect(dict(config, conn=target)))
        if old is not None:
            old.shutdown()

    use(conn)
    try:
        yield
    finally:
        use(config["conn"])


def unreachable_database() -> str:
    """The app's database made unreachable: a file in a folder that does not exist
    (SQLite), a port nothing listens on (PostgreSQL)."""
    from app import app

    config = app.config["ANODB"]
    if config["db"] == "sqlite3":
        return "/nonexistent-kiva-folder/kiva.db"
    return config["conn"] + " port=1"


def families(text: str):
    """The metric families of a Prometheus exposition (GET /metrics)."""
    # metrics.py's set-up first, as in a server: it chooses prometheus_client's storage
    # (and refuses to come second); done already in-process (the app's init_app)
    importlib.import_module("production.metrics").set_up()
    from prometheus_client.parser import text_string_to_metric_families

    return text_string_to_metric_families(text)


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted label items): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families(text) for s in family.samples}


def value(figures: dict, name: str, **labels) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


class Clock:
    """A module's `time`, stopped: time() and monotonic() answer `now`, which the test
    moves instead of waiting; the rest (sleep…) is the real time module's. In-process, a
    window or a pause checked on it ends when the test says, whatever the machine's load."""

    def __init__(self, now: float | None = None):
        self.now = time.time() if now is None else now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)
