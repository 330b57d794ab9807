"""Users and authentication: the AAA and Pydantic transcripts of the course, and more."""

import datetime
import functools
import json
import time

from helpers import SEED_PASSWORDS, TOKEN_REALM, basic, register, unique
from race import race

ADMIN = basic("calvin", SEED_PASSWORDS["calvin"])


def test_hello_transcript(api):
    res = api.get("/hello", 401, login=None)
    assert res.json == {"error": "missing authorization header"}
    # no Basic challenge: browsers would prompt, then send the credentials cross-site too
    assert res.headers["WWW-Authenticate"] == 'Bearer realm="kiva"'
    # unknown login and wrong password: the same message, which does not tell which
    unknown = api.get("/hello", 401, login=None, headers=basic("hacker", "secret")).json
    wrong = api.get("/hello", 401, login=None, headers=basic("hobbes", "pas-le-bon")).json
    assert unknown == {"error": "invalid user/password for hacker"}
    assert wrong == {"error": "invalid user/password for hobbes"}
    assert api.get("/hello", 200, login="hobbes").json == "hello hobbes!"


def test_admin_transcript(api):
    assert api.get("/admin", 403, login="hobbes").json == {"error": 'not in group "ADMIN"'}
    assert api.get("/admin", 200, login="calvin").json == "hello admin calvin!"


def test_register_whoami_login(api):
    login, password, uid = register(api, password="secret")
    assert isinstance(uid, int)
    # taken login: a conflict, never a 500
    assert api.post("/register", 409, data={"login": login, "pword": "other-pw"}).json == {
        "error": f"login already taken: {login}"
    }
    assert api.post("/register", 409, data={"login": "calvin", "pword": "comics"}).json == {
        "error": "login already taken: calvin"
    }
    assert api.get("/whoami", 200, login=None, headers=basic(login, password)).json == login
    # param authentication, in the body
    res = api.get("/whoami", 200, login=None, data={"USER": login, "PASS": password})
    assert res.json == login
    token = api.get("/login", 200, login=None, headers=basic(login, password)).json
    assert token.startswith(f"{TOKEN_REALM}:{login}:") and token.count(":") == 3
    api.delete(f"/users/{uid}", 204, login="calvin")


def test_register_bad_parameters(api):
    assert api.post("/register", 400, data={"login": unique("u")}).json == {"error": 'parameter "pword" is missing'}
    assert api.post("/register", 400, data={"pword": "password"}).json == {"error": 'parameter "login" is missing'}
    for bad_login in ["", "x" * 201, "new\nline"]:
        assert "a name must" in api.post("/register", 400, data={"login": bad_login, "pword": "password"}).json["error"]
    short = api.post("/register", 400, data={"login": unique("u"), "pword": "abc"}).json
    assert short == {"error": "password is too short, must be at least 6"}
    long = api.post("/register", 400, data={"login": unique("u"), "pword": "é" * 40}).json
    assert "72 bytes" in long["error"]


def test_register_concurrently(api, raw):
    """Two clients register the same login at once: the second insert waits on the
    first's uncommitted row (tests/race.py), then is refused (409, never a 500) when the
    first commits, or goes through (201) when it rolls back."""
    for commit in (True, False):
        login = unique("race")
        first = {"login": login, "pword": "not-a-hash", "isadmin": False, "now": time.time()}
        data = {"login": login, "pword": "password"}
        res = race("add_user", first, functools.partial(raw.request, "POST", "/register", data=data), commit)
        rows = api.get("/users", 200, data={"filter": login}, login="calvin").json
        assert [r["login"] for r in rows] == [login]
        if commit:
            assert (res.status_code, res.json_body) == (409, {"error": f"login already taken: {login}"})
        else:
            assert (res.status_code, res.json_body) == (201, {"uid": rows[0]["uid"]})
        api.delete(f"/users/{rows[0]['uid']}", 204, login="calvin")


def test_credentials_in_query_string_refused(api):
    res = api.get("/whoami?USER=hobbes&PASS=susie", 400, login=None)
    assert res.json == {"error": "credentials must be sent in the request body, not in the URL"}


def test_users_list(api):
    rows = api.get("/users", 200, login="calvin").json
    calvin = rows[0]
    assert set(calvin) == {"uid", "login", "isadmin", "created"}  # never the hash
    assert calvin["uid"] == 1 and calvin["login"] == "calvin" and calvin["isadmin"] is True
    assert datetime.datetime.fromisoformat(calvin["created"]).tzinfo is not None
    assert calvin["created"].endswith("+00:00")
    assert api.get("/users", 200, login="calvin", data={"filter": "hob%"}).json[0]["login"] == "hobbes"
    res = api.get("/users", 200, login="calvin", data={"limit": 1})
    assert len(res.json) == 1 and 'after=1&limit=1>; rel="next"' in res.headers["Link"]
    assert "limit" in api.get("/users", 400, login="calvin", data={"limit": 0}).json["error"]


