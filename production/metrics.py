"""Prometheus metrics, summed over every server process: GET /metrics.

prometheus_client's multiprocess mode: each process writes its figures to memory
mapped files in one directory, and a scrape, whichever process answers it, adds up
the files of them all. That directory is chosen by init_app (set_up), before
prometheus_client is first imported (it picks its storage then), one per process group:

- under Apache + mod_wsgi, the daemon processes are children of the Apache parent
  process: the group is that parent (its pid and start time). Each Apache start gets
  a new directory, which the daemon processes share; a daemon process restarted by
  mod_wsgi (a deploy touching kiva.wsgi, a crash) joins it, so counters carry on.
  Nobody empties a directory in use: kiva.wsgi is loaded once in every daemon process,
  and emptying it there would wipe the files of a sibling that started first;
- anywhere else (flask run, the tests in-process), the group is the process itself.

The directories of groups whose owner is gone are removed by the next process that
starts; the files of a group's dead processes are marked (mark_process_dead: their
"live" gauges leave the sums, their counters stay in them, as counters must).
PROMETHEUS_MULTIPROC_DIR set by the operator wins, as is (emptying it is then theirs).
KIVA_METRICS_DIR is the parent folder of the group directories (default: the temporary
folder).

The parent folder (default /tmp/kiva-metrics-<uid>, a name anyone may create first) must
be a real directory of this account: another account's (or a symbolic link) is refused
at start, since its owner could read, change or delete the figures, or plant files; one
of ours readable by others is made private (0700).

GET /metrics answers an admin (FlaskSimpleAuth, any scheme), or a scraper that sends
the token of KIVA_METRICS_TOKEN as `Authorization: Bearer <token>`: FlaskSimpleAuth's
token scheme would refuse a bearer that is not one of its own tokens (401), so the
scrape token is recognised here, before the route's authentication runs.
"""

import atexit
import functools
import hmac
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import typing

import flask
import FlaskSimpleAuth as fsa

from production import VERSION, context, migrate
from production.context import METHODS
from production.contract import answers


def process_start(pid: int) -> str:
    """The start time of a process (clock ticks since boot): with the pid, it names the
    process uniquely, even after its pid is reused; "" where /proc does not tell."""
    try:
        # latin-1: the command name before ")" may be any bytes (not UTF-8: a name cut in
        # the middle of a character), and the pid may be any process's now
        with open(f"/proc/{pid}/stat", encoding="latin-1") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(pid: int, start: str | None = None) -> bool:
    """Whether this process still runs (and is the same one, when its start is given)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another account's process: alive
        return True
    return start is None or process_start(pid) == start


def group_owner() -> int:
    """The process whose children share one metrics directory: see the module's doc."""
    try:
        import mod_wsgi  # type: ignore[import-not-found]  # noqa: F401  # only inside mod_wsgi's processes

        return os.getppid()
    except ImportError:
        return os.getpid()


GROUP = re.compile(r"^group-(\d+)-(\d*)$")


