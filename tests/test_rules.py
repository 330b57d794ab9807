"""Rules of API.md that a regression breaks silently, each caught on SQLite in-process
(make test-sqlite), not only by a drill on a live server: cross-site writes by every
write method of the route table and the CORS allow-list, no secret echoed whatever its
parameter's name, and a database that cannot be reached answered 503, /health first.
"""

import os
import re
import time
import urllib.parse

import pytest
from helpers import (
    EXTERNAL,
    app_config,
    app_database,
    app_routes,
    basic,
    bearer,
    other_app,
    register,
    unique,
    unreachable_database,
)

REFUSED = {"error": "cross-site request refused"}
WRITES = ("POST", "PUT", "PATCH", "DELETE")
# what a browser sends on a request from another site's page
CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # a sandboxed frame, a file:// page
]
in_process_only = pytest.mark.skipif(EXTERNAL, reason="changes the app's configuration: in-process only")


def own_origin() -> str:
    """The Origin a browser sends on a page of the server under test."""
    host = os.environ["FLASK_TESTER_APP"].split("/")[2] if EXTERNAL else "localhost"
    return f"http://{host}"


def write(api, method: str, status: int, sid: int, headers: dict, name: str):
    """One write of each method to /stuff (POST) or /stuff/<sid>."""
    path, data = ("/stuff", {"stuff": name}) if method == "POST" else (f"/stuff/{sid}", {"stuff": name})
    return api.request(method, path, status, login=None, headers=headers, data={} if method == "DELETE" else data)


#
# cross-site writes: every write route, every write method
#


@pytest.mark.parametrize("headers", CROSS_SITE, ids=["sec-fetch-site", "foreign-origin", "null-origin"])
def test_cross_site_refused_on_every_write_route(api, headers):
    # the refusal comes before authentication and parameters: without credentials, on
    # ids that do not exist, only the cross-site check can answer this 403
    routes = sorted((m, r) for m, r in app_routes() if m in WRITES)
    assert {m for m, _ in routes} == set(WRITES)
    for method, rule in routes:
        path = re.sub(r"<[^>]+>", "999999999", rule)
        res = api.request(method, path, 403, login=None, headers=headers)
        assert res.json == REFUSED, (method, path)


@pytest.mark.parametrize("headers", CROSS_SITE, ids=["sec-fetch-site", "foreign-origin", "null-origin"])
def test_cross_site_writes_change_nothing(api, headers):
    name = unique("Csrf")
    sid = api.post("/stuff", 201, login=None, data={"stuff": name}).json["sid"]
    before = api.get(f"/stuff/{sid}", 200, login=None)
    names = {method: unique("Csrf") for method in WRITES}
    for method in WRITES:
        assert write(api, method, 403, sid, headers, names[method]).json == REFUSED, method
    after = api.get(f"/stuff/{sid}", 200, login=None)
    assert after.json == {"sid": sid, "stuff": name} and after.headers["ETag"] == before.headers["ETag"]
    assert api.get("/stuff", 200, login=None, data={"filter": names["POST"]}).json == []
    # the same browser's same-site and same-origin writes, and scripts' (no header), pass
    for allowed in ({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "same-site"}, {"Origin": own_origin()}, {}):
        for method in ("PUT", "PATCH"):
            write(api, method, 204, sid, allowed, unique("Csrf"))
        posted = write(api, "POST", 201, sid, allowed, unique("Csrf")).json["sid"]
        write(api, "DELETE", 204, posted, allowed, "")
    write(api, "DELETE", 204, sid, {"Origin": own_origin()}, "")
    assert api.get(f"/stuff/{sid}", 404, login=None).json == {"error": f"no such sid: {sid}"}


