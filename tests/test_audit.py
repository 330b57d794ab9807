"""The audit trail: one line per request, with the user and status, and no secret.

In-process the lines are captured from the loggers; against a live server they are
read from its log file, named by KIVA_AUDIT_LOG (helpers.AuditLog).
"""

import re
import time

import pytest
from helpers import AUDIT_LINE, AuditLog, basic, bearer, register, unique


@pytest.fixture
def audit():
    log = AuditLog()
    yield log
    log.close()


def forged_line(path: str) -> str:
    """An audit line as the app writes it (test_audit_line_fields checks the layout on
    the app's own lines), time stamp included: what a forger would write."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000%z")
    return f"{stamp} 127.0.0.1 calvin DELETE {path} 204 0.1"


def test_audit_line_fields(api, audit):
    """time client user method path status ms, read from the app's own line: the client
    address is the one the test sent from, the query string is not there."""
    login, password, uid = register(api, "audited")
    probe = unique("query-string-probe")
    before = time.time()
    assert api.get(f"/owners?filter={probe}", 200, login=None, headers=basic(login, password)).json == []
    assert "error" in api.post(f"/stuff/1?stuff={probe}", 405, login=None).json
    after = time.time()
    api.delete(f"/users/{uid}", 204, login="calvin")
    text = audit.text()
    assert probe not in text, "a query string or a parameter was logged"
    (line,) = audit.lines(user=login, path="/owners")
    assert (line["client"], line["method"], line["status"]) == (api.address, "GET", "200")
    assert before - 1 <= line["end"] <= after + 1 and 0 <= float(line["ms"]) <= (after - before) * 1000 + 1
    (anonymous,) = audit.lines(path="/stuff/1", status="405")
    assert (anonymous["client"], anonymous["user"], anonymous["method"]) == (api.address, "-", "POST")
    # forged_line() has the layout of the app's lines (the same fields, the same time
    # stamp shape): the forged line of test_audit_lines_cannot_be_forged would be read as
    # a real one if it ever reached the log as a line of its own
    forged = AUDIT_LINE.search(forged_line("/stuff/1"))
    assert forged and re.sub(r"\d", "9", forged["time"]) == re.sub(r"\d", "9", anonymous["time"])


def test_audit_user_status_and_no_secret(api, audit):
    login, password = unique("audited"), unique("Secret-Pw")
    uid = api.post("/register", 201, data={"login": login, "pword": password}).json["uid"]
    token = api.get("/login", 200, login=None, headers=basic(login, password)).json
    api.get("/whoami", 200, login=None, headers=bearer(token))
    api.post("/whoami", 405, login=None, data={"USER": login, "PASS": password})
    api.get("/hello", 200, login=None, data={"USER": login, "PASS": password})
    api.get("/hello", 401, login=None, headers=basic(login, password + "-wrong"))
    api.delete(f"/users/{uid}", 204, login="calvin")
    text = audit.text()
    for secret in (password, token, token.split(":")[-1], basic(login, password)["Authorization"]):
        assert secret not in text
    mine = audit.lines(user=login)
    assert {(line["method"], line["path"], line["status"]) for line in mine} >= {
        ("GET", "/login", "200"),
        ("GET", "/whoami", "200"),
        ("GET", "/hello", "200"),
    }
    anonymous = audit.lines(path="/hello", status="401")
    assert len(anonymous) == 1 and anonymous[0]["user"] == "-"


def test_audit_lines_cannot_be_forged(api, audit):
    # a newline in the path, then a whole audit line with its time stamp
    in_path = f"/users/{unique('forged')}"
    forged = forged_line(in_path).replace(" ", "%20")
    assert "error" in api.get(f"/stuff/x%0A{forged}", 404).json
    # a newline in a login (basic credentials), then a whole audit line
    in_login = f"/users/{unique('forged')}"
    res = api.get("/hello", 401, login=None, headers=basic(f"x\n{forged_line(in_login)}", "password"))
    assert "error" in res.json
    lines = audit.lines()
    # the path is one field of one line, its newline and spaces percent-encoded
    mine = [line for line in lines if in_path.replace("/", "") in line["path"].replace("/", "")]
    assert len(mine) == 1 and mine[0]["path"].startswith("/stuff/x%0A") and "%20" in mine[0]["path"]
    assert (mine[0]["method"], mine[0]["status"]) == ("GET", "404")
    # the login's request left one line, anonymous, and no line of the forger's
    hello = [line for line in lines if line["path"] == "/hello"]
    assert [(line["user"], line["status"]) for line in hello] == [("-", "401")]
    assert not [line for line in lines if line["path"] in (in_path, in_login)]
    assert not [line for line in lines if line["user"] == "calvin"]