def private_directory(path: str) -> None:
    """Create path (0700), or check that it is a directory of this account, made 0700."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    found = os.lstat(path)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
        raise RuntimeError(
            f"metrics folder {path}: not a directory of this account (uid {found.st_uid}): remove it,"
            " or set KIVA_METRICS_DIR to a folder of this account"
        )
    if stat.S_IMODE(found.st_mode) & 0o077:
        os.chmod(path, 0o700)


def base_directory() -> str:
    """This account's private folder of the processes' shared files (created, 0700): the
    process groups' metrics, the local cache's generations (localcache.py)."""
    base = os.environ.get("KIVA_METRICS_DIR") or os.path.join(tempfile.gettempdir(), f"kiva-metrics-{os.getuid()}")
    private_directory(base)
    return base


def group_directory() -> str:
    """This process group's directory, created when missing; gone groups' removed."""
    base = base_directory()
    for name in os.listdir(base):
        match = GROUP.match(name)
        if match and not alive(int(match[1]), match[2]):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    owner = group_owner()
    path = os.path.join(base, f"group-{owner}-{process_start(owner)}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


if typing.TYPE_CHECKING:  # imported by set_up() only, once the folder is chosen
    import prometheus_client as prom

# a back-end answering in milliseconds: buckets from 1 ms to 5 s (seconds, Prometheus's unit)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# the labels are bounded sets: route templates, context.METHODS, status codes
UNMATCHED = "unmatched"  # the route of a request no route matched (a 404, a 405)
SCHEMES = ("token", "basic", "param", "none")  # the credentials a refused request carried
DB_ERROR_KINDS = ("unavailable", "conflict", "invalid", "other")

# the figures: created by set_up(), which init_app calls first
REQUESTS: "prom.Counter"
LATENCY: "prom.Histogram"
AUTH_FAILURES: "prom.Counter"
THROTTLED: "prom.Counter"
DB_ERRORS: "prom.Counter"
DB_UP: "prom.Gauge"  # the most recent probe or connection attempt, of any live process
POOL_IN_USE: "prom.Gauge"
BUILD_INFO: "prom.Gauge"
DIRECTORY = ""  # this process group's folder (PROMETHEUS_MULTIPROC_DIR), once set_up() ran


def set_up():
    """Choose the folder, then import prometheus_client and create the figures; once.

    Not at import: importing a module changes nothing (tests/test_layers.py), the app's
    init_app calls do. The order matters: prometheus_client picks its storage when first
    imported, and every figure opens its file in the folder when created, both reading
    PROMETHEUS_MULTIPROC_DIR, which must name the folder by then (and stay set: a forked
    process reopens its files there).
    """
    global DIRECTORY, REQUESTS, LATENCY, AUTH_FAILURES, THROTTLED, DB_ERRORS, DB_UP, POOL_IN_USE, BUILD_INFO
    if DIRECTORY:
        return
    if "prometheus_client" in sys.modules and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # it chose its in-process storage already: each process would show only its own figures
        raise RuntimeError("prometheus_client was imported before metrics.set_up(): metrics.init_app(app) first")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", group_directory())
    import prometheus_client as prom  # only now: see above

    REQUESTS = prom.Counter(
        "kiva_http_requests",
        "HTTP requests answered, by route template, method and status",
        ["route", "method", "status"],
    )
    LATENCY = prom.Histogram(
        "kiva_http_request_duration_seconds",
        "Time to answer a request in the app, by route template and method",
        ["route", "method"],
        buckets=LATENCY_BUCKETS,
    )
    AUTH_FAILURES = prom.Counter(
        "kiva_auth_failures", "Requests refused as not authenticated (401), by the credentials they carried", ["scheme"]
    )
    THROTTLED = prom.Counter("kiva_throttled", "Requests refused by login throttling (429)")
    DB_ERRORS = prom.Counter("kiva_database_errors", "Database errors, by kind", ["kind"])
    DB_UP = prom.Gauge(
        "kiva_database_up", "1 if the database answered the last attempt, 0 if not", multiprocess_mode="livemostrecent"
    )
    POOL_IN_USE = prom.Gauge(
        "kiva_database_connections_in_use",
        "Pool connections held by requests, all processes",
        multiprocess_mode="livesum",
    )
    BUILD_INFO = prom.Gauge(
        "kiva_build_info", "Versions of the app and of its database schema (value 1)", ["version", "schema"],
        multiprocess_mode="livemax",
    )  # fmt: skip
    for scheme in SCHEMES:  # zeros from the start: rate() needs a first sample
        AUTH_FAILURES.labels(scheme)
    for kind in DB_ERROR_KINDS:
        DB_ERRORS.labels(kind)
    DIRECTORY = os.environ["PROMETHEUS_MULTIPROC_DIR"]  # last: set_up() is done


def schema_version() -> str:
    """The schema version this code runs on: its latest migration (make deploy refuses to
    run code on a database below it), the number /version reports from the database."""
    return str(migrate.expected())


def process_gone():
    """At a clean exit: this process's live gauges leave the sums."""
    from prometheus_client import multiprocess  # set_up() imported it

    multiprocess.mark_process_dead(os.getpid(), DIRECTORY)


