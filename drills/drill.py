"""What the restore and point-in-time recovery drills share: a Kiva server (start.sh,
Flask's) on a database of their own, and an API client that counts what it sends,
what was acknowledged and what failed."""

import os
import subprocess
import threading
import time
from typing import Any

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ADMIN = ("calvin", "hobbes")  # data.sql's demo admin


def run(*command: str, env: dict | None = None) -> str:
    """Run a command from the project's folder; its output, or an error with it."""
    res = subprocess.run(command, cwd=ROOT, env=dict(os.environ, **(env or {})), capture_output=True, text=True)  # noqa: S603
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res.stdout


class Server:
    """Kiva served by start.sh on a port, with this configuration and database."""

    def __init__(self, port: int, env: dict):
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        self.env = dict(
            env, APP_PORT=str(port), APP_LOG=f"/tmp/kiva-drill-{port}.log", APP_PID=f"/tmp/kiva-drill-{port}.pid"
        )

    def start(self):
        run("./stop.sh", env=self.env)
        run("./start.sh", env=self.env)

    def stop(self):
        run("./stop.sh", env=self.env)


class Api:
    """HTTP calls counted: sent, acknowledged (the expected status), failed."""

    def __init__(self, url: str):
        self.url, self.session = url, requests.Session()
        self.sent = self.acknowledged = self.failed = 0

    def call(self, method: str, path: str, expect: int, auth: tuple | None = ADMIN, **kwargs) -> Any:
        self.sent += 1
        res = self.session.request(method, self.url + path, auth=auth, timeout=30, **kwargs)
        if res.status_code != expect:
            self.failed += 1
            raise SystemExit(f"{method} {path}: {res.status_code} {res.text[:200]}, expected {expect}")
        self.acknowledged += 1
        return res.json() if res.content else None

    def figures(self) -> str:
        return f"{self.sent} requests sent, {self.acknowledged} acknowledged, {self.failed} failed"


class Poller(threading.Thread):
    """GET a path every few milliseconds meanwhile: how long the app did not answer 200."""

    def __init__(self, url: str, every: float = 0.005):
        super().__init__(daemon=True)
        self.url, self.every, self.done = url, every, threading.Event()
        self.answers: list[tuple[float, int]] = []

    def run(self):
        with requests.Session() as session:
            while not self.done.is_set():
                try:
                    status = session.get(self.url, timeout=5).status_code
                except requests.RequestException:
                    status = 0
                self.answers.append((time.monotonic(), status))
                time.sleep(self.every)

    def stop(self) -> dict:
        self.done.set()
        self.join()
        failed = [t for t, status in self.answers if status != 200]
        window = failed[-1] - failed[0] if failed else 0.0
        statuses = sorted({status for _, status in self.answers if status != 200})
        return {"polls": len(self.answers), "failed": len(failed), "unavailable": window, "statuses": statuses}