def test_users_pydantic_transcript(api):
    login = unique("bro")
    user = {"login": login, "password": "bro-pass", "isAdmin": False}
    uid = api.post("/users", 201, login="calvin", json={"user": user}).json["uid"]
    assert api.post("/users", 409, login="calvin", json={"user": user}).json == {
        "error": f"login already taken: {login}"
    }
    # the same as a form parameter holding JSON
    sis = unique("sis")
    form = json.dumps({"login": sis, "password": "sis-pass", "isAdmin": False})
    sid = api.post("/users", 201, login="calvin", data={"user": form}).json["uid"]
    # PUT: the uid of the body must be the one of the path
    changed = {"uid": sid, "login": sis, "password": "sis-PASS", "isAdmin": True}
    api.put(f"/users/{sid}", 204, login="calvin", json={"user": changed})
    got = api.get(f"/users/{sid}", 200, login="calvin").json
    assert got["login"] == sis and got["isadmin"] is True and "pword" not in got and "password" not in got
    assert api.get("/admin", 200, login=None, headers=basic(sis, "sis-PASS")).json == f"hello admin {sis}!"
    assert api.put(f"/users/{sid}", 400, login="calvin", json={"user": {**changed, "uid": uid}}).json == {
        "error": "inconsistent user id"
    }
    dad = {"uid": 424242, "login": unique("dad"), "password": "dad-pass", "isAdmin": True}
    assert api.put("/users/424242", 404, login="calvin", json={"user": dad}).json == {"error": "no such user: 424242"}
    # renaming to a taken login is a conflict
    res = api.put(f"/users/{sid}", 409, login="calvin", json={"user": {**changed, "login": login}})
    assert res.json == {"error": "conflict: this name is already taken"}
    assert api.get(f"/users/{sid}", 200, login="calvin").json["login"] == sis
    for u in (uid, sid):
        api.delete(f"/users/{u}", 204, login="calvin")


def test_users_bad_models(api):
    for bad in [
        {"login": "x"},  # missing fields
        {"login": "", "password": "password", "isAdmin": False},
        {"login": unique("u"), "password": "password", "isAdmin": "yes"},
        {"login": unique("u"), "password": "password", "isAdmin": False, "extra": 1},
        "not an object",
    ]:
        assert "error" in api.post("/users", 400, login="calvin", json={"user": bad}).json, bad
    assert "error" in api.post("/users", 400, login="calvin", data={"user": "{not json"}).json
    assert (
        "too short"
        in api.post(
            "/users",
            400,
            login="calvin",
            json={"user": {"login": unique("u"), "password": "x", "isAdmin": False}},
        ).json["error"]
    )


def test_user_get_and_patch(api):
    login, password, uid = register(api)
    me = basic(login, password)
    got = api.get(f"/users/{uid}", 200, login=None, headers=me).json
    assert got["uid"] == uid and got["login"] == login and got["isadmin"] is False
    assert api.get("/users/424242", 404, login="calvin").json == {"error": "object not found"}
    # nothing to change, bad types
    assert "nothing to change" in api.patch(f"/users/{uid}", 400, login=None, headers=me).json["error"]
    assert "error" in api.patch(f"/users/{uid}", 400, login=None, headers=me, data={"isadmin": "maybe"}).json
    short = {"password": "x", "current": password}
    assert "too short" in api.patch(f"/users/{uid}", 400, login=None, headers=me, data=short).json["error"]
    # a user may not promote themself
    res = api.patch(f"/users/{uid}", 403, login=None, headers=me, data={"isadmin": "true"})
    assert res.json == {"error": "only an administrator may change isadmin"}
    # a user changes their password: the old one is refused at once
    api.patch(f"/users/{uid}", 204, login=None, headers=me, data={"password": "new-password", "current": password})
    api.get("/whoami", 401, login=None, headers=me)
    new = basic(login, "new-password")
    assert api.get("/whoami", 200, login=None, headers=new).json == login
    # an admin promotes, then demotes: effective on the very next request
    api.patch(f"/users/{uid}", 204, login="calvin", json={"isadmin": True})
    api.get("/admin", 200, login=None, headers=new)
    api.patch(f"/users/{uid}", 204, login="calvin", json={"isadmin": False})
    api.get("/admin", 403, login=None, headers=new)
    api.delete(f"/users/{uid}", 204, login="calvin")
    # a deleted user's credentials are refused
    api.get("/whoami", 401, login=None, headers=new)


def test_user_delete(api):
    login, password, uid = register(api)
    oid = api.post("/object", 201, login=None, headers=basic(login, password), data={"object": "Ball"}).json["oid"]
    # still owns an object: refused, and nothing is deleted
    res = api.delete(f"/users/{uid}", 409, login="calvin")
    assert res.json["error"].startswith("conflict")
    assert api.get(f"/users/{uid}", 200, login="calvin").json["login"] == login
    api.delete(f"/object/{oid}", 204, login=None, headers=basic(login, password))
    api.delete(f"/users/{uid}", 204, login="calvin")
    assert api.delete(f"/users/{uid}", 404, login="calvin").json == {"error": f"no such user: {uid}"}
