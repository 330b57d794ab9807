"""An empty body is no body, whatever its Content-Type says (API.md, Conventions).

Clients that send `Content-Type: application/json` on every request (a requests session
with default JSON headers, many JavaScript wrappers) must get exactly the answers of a
request without that header. The GET routes come from the route table.
"""

import re

import pytest
from helpers import EXTERNAL, SEED_PASSWORDS, app_routes, basic, unique

JSON = {"Content-Type": "application/json"}
ADMIN = basic("calvin", SEED_PASSWORDS["calvin"])
MOVING = {"/version", "/metrics", "/health"}  # time stamps, counters: their bodies change
# a token names its issue second and is signed with it: two logins a second apart differ
# there only (a CI run failed on this once: 20261203073912 vs …913)
TOKEN_TIME = re.compile(rb":\d{14}:[0-9a-f]+")


def body(res) -> bytes:
    return res.content if EXTERNAL else res.data


def comparable(path: str, content: bytes) -> bytes:
    """The body without what changes from one second to the next."""
    return TOKEN_TIME.sub(b":<issued>:<signature>", content) if path == "/login" else content


def concrete(rule: str) -> str:
    """A path of this rule naming seed rows: every id 1."""
    return re.sub(r"<(?:\w+:)?\w+>", "1", rule)


GETS = sorted(concrete(rule) for method, rule in app_routes() if method == "GET")


@pytest.mark.parametrize("path", GETS)
def test_get_with_json_type_and_no_body_is_a_plain_get(raw, path):
    plain = raw.request("GET", path, headers=ADMIN)
    for empty in ("", " \r\n"):
        typed = raw.request("GET", path, headers=ADMIN | JSON, data=empty)
        assert typed.status_code == plain.status_code, (path, body(typed))
        assert path in MOVING or comparable(path, body(typed)) == comparable(path, body(plain))


def test_the_routes_answer_their_happy_path_with_json_type(raw):
    assert raw.request("GET", "/version", headers=JSON, data="").json_body["app"] == "kiva"
    res = raw.request("GET", "/cmp/add?i=30&j=12", headers=ADMIN | JSON, data="")
    assert (res.status_code, res.json_body) == (200, 42)
    token = raw.request("GET", "/login", headers=ADMIN | JSON, data="").json_body
    res = raw.request("GET", "/qui-suis-je", headers={"Authorization": f"Bearer {token}"} | JSON, data="")
    assert (res.status_code, res.json_body) == (200, "calvin")


def test_delete_with_json_type_and_no_body(api, raw):
    sid = api.post("/stuff", 201, json={"stuff": unique("empty-body")}).json["sid"]
    res = raw.request("DELETE", f"/stuff/{sid}", headers=JSON, data="")
    assert (res.status_code, body(res)) == (204, b"")
    api.get(f"/stuff/{sid}", 404)


def test_a_non_empty_malformed_json_body_is_still_a_400(raw):
    res = raw.request("POST", "/stuff", headers=JSON, data="{")
    assert (res.status_code, res.json_body) == (400, {"error": "malformed or empty JSON body"})


@pytest.mark.parametrize("media", ["Application/JSON", "application/json; charset=UTF-8", "application/problem+json"])
def test_any_spelling_of_a_json_type(api, raw, media):
    # media types ignore case (RFC 9110 8.3.1): an empty body is no body in every spelling
    res = raw.request("GET", "/cmp/add?i=30&j=12", headers=ADMIN | {"Content-Type": media}, data="")
    assert (res.status_code, res.json_body) == (200, 42)
    sid = api.post("/stuff", 201, json={"stuff": unique("empty-body")}).json["sid"]
    res = raw.request("DELETE", f"/stuff/{sid}", headers={"Content-Type": media}, data="")
    assert (res.status_code, body(res)) == (204, b"")
