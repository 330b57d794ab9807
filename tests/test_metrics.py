"""GET /metrics: who may read it, what it says, and that its counts are exact.

The counts are read before and after a known set of requests: nothing else talks
to the server meanwhile (the tests run one at a time), so the differences are exactly
the requests sent, on every server the suite runs against (in-process, the live
server, Apache's 2 processes, where the figures must be the sums of both).
The exposition is checked by Prometheus's own `promtool check metrics`.
"""

import os
import re
import subprocess

import pytest
from helpers import EXTERNAL, app_routes, basic, bearer, families, forge_token, samples, unique, value

PROMTOOL = os.environ.get("PROMTOOL", "/usr/bin/promtool")  # Debian's prometheus package
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
# behind a load balancer (make test-cluster), each node counts its own requests: Prometheus
# scrapes every node, never the balancer, and a scrape through it sees one node's figures
per_node = pytest.mark.skipif(
    int(os.environ.get("KIVA_CLUSTER_NODES", "1")) > 1, reason="counts are per node: scrape each node, not the balancer"
)
FAMILIES = {
    "kiva_http_requests": "counter",
    "kiva_http_request_duration_seconds": "histogram",
    "kiva_auth_failures": "counter",
    "kiva_throttled": "counter",
    "kiva_database_errors": "counter",
    "kiva_database_up": "gauge",
    "kiva_database_connections_in_use": "gauge",
    "kiva_build_info": "gauge",
}


def scrape_token() -> str:
    token = os.environ.get("KIVA_METRICS_TOKEN")
    assert token, "KIVA_METRICS_TOKEN must be the server's scrape token (make check sets it)"
    return token


def text(res) -> str:
    """The body: a Flask test response in-process, a requests one against a live server."""
    return res.text if EXTERNAL else res.get_data(as_text=True)


def scrape(api) -> str:
    res = api.get("/metrics", 200, login=None, headers=bearer(scrape_token()))
    assert res.headers["Content-Type"] == TEXT_FORMAT
    return text(res)


def test_metrics_authorization(api):
    token = scrape_token()
    res = api.get("/metrics", 401, login=None)
    assert res.json == {"error": "missing authorization header"} and "Bearer" in res.headers["WWW-Authenticate"]
    res = api.get("/metrics", 403, login="hobbes")
    assert res.json == {"error": 'not in group "ADMIN"'}
    for headers in (basic("calvin", "hobbes"), bearer(forge_token("calvin")), bearer(token)):
        res = api.get("/metrics", 200, login=None, headers=headers)
        assert res.headers["Content-Type"] == TEXT_FORMAT
        assert "# TYPE kiva_http_requests_total counter" in text(res)
    # a wrong scrape token, or one differing in its last character only: 401, and not echoed
    for wrong in ("wrong-token", token[:-1] + chr(ord(token[-1]) ^ 1), token + "x"):
        res = api.get("/metrics", 401, login=None, headers=bearer(wrong))
        assert set(res.json) == {"error"} and wrong not in res.json["error"]
    # the scrape token is for /metrics only: anywhere else it is an unknown bearer
    api.get("/hello", 401, login=None, headers=bearer(token))
    api.get("/users", 401, login=None, headers=bearer(token))


def test_promtool_check_metrics(api):
    text = scrape(api)
    types = {f.name: f.type for f in families(text)}
    assert {name: types.get(name) for name in FAMILIES} == FAMILIES
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")


