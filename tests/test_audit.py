"""The audit trail: one line per request, with the user and status, and no secret.

In-process the lines are captured from the loggers; against a live server they are
read from its log file, named by KIVA_AUDIT_LOG (helpers.AuditLog).
"""

import time

import pytest
from helpers import AUDIT_LINE, AuditLog, basic, bearer, unique


@pytest.fixture
def audit():
    log = AuditLog()
    yield log
    log.close()


def forged_line(path: str) -> str:
    """An audit line as the app writes it, time stamp included: what a forger would write."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000%z")
    return f"{stamp} 127.0.0.1 calvin DELETE {path} 204 0.1"


def test_forged_line_would_be_read(audit):
    # the check below is only worth something if a forged line, written as such,
    # would be read as an audit line
    path = f"/users/{unique('forged')}"
    line = AUDIT_LINE.search(forged_line(path))
    assert line and (line["user"], line["method"], line["path"], line["status"]) == ("calvin", "DELETE", path, "204")


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
