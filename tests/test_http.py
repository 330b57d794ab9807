"""HTTP-level behaviour: every error is JSON with the right status, security headers."""

import logging

import pytest
from helpers import EXTERNAL, basic

JSON = {"Content-Type": "application/json"}
MALFORMED, NOT_AN_OBJECT = "malformed or empty JSON body", "the JSON body must be an object of parameters"
NOT_ALLOWED = "The method is not allowed for the requested URL."


def test_malformed_json_bodies(raw):
    for body, error in [
        ('{"stuff": ', MALFORMED),
        ("not json", MALFORMED),
        ("[1, 2]", NOT_AN_OBJECT),
        ('"a string"', NOT_AN_OBJECT),
        ("42", NOT_AN_OBJECT),
        ("null", MALFORMED),
        ("", 'parameter "stuff" is missing'),  # an empty body is no body (tests/test_empty_json_body.py)
    ]:
        res = raw.request("POST", "/stuff", data=body, headers=JSON)
        assert (res.status_code, res.json_body) == (400, {"error": error}), body


def test_json_value_of_the_wrong_type(api):
    value: object
    for value in [1, 1.5, True, None, [], {}]:
        assert "error" in api.post("/stuff", 400, json={"stuff": value}).json
    assert "error" in api.get("/stuff", 400, json={"limit": "ten"}).json
    assert "error" in api.get("/stuff", 400, json={"limit": 10.5}).json


def test_body_too_large(api, raw, caplog):
    big = "x" * (1024 * 1024 + 1)
    res = api.post("/stuff", 413, data={"stuff": big})
    assert res.headers["Content-Type"] == "application/json" and "error" in res.json
    res = raw.request("POST", "/stuff", data='{"stuff": "' + big + '"}', headers=JSON)
    assert res.status_code == 413 and "error" in res.json_body
    # in-process, the app's log is here: a client's error is no internal error (the form's
    # 413 was logged as one, with its traceback)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_body_too_large_before_authentication(api, caplog):
    """A body over the limit is a 413 whatever the credentials: FlaskSimpleAuth's param
    authentication read the form first, logged Werkzeug's 413 as an internal error with
    its traceback, and the request got a 401."""
    big = {"login": "x" * (1024 * 1024 + 1)}
    for headers in ({"Authorization": "Bearer nope"}, basic("calvin", "not-hobbes"), {}):
        for method, path in (("POST", "/users"), ("PATCH", "/users/1"), ("POST", "/owners")):
            res = api.request(method, path, 413, login=None, headers=headers, data=big)
            assert res.headers["Content-Type"] == "application/json" and "error" in res.json, (method, path)
    # in-process, the app's log is here: a client's error is no internal error
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_unknown_route(api):
    res = api.get("/no/such/route", 404)
    assert res.headers["Content-Type"] == "application/json" and "error" in res.json


def test_method_not_allowed_has_allow(api):
    res = api.delete("/stuff", 405)
    assert "error" in res.json
    assert set(res.headers["Allow"].split(", ")) >= {"GET", "POST"}
    res = api.post("/stuff/1", 405)
    assert set(res.headers["Allow"].split(", ")) >= {"GET", "PUT", "PATCH", "DELETE"}


def test_an_undeclared_method_is_a_405_before_any_other_check(raw):
    # credentials of two kinds (400), a cross-site write (403), a malformed body (400): the
    # route does not take the method, which says so first (API.md, Conventions)
    for headers, body in [
        ({"Authorization": "Basic Y2FsdmluOmhvYmJlcw==", **JSON}, '{"USER": "calvin", "PASS": "hobbes"}'),
        ({"Sec-Fetch-Site": "cross-site"}, ""),
        (JSON, "{"),
    ]:
        for method, path in [("TRACE", "/login"), ("DELETE", "/stuff"), ("POST", "/stuff/1"), ("BREW", "/users")]:
            res = raw.request(method, path, headers=headers, data=body)
            # through Apache, TRACE is answered by Apache itself (TraceEnable Off: no echo of
            # the request, cookies included), before any module: a JSON 405 all the same
            assert res.headers["Content-Type"] == "application/json", (method, res.headers)
            assert (res.status_code, res.json_body) == (
                405,
                {"error": "The method is not allowed for the requested URL."},
            )
            # Apache's own 405 cannot know the route's methods: its Allow is empty (RFC 9110 allows it)
            assert res.headers["Allow"] or (method == "TRACE" and EXTERNAL), (method, path)
    res = raw.request("BREW", "/no/such/route", headers={"Sec-Fetch-Site": "cross-site"})
    assert (res.status_code, res.json_body["error"][:18]) == (404, "The requested URL ")


