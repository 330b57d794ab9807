# A local tool: it runs Prometheus on a loopback port and talks to loopback URLs only
# ruff: noqa: S108, S310, S603
"""A real Prometheus scrapes Kiva under Apache (2 processes): its counts are exact.

Run by deploy/check.sh drills (make test-apache-drills) right after Apache was started afresh, so
that every counter starts from 0 (a new metrics directory per Apache start):

1. Prometheus (/usr/bin/prometheus, Debian's package) with a configuration of its own
   in a temporary folder: one job scraping API/metrics every second with the scrape
   token as its bearer credentials, and deploy/kiva-alerts.yml as its rules;
2. a known set of requests, 8 at a time so that both mod_wsgi processes answer, each
   status checked as it comes back;
3. once Prometheus has scraped after the last answer, its HTTP API must report
   exactly the counts sent, and the app's audit lines must show that the requests
   were answered by at least 2 processes: the figures are sums over both;
4. the 3 alerting rules are loaded and healthy, and none fires.

    drills/prometheus_check.py API AUDIT_LOG PROMETHEUS_PORT
    (environment: KIVA_METRICS_TOKEN, the deployed app's scrape token)
"""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
RULES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy", "kiva-alerts.yml")
WAIT = 60  # seconds, at most, for Prometheus to start, to scrape, to evaluate
# Apache's error log prefix, then the audit line: ... user method path status ms
LINE = re.compile(r"\[pid (?P<pid>\d+)[^\]]*\].* - GET (?P<path>\S+) (?P<status>\d{3}) [\d.]+$")


def http(method: str, url: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    body = urllib.parse.urlencode(data).encode() if data else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers or {}, method=method), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def until(what: str, check):
    """Poll check() until it returns something true, for WAIT seconds at most."""
    deadline = time.time() + WAIT
    while time.time() < deadline:
        try:
            result = check()
        except OSError:  # not listening yet
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise SystemExit(f"prometheus check: timed out waiting for {what}")


