"""The audit trail: one line per request, with the user and status, and no secret.

In-process the lines are captured from the "kiva.audit" logger; against a live
server they are read from its log file, named by KIVA_AUDIT_LOG.
"""

import logging
import os
import re
import time

import pytest
from conftest import EXTERNAL, basic, bearer, unique

# time client user method path status ms, wherever the logger or Apache puts it
LINE = re.compile(
    r"\d{4}-\d\d-\d\dT[\d:]+[+-]\d{4} (?P<client>\S+) (?P<user>\S+) (?P<method>[A-Z]+) (?P<path>\S+) "
    r"(?P<status>\d{3}) [\d.]+$"
)


@pytest.fixture
def log_text(caplog):
    """A function returning everything logged since the test started."""
    if EXTERNAL:
        path = os.environ.get("KIVA_AUDIT_LOG")
        assert path, "KIVA_AUDIT_LOG must name the live server's log file (make check sets it)"
        start = os.path.getsize(path)

        def read() -> str:
            time.sleep(0.2)  # let the server flush its last lines
            with open(path, errors="replace") as log:
                log.seek(start)
                return log.read()

        return read
    caplog.set_level(logging.INFO)
    return lambda: caplog.text


def audit_lines(text: str) -> list[dict]:
    return [match.groupdict() for match in map(LINE.search, text.splitlines()) if match]


def test_audit_user_status_and_no_secret(api, log_text):
    login, password = unique("audited"), unique("Secret-Pw")
    uid = api.post("/register", 201, data={"login": login, "pword": password}).json["uid"]
    token = api.get("/login", 200, login=None, headers=basic(login, password)).json
    api.get("/whoami", 200, login=None, headers=bearer(token))
    api.post("/whoami", 405, login=None, data={"USER": login, "PASS": password})
    api.get("/hello", 200, login=None, data={"USER": login, "PASS": password})
    api.get("/hello", 401, login=None, headers=basic(login, password + "-wrong"))
    api.delete(f"/users/{uid}", 204, login="calvin")
    text = log_text()
    for secret in (password, token, token.split(":")[-1], basic(login, password)["Authorization"]):
        assert secret not in text
    mine = [line for line in audit_lines(text) if line["user"] == login]
    assert {(line["method"], line["path"], line["status"]) for line in mine} >= {
        ("GET", "/login", "200"),
        ("GET", "/whoami", "200"),
        ("GET", "/hello", "200"),
    }
    anonymous = [line for line in audit_lines(text) if line["path"] == "/hello" and line["status"] == "401"]
    assert anonymous and all(line["user"] == "-" for line in anonymous)


def test_audit_lines_cannot_be_forged(api, log_text):
    marker = unique("forged")
    api.get(f"/stuff/x%0A{marker} 127.0.0.1 calvin DELETE /users/1 204 0.1", 404)
    api.get("/hello", 401, login=None, headers=basic(f"{marker}\nadmin", "password"))
    text = log_text()
    lines = [line for line in audit_lines(text) if marker in line["path"]]
    assert len(lines) == 1 and "%0A" in lines[0]["path"] and "%20" in lines[0]["path"]
    assert not any(line["user"] == "calvin" and line["path"] == "/users/1" for line in audit_lines(text))
