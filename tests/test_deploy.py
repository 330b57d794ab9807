"""Tokens across server processes: behind Apache, mod_wsgi spreads requests over
several daemon processes, which must all accept a token made by any of them, so
they share the secret (kiva.env). Concurrent requests reach more than one process:
the app's audit lines, which Apache prefixes with "[pid N:…]", show which.
"""

import concurrent.futures
import os

import pytest
import requests
from helpers import EXTERNAL, AuditLog, bearer, forge_token

PROCESSES = int(os.environ.get("KIVA_SERVER_PROCESSES", "1"))


@pytest.mark.skipif(not EXTERNAL or "APP_SECRET" not in os.environ, reason="a live server and its secret")
def test_token_on_every_process(raw):
    url = os.environ["FLASK_TESTER_APP"] + "/version"
    # signed with the secret every process must share, issued now (the server's lifetime,
    # 60 min): a token issued before calvin's password was set would be refused
    headers = {**bearer(forge_token("calvin")), "X-Forwarded-For": raw.address}
    audit = AuditLog()

    def version(_):
        with requests.Session() as session:
            res = session.get(url, headers=headers, timeout=30)
            return res.status_code, res.json().get("user")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(version, range(32)))
    assert answers == [(200, "calvin")] * 32
    lines = audit.lines(user="calvin", method="GET", path="/version")
    assert [line["status"] for line in lines] == ["200"] * 32
    if PROCESSES > 1:  # Apache: its error log carries the pid of each line's process
        pids = {line["pid"] for line in lines}
        assert None not in pids and len(pids) >= 2, f"answered by processes {pids} only"