class Prometheus:
    def __init__(self, port: int, target: str, metrics_path: str, token: str):
        self.url = f"http://127.0.0.1:{port}"
        self.dir = tempfile.TemporaryDirectory(prefix="kiva-prometheus-")
        token_file = os.path.join(self.dir.name, "scrape-token")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(token)
        config = os.path.join(self.dir.name, "prometheus.yml")
        with open(config, "w") as f:  # JSON is YAML
            json.dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [RULES],
                    "scrape_configs": [
                        {
                            "job_name": "kiva",
                            "metrics_path": metrics_path,
                            "authorization": {"credentials_file": token_file},  # type Bearer
                            "static_configs": [{"targets": [target]}],
                        }
                    ],
                },
                f,
            )
        self.log = open(os.path.join(self.dir.name, "prometheus.log"), "w")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.dir.name}/data",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        until("Prometheus to be ready", lambda: http("GET", f"{self.url}/-/ready")[0] == 200)

    def api(self, path: str, **params) -> Any:
        status, body = http("GET", f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", (path, params, status, answer)
        return answer["data"]

    def value(self, query: str) -> float | None:
        """The value of a query giving one number (None when it gives no series)."""
        result = self.api("query", query=query)["result"]
        assert len(result) <= 1, (query, result)
        return float(result[0]["value"][1]) if result else None

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()
        with open(self.log.name) as log:
            errors = "".join(line for line in log if "level=error" in line)
        self.dir.cleanup()
        return errors


def main():
    api, audit_log, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    token = os.environ["KIVA_METRICS_TOKEN"]
    parts = urllib.parse.urlsplit(api)
    audit_start = os.path.getsize(audit_log)
    prometheus = Prometheus(port, parts.netloc, f"{parts.path}/metrics", token)
    failures = []
    try:
        until("Prometheus's first scrape of Kiva", lambda: prometheus.value('up{job="kiva"}') == 1)

        # the known requests: (path, expected status, how many)
        status, body = http("POST", f"{api}/stuff", {"stuff": f"prometheus-check-{os.getpid()}-{time.time()}"})
        assert status == 201, (status, body)
        sid = json.loads(body)["sid"]
        plan = [(f"/stuff/{sid}", 200, 60), ("/stuff/999999999", 404, 30), ("/owners", 401, 20), ("/nowhere", 404, 10)]
        sent = [(path, expected) for path, expected, n in plan for _ in range(n)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda r: (r, http("GET", api + r[0])[0]), sent))
        wrong = [(path, expected, got) for (path, expected), got in answers if got != expected]
        assert not wrong, f"unexpected statuses: {wrong[:5]} ({len(wrong)} in all)"
        done = time.time()
        print(f"prometheus check: sent {len(sent) + 1} requests: POST /stuff 201 x1, " + ", ".join(
            f"GET {path} {expected} x{n}" for path, expected, n in plan
        ))  # fmt: skip

        # a scrape that started after the last answer
        until("a scrape after the requests", lambda: (prometheus.value('timestamp(up{job="kiva"})') or 0) > done)
        expected = {
            'sum(kiva_http_requests_total{route="/stuff",method="POST",status="201"})': 1,
            'sum(kiva_http_requests_total{route="/stuff/<int:sid>",method="GET",status="200"})': 60,
            'sum(kiva_http_requests_total{route="/stuff/<int:sid>",method="GET",status="404"})': 30,
            'sum(kiva_http_requests_total{route="/owners",method="GET",status="401"})': 20,
            'sum(kiva_http_requests_total{route="unmatched",method="GET",status="404"})': 10,
            'sum(kiva_http_request_duration_seconds_count{route="/stuff/<int:sid>",method="GET"})': 90,
            'sum(kiva_http_request_duration_seconds_bucket{route="/stuff/<int:sid>",method="GET",le="+Inf"})': 90,
            'sum(kiva_auth_failures_total{scheme="none"})': 20,
            "sum(kiva_throttled_total)": 0,
            "max(kiva_database_up)": 1,
        }
        for query, count in expected.items():
            got = prometheus.value(query)
            print(f"prometheus check: {query} = {got} (expected {count})")
            if got != count:
                failures.append(f"{query}: Prometheus says {got}, {count} were sent")

        # which processes answered: the audit lines of the app (Apache prefixes the pid)
        with open(audit_log, errors="replace") as log:
            log.seek(audit_start)
            lines = [m for m in map(LINE.search, log.read().splitlines()) if m]
        ours = [m for m in lines if m["path"] in {path for path, _, _ in plan}]
        pids = {int(m["pid"]) for m in ours}
        per_pid = {pid: sum(int(m["pid"]) == pid for m in ours) for pid in sorted(pids)}
        print(f"prometheus check: {len(ours)} audit lines of these GETs, answered by {len(pids)} processes: {per_pid}")
        if len(ours) != len(sent):
            failures.append(f"{len(ours)} audit lines for {len(sent)} requests")
        if len(pids) < 2:
            failures.append(f"answered by {len(pids)} process(es): the sum over processes is not shown")

        # the alerting rules: loaded, evaluated without error, none firing
        def evaluated():
            rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
            return rules if all(r.get("lastEvaluation", "0001").startswith("20") for r in rules) else None

        rules = until("the alerting rules to be evaluated", evaluated)
        health = {r["name"]: (r["health"], r["state"]) for r in rules}
        print(f"prometheus check: rules {health}")
        # the database is up and no request failed: those two inactive. Whether requests took
        # over 0.5 s says how loaded the machine is (make check's stages run side by side):
        # KivaSlowRequests may be pending, never firing (its `for: 10m` is longer than this drill)
        allowed = {
            "KivaHighErrorRate": {"inactive"},
            "KivaDatabaseDown": {"inactive"},
            "KivaSlowRequests": {"inactive", "pending"},
        }
        if set(health) != set(allowed) or any(
            h != "ok" or state not in allowed[name] for name, (h, state) in health.items()
        ):
            failures.append(f"alerting rules: {health}")
    finally:
        errors = prometheus.stop()
    if errors:
        print(f"prometheus check: Prometheus's log:\n{errors}")
    if failures:
        raise SystemExit("prometheus check: FAILED\n" + "\n".join(failures))
    print("prometheus check: passed, every count exact")


if __name__ == "__main__":
    main()