def test_promtool_check_rules():
    rules = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy", "kiva-alerts.yml")
    check = subprocess.run([PROMTOOL, "check", "rules", rules], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 3 rules found" in check.stdout


@per_node
def test_exact_counts(api):
    before = samples(scrape(api))
    sid = api.post("/stuff", 201, data={"stuff": unique("metrics")}).json["sid"]
    for _ in range(3):
        api.get(f"/stuff/{sid}", 200)
    for _ in range(2):
        api.get("/stuff/999999999", 404)
    api.get(f"/nowhere/{sid}", 404)
    api.request("BREW", "/stuff", 405)
    api.get("/owners", 401, login=None)
    api.get("/owners", 401, login=None, headers=bearer("not-a-token"))
    api.get("/owners", 401, login=None, headers=basic("calvin", "wrong-password"))
    api.put(f"/stuff/{sid}", 409, data={"stuff": "Chair"})  # the unique constraint refuses
    api.delete(f"/stuff/{sid}", 204)
    after = samples(scrape(api))

    def sent(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "kiva_http_requests_total"
    assert sent(requests, route="/stuff", method="POST", status="201") == 1
    assert sent(requests, route="/stuff/<int:sid>", method="GET", status="200") == 3
    assert sent(requests, route="/stuff/<int:sid>", method="GET", status="404") == 2
    assert sent(requests, route="/stuff/<int:sid>", method="PUT", status="409") == 1
    assert sent(requests, route="/stuff/<int:sid>", method="DELETE", status="204") == 1
    assert sent(requests, route="unmatched", method="GET", status="404") == 1
    assert sent(requests, route="unmatched", method="other", status="405") == 1
    assert sent(requests, route="/owners", method="GET", status="401") == 3
    # the first scrape is counted by the second one
    assert sent(requests, route="/metrics", method="GET", status="200") == 1
    assert sent("kiva_http_request_duration_seconds_count", route="/stuff/<int:sid>", method="GET") == 5
    assert sent("kiva_http_request_duration_seconds_bucket", route="/stuff/<int:sid>", method="GET", le="+Inf") == 5
    assert sent("kiva_auth_failures_total", scheme="none") == 1
    assert sent("kiva_auth_failures_total", scheme="token") == 1
    assert sent("kiva_auth_failures_total", scheme="basic") == 1
    assert sent("kiva_database_errors_total", kind="conflict") == 1
    assert value(after, "kiva_database_up") == 1
    # raw paths never become labels: only route templates, and a fixed one for the unmatched
    routes = {dict(labels).get("route") for _, labels in after} - {None}
    assert f"/stuff/{sid}" not in routes and f"/nowhere/{sid}" not in routes
    assert {"/stuff/<int:sid>", "/metrics", "unmatched"} <= routes


@per_node
def test_throttled_counted(api):
    before = samples(scrape(api))
    login = unique("throttled")
    for _ in range(5):
        api.get("/hello", 401, login=None, headers=basic(login, "wrong-password"))
    api.get("/hello", 429, login=None, headers=basic(login, "wrong-password"))
    after = samples(scrape(api))
    assert value(after, "kiva_throttled_total") - value(before, "kiva_throttled_total") == 1
    failures = value(after, "kiva_auth_failures_total", scheme="basic") - value(
        before, "kiva_auth_failures_total", scheme="basic"
    )
    assert failures == 5


@per_node
def test_every_route_counted_under_its_template(api):
    """A request to every (method, rule) of the route table, path parameters included:
    each counted once, under its rule and the status it was answered; no other label."""
    sent: dict[tuple[str, str, str], int] = {}
    before = samples(scrape(api))
    for method, rule in sorted(app_routes()) + [("GET", "/no-such-route"), ("DELETE", "/version")]:
        path = re.sub(r"<[^>]+>", "999999999", rule)
        status = api.request(method, path, None, login=None).status_code
        route = rule if (method, rule) in app_routes() else "unmatched"  # 404, 405: no rule matched
        sent[(route, method, str(status))] = sent.get((route, method, str(status)), 0) + 1
    # the scrape before (200) is counted by the scrape after
    sent[("/metrics", "GET", "200")] = sent.get(("/metrics", "GET", "200"), 0) + 1
    after = samples(scrape(api))
    counted = {
        (labels["route"], labels["method"], labels["status"]): after[key] - before.get(key, 0.0)
        for key in after
        if key[0] == "kiva_http_requests_total"
        for labels in [dict(key[1])]
    }
    assert {k: v for k, v in counted.items() if v} == sent
    assert {route for route, _, _ in counted} <= {rule for _, rule in app_routes()} | {"unmatched"}


@pytest.mark.skipif(EXTERNAL, reason="the files of this process group: in-process only")
def test_dead_process_files_marked():
    from production import metrics

    metrics.set_up()  # as in the app: the folder, before prometheus_client's import
    from prometheus_client import multiprocess

    # a process that ended without its atexit hook left its files: its live gauges go, its counters stay
    dead = 2**22 + 12345  # above pid_max's default: no such process
    for kind in ("gauge_livesum", "gauge_livemostrecent", "counter"):
        open(os.path.join(metrics.DIRECTORY, f"{kind}_{dead}.db"), "wb").close()
    metrics.mark_dead_processes()
    left = set(os.listdir(metrics.DIRECTORY))
    assert f"gauge_livesum_{dead}.db" not in left and f"gauge_livemostrecent_{dead}.db" not in left
    assert f"counter_{dead}.db" in left
    os.remove(os.path.join(metrics.DIRECTORY, f"counter_{dead}.db"))
    assert multiprocess.MultiProcessCollector(None, metrics.DIRECTORY)  # the directory is still readable


@pytest.mark.skipif(EXTERNAL, reason="points the probe at a database that is not there: in-process only")
def test_scrape_reports_database_down(api):
    import time

    from app import app

    def database_up() -> tuple[float, float]:
        figures = samples(scrape(api))  # a 200 in any case: the outage is reported, not suffered
        return value(figures, "kiva_database_up"), value(figures, "kiva_database_errors_total", kind="unavailable")

    up, errors = database_up()
    assert up == 1
    config = app.config["ANODB"]
    if config["db"] == "sqlite3":
        app.config["ANODB"] = dict(config, conn="/nonexistent-kiva-folder/kiva.db")
    else:
        app.config["ANODB"] = dict(config, conn=config["conn"] + " port=1")  # nothing listens there
    try:
        down, after = database_up()
        assert (down, after) == (0, errors + 1)
    finally:
        app.config["ANODB"] = config
    # back as soon as the connection back-off allows a new attempt (50 ms after one failure)
    deadline = time.time() + 5
    while database_up()[0] != 1:
        assert time.time() < deadline, "kiva_database_up still 0 with the database back"
        time.sleep(0.1)


@pytest.mark.skipif(EXTERNAL, reason="the metrics folder of this process: in-process only")
def test_metrics_folder_of_another_account_refused(tmp_path, monkeypatch):
    from production import metrics

    # /tmp/kiva-metrics-<uid> is a name anyone may take first: another account's folder
    # (or a link to one) would let it read, change or delete the figures
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o777)
    if os.getuid() == 0:  # CI runs as root: give it to nobody
        os.chown(theirs, 65534, 65534)
    else:  # a folder of root's stands for another account's
        theirs = tmp_path.root
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "mine-elsewhere", target_is_directory=True)
    (tmp_path / "mine-elsewhere").mkdir()
    for folder in (theirs, link):
        monkeypatch.setenv("KIVA_METRICS_DIR", str(folder))
        with pytest.raises(RuntimeError, match="not a directory of this account"):
            metrics.group_directory()
    # a folder of ours open to others is made private; the group directory inside it too
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    os.chmod(mine, 0o755)  # noqa: S103  # the mistake the check repairs
    monkeypatch.setenv("KIVA_METRICS_DIR", str(mine))
    group = metrics.group_directory()
    assert os.stat(mine).st_mode & 0o777 == 0o700 and os.stat(group).st_mode & 0o777 == 0o700
    assert os.path.dirname(group) == str(mine)


def test_process_start_of_any_process(oddly_named_process):
    """A group directory's pid may have been reused by any process: its start time is read
    whatever its name (a UnicodeDecodeError would stop the app's start)."""
    from production import metrics

    start = metrics.process_start(oddly_named_process)
    assert start.isdigit() and metrics.alive(oddly_named_process, start)
    assert not metrics.alive(oddly_named_process, str(int(start) + 1))