def mark_dead_processes():
    """At start-up: the same for the processes of this group that died without it."""
    from prometheus_client import multiprocess  # set_up() imported it

    pids = {int(m[1]) for m in map(re.compile(r"_(\d+)\.db$").search, os.listdir(DIRECTORY)) if m}
    for pid in pids - {os.getpid()}:
        if not alive(pid):
            multiprocess.mark_process_dead(pid, DIRECTORY)


# called before each scrape: tries the database and sets DB_UP (init_app sets it)
database_probe = None


def exposition() -> flask.Response:
    """The figures of every process of the group, in Prometheus's text format."""
    if database_probe is not None:
        database_probe()
    import prometheus_client as prom  # set_up() imported it
    from prometheus_client import multiprocess

    registry = prom.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, DIRECTORY)
    return flask.Response(prom.generate_latest(registry), 200, content_type=prom.exposition.CONTENT_TYPE_PLAIN_0_0_4)


def scrape_token() -> str | None:
    """The bearer token of the request, if it is the configured scrape token."""
    expected = flask.current_app.config.get("KIVA_METRICS_TOKEN")
    given = flask.request.headers.get("Authorization", "")
    if not expected or not given.startswith("Bearer "):
        return None
    # constant time: the comparison tells nothing of how much of the token was right
    return expected if hmac.compare_digest(given[7:].encode(), expected.encode()) else None


def start() -> flask.Response | None:
    """Answer GET /metrics with the scrape token here, as FlaskSimpleAuth would refuse a
    bearer that is not one of its tokens. The latency's clock is audit.start_clock's,
    started just before: one clock per request, not two."""
    req = context.request()
    if req.url_rule is not None and req.url_rule.rule == "/metrics" and req.method == "GET" and scrape_token():
        return exposition()
    return None


def credentials_scheme(req: flask.Request) -> str:
    """Which kind of credentials a request carried (for a refused one: which failed)."""
    authorization = req.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        return "token"
    if authorization.startswith("Basic "):
        return "basic"
    body = context.body_params()
    if body is not None and ("USER" in body or "PASS" in body):
        return "param"
    return "none"


@functools.cache  # the label sets are bounded: a few hundred series at most
def series(route: str, method: str, status: int) -> tuple:
    """The request counter and latency histogram of these labels (labels() costs a lock)."""
    return REQUESTS.labels(route, method, str(status)), LATENCY.labels(route, method)


def count(res: flask.Response) -> flask.Response:
    """After every other hook: the final status is known."""
    req = context.request()
    route = req.url_rule.rule if req.url_rule is not None else UNMATCHED
    requests, latency = series(route, req.method if req.method in METHODS else "other", res.status_code)
    requests.inc()
    begun = context.state().start  # audit.start_clock's
    if begun is not None:
        latency.observe(time.perf_counter() - begun)
    if res.status_code == 401:
        AUTH_FAILURES.labels(credentials_scheme(req)).inc()
    elif res.status_code == 429:
        THROTTLED.inc()
    return res


def database_refusal(answer: BaseException) -> BaseException:
    """Count a database refusal by the answer errors.refusal made of it (unavailable()
    counts its own, a bug is counted where it becomes a 500)."""
    if isinstance(answer, fsa.ErrorResponse) and answer.status in (400, 409):
        DB_ERRORS.labels("conflict" if answer.status == 409 else "invalid").inc()
    return answer


blueprint = fsa.Blueprint("metrics", __name__)


# GET /metrics: every process's figures; for an admin, or a scraper with the token (start)
@blueprint.get("/metrics", authz="ADMIN")
@answers(200, str, media=["text/plain"])
def get_metrics():
    return exposition()


def init_app(app: fsa.Flask, probe=None):
    """The build info, this group's dead processes; app.py registers start and count.

    `probe` is called before each scrape: it tries the database and sets DB_UP.
    """
    global database_probe
    set_up()
    token = app.config.get("KIVA_METRICS_TOKEN")
    if token is not None and len(token) < 16:
        raise RuntimeError("KIVA_METRICS_TOKEN: at least 16 characters, or unset (admins only)")
    BUILD_INFO.labels(VERSION, schema_version()).set(1)
    mark_dead_processes()
    atexit.register(process_gone)
    database_probe = probe