def test_integers_out_of_range(api):
    assert "error" in api.get("/stuff/" + "9" * 40, 404).json
    assert "error" in api.get("/users/" + "9" * 40, 404, login="calvin").json
    assert "out of range" in api.get("/stuff", 400, data={"after": "9" * 40}).json["error"]
    assert "out of range" in api.get("/stuff", 400, json={"after": -(10**30)}).json["error"]


def test_path_ids_at_the_64_bit_boundary(api):
    largest = 2**63 - 1
    assert api.get(f"/stuff/{largest}", 404).json == {"error": f"no such sid: {largest}"}
    assert api.put(f"/stuff/{largest}", 404, data={"stuff": "x"}).json == {"error": f"no such sid: {largest}"}
    for method in ("GET", "PUT", "PATCH", "DELETE"):  # no route at all: a 404, never a 405
        res = api.request(method, f"/stuff/{largest + 1}", 404)
        assert "error" in res.json and "Allow" not in res.headers


def test_other_scripts_digits_are_not_ids(api):
    # int("١") == 1: a path of Arabic-Indic or full-width digits must not reach sid 1
    for digits in ["\u0661", "\uff11", "\u0967"]:
        assert "error" in api.get(f"/stuff/{digits}", 404).json
        assert "error" in api.delete(f"/users/{digits}", 404, login="calvin").json


def test_nul_bytes_and_long_names(api):
    for name in ["a\x00b", "x" * 201, "\x07bell"]:
        assert "a name must" in api.post("/stuff", 400, data={"stuff": name}).json["error"]
        assert "a name must" in api.post("/register", 400, data={"login": name, "pword": "password"}).json["error"]


def test_garbage_authorization_is_401(api):
    for header in ["Basic " + "A" * 10, "Basic =", "Token abc", "Bearer", "Basic !!!"]:
        assert "error" in api.get("/hello", 401, login=None, headers={"Authorization": header}).json


def test_control_characters_in_authorization(api, raw):
    # the app says 401; Apache refuses such a header itself (400) before the app sees it
    res = raw.request("GET", "/hello", headers={"Authorization": "Bearer \x01"})
    assert res.status_code in ((400, 401) if EXTERNAL else (401,))


def test_security_headers(api):
    res = api.get("/stuff/1", 200)
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" not in res.headers.get("Cache-Control", "")
    res = api.get("/hello", 200, login=None, headers=basic("hobbes", "susie"))
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert res.headers["Cache-Control"] == "no-store"
    res = api.get("/hello", 401, login=None, headers=basic("hobbes", "wrong"))
    assert res.headers["Cache-Control"] == "no-store"
    assert api.get("/nowhere", 404).headers["X-Content-Type-Options"] == "nosniff"


def test_no_cors_by_default(api):
    res = api.get("/stuff/1", 200, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in res.headers
    res = api.request("OPTIONS", "/stuff", 200, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in res.headers


@pytest.mark.skipif(EXTERNAL, reason="the allow-list is a server setting: checked in-process only")
def test_cors_allow_list():
    from app import app

    client = app.test_client()
    app.config["KIVA_CORS_ORIGINS"] = ["https://front.example"]
    try:
        res = client.options("/stuff", headers={"Origin": "https://front.example"})
        assert res.status_code == 200
        assert res.headers["Access-Control-Allow-Origin"] == "https://front.example"
        assert "Authorization" in res.headers["Access-Control-Allow-Headers"]
        assert "POST" in res.headers["Access-Control-Allow-Methods"]
        res = client.get("/stuff/1", headers={"Origin": "https://other.example"})
        assert res.status_code == 200 and "Access-Control-Allow-Origin" not in res.headers
    finally:
        app.config["KIVA_CORS_ORIGINS"] = []


@pytest.mark.skipif(EXTERNAL, reason="builds an app of its own, in-process")
def test_closed_route_answers_json_403():
    # Kiva declares authz on every route; a route that forgets it is CLOSE, and
    # FlaskSimpleAuth 36 answers a plain-text 403 under a JSON content type:
    # errors.json_errors turns any such body into {"error": …}
    import FlaskSimpleAuth as fsa

    from production import errors

    app = fsa.Flask("closed", FSA_AUTH=["basic", "none"], FSA_ERROR_RESPONSE="json:error", FSA_LOGGING_LEVEL=50)
    app.after_request(errors.json_errors)

    @app.get("/forgotten")
    def get_forgotten():  # no authz: CLOSE
        return "never", 200

    res = app.test_client().get("/forgotten")
    assert res.status_code == 403
    assert res.is_json and res.get_json() == {"error": "currently closed route"}