@in_process_only
def test_cors_allow_list_writes(api):
    allowed = "https://app.example"
    with app_config(KIVA_CORS_ORIGINS=[allowed]):
        name = unique("Cors")
        res = write(api, "POST", 201, 0, {"Origin": allowed}, name)
        sid = res.json["sid"]
        assert res.headers["Access-Control-Allow-Origin"] == allowed
        # origins that only look like the allowed one, and a foreign one: refused
        for foreign in ("https://evil.example", "http://app.example", "https://app.example.evil.example"):
            for method in WRITES:
                res = write(api, method, 403, sid, {"Origin": foreign}, unique("Cors"))
                assert res.json == REFUSED and "Access-Control-Allow-Origin" not in res.headers, (foreign, method)
        assert api.get(f"/stuff/{sid}", 200, login=None).json == {"sid": sid, "stuff": name}
        # the allowed origin's writes: every method
        for method in ("PUT", "PATCH"):
            renamed = unique("Cors")
            res = write(api, method, 204, sid, {"Origin": allowed}, renamed)
            assert res.headers["Access-Control-Allow-Origin"] == allowed
            assert api.get(f"/stuff/{sid}", 200, login=None).json == {"sid": sid, "stuff": renamed}
        write(api, "DELETE", 204, sid, {"Origin": allowed}, "")
    assert api.get(f"/stuff/{sid}", 404, login=None).json == {"error": f"no such sid: {sid}"}
    # without the allow-list, the same origin is a foreign one
    assert write(api, "POST", 403, 0, {"Origin": allowed}, unique("Cors")).json == REFUSED


#
# no secret echoed, whatever the parameter that holds it
#

SECRET = "Zx9-never-echo-me"


def no_secret(res, parameter: str, secret: str = SECRET):
    """A 400 about `parameter`, the secret not echoed."""
    assert f'parameter "{parameter}"' in res.json["error"], res.json
    assert secret not in res.text, res.text


def test_secret_parameters_never_echoed(api):
    login, password, uid = register(api, "echo", SECRET)
    own = basic(login, password)
    # each secret parameter of the API with a value of the wrong type (FlaskSimpleAuth's
    # message quotes the value refused), not the password the request authenticates with
    other = "Qw7-another-secret"
    no_secret(api.post("/register", 400, login=None, json={"login": unique("echo"), "pword": [other]}), "pword", other)
    no_secret(api.get("/cmp/hash", 400, login=None, headers=own, json={"apass": [other]}), "apass", other)
    res = api.patch(f"/users/{uid}", 400, login=None, headers=own, json={"password": "New-pass-1", "current": [other]})
    no_secret(res, "current", other)
    no_secret(api.patch(f"/users/{uid}", 400, login="calvin", json={"password": [other]}), "password", other)
    res = api.post("/users", 400, login="calvin", json={"user": {"login": "", "password": other}})
    assert "invalid user" in res.json["error"] and other not in res.text
    # a password typed in the wrong box: whatever parameter's message echoes it, the
    # request's password (USER/PASS, Basic) is not in the answer
    for credentials in ({"json": {"USER": login, "PASS": SECRET, "i": SECRET, "j": 1}}, {"headers": own}):
        kwargs = {"json": {"i": SECRET, "j": 1}, **credentials}
        no_secret(api.get("/cmp/add", 400, login=None, **kwargs), "i")
    token = api.get("/login", 200, login=None, headers=own).json
    res = api.get("/cmp/add", 400, login=None, headers=bearer(token), json={"i": token, "j": 1})
    assert res.json["error"].startswith('parameter "i"') and token.split(":")[-1] not in res.text
    for tampered in [token[:-1] + ("0" if token[-1] != "0" else "1"), token + ":x", token.replace("kiva/", "other/")]:
        res = api.get("/qui-suis-je", 401, login=None, headers=bearer(tampered))
        assert res.json == {"error": "invalid token"} and tampered not in res.text
    api.delete(f"/users/{uid}", 204, login="calvin")


def test_secrets_never_echoed_in_any_form(api):
    """A password with a quote, a backslash and a newline: neither its raw form nor its
    escaped one (FlaskSimpleAuth's messages quote values with repr) in an error, from a
    JSON body or from the query string; a `user` object sent as a string: not echoed."""
    password = 'Qw7\\pa"ss\nword'
    login, _, uid = register(api, "echo-forms", password)
    own = basic(login, password)
    forms = (password, repr(password)[1:-1])
    for res, message in (
        (
            api.get("/cmp/add", 400, login=None, headers=own, json={"i": password, "j": 1}),
            "parameter \"i\" type error on *** for <class 'int'>",
        ),
        (
            api.get("/cmp/add?" + urllib.parse.urlencode({"i": password, "j": 1}), 400, login=None, headers=own),
            "parameter \"i\" conversion error: invalid literal for int() with base 0: '***'",
        ),
    ):
        assert res.json == {"error": message}, res.json
        assert not any(form in res.text for form in forms), res.text
    user = '{"login": 3, "password": "Qw7-user-secret"}'
    res = api.post("/users", 400, login="calvin", json={"user": user})
    assert res.json == {"error": 'error on parameter "user": unexpected value *** for dict'}
    api.delete(f"/users/{uid}", 204, login="calvin")


@in_process_only
def test_request_secrets_all_found_longest_first():
    """What redaction removes from a message: every secret the request carries, from the
    body (a `user` object's password too), the basic password, the Authorization header's
    credentials whole (a token with a space in it), from 4 characters on, and each in its
    escaped form; the longest first, so that a secret inside another leaves nothing of it."""
    from app import app
    from production import errors

    body = {"pword": "abcd", "current": "abcd-longer", "user": {"login": "x", "password": "zz-user-password"}}
    headers = {"Authorization": "Bearer tok en"}
    with app.test_request_context("/users", method="POST", json=body, headers=headers):
        found = errors.request_secrets()
    assert found == ["zz-user-password", "abcd-longer", "tok en", "abcd"]
    with app.test_request_context("/users", method="POST", json=["not", "an", "object"], headers=headers):
        assert errors.request_secrets() == ["tok en"]
    with app.test_request_context("/users", method="POST", data={"PASS": "a\nb-c"}):  # its escaped form too
        assert errors.request_secrets() == ["a\\nb-c", "a\nb-c"]


#
# the database out of reach: 503 with a JSON error, /health says so, back by itself
#


@in_process_only
def test_unreachable_database_is_503(api):
    unavailable = {"error": "database unavailable, please retry later"}
    assert api.get("/health", 200, login=None).json == {"status": "ok", "db": "ok"}
    with app_database(unreachable_database()):
        res = api.get("/health", 503, login=None)
        assert res.json == {"error": "database unreachable", "status": "error", "db": "unreachable"}
        assert api.get("/stuff", 503, login=None).json == unavailable
        assert api.get("/version", 503, login=None).json == unavailable
        assert api.post("/stuff", 503, login=None, data={"stuff": unique("Down")}).json == unavailable
        # a password check that cannot read the user: the outage, not a 401
        assert api.get("/whoami", 503, login=None, headers=basic("hobbes", "susie")).json == unavailable
    # back by itself, within the connection back-off (anodb_private.Backoff: 1 s at most)
    deadline = time.monotonic() + 10
    while (res := api.get("/health", None, login=None)).status_code != 200:
        assert res.status_code == 503 and time.monotonic() < deadline, res.json
        time.sleep(0.1)
    assert res.json == {"status": "ok", "db": "ok"}
    assert api.get("/stuff/1", 200, login=None).json == {"sid": 1, "stuff": "Chair"}


@in_process_only
def test_app_loaded_while_the_database_is_down():
    # a server process that loads the app during an outage (mod_wsgi's second daemon
    # process on its first request, a restarted one), with the production configuration
    # (its start-up checks): loading must not fail on the database, else the WSGI script
    # fails and that process answers Apache's HTML 500 to every request; JSON 503s instead
    unavailable = {"error": "database unavailable, please retry later"}
    config = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server.conf")
    down = "host=/nonexistent-kiva-folder port=1 dbname=kiva user=kiva"
    code = 'out(client.get("/version"))\nout(client.get("/stuff/1"))'
    results = other_app(code, APP_CONFIG=config, KIVA_DB=down, APP_SECRET="not-a-secret-" + "x" * 16)
    assert results == [[503, unavailable], [503, unavailable]]
