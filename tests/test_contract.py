"""Rules of the contract (shared/API.md) that no other file tests: the default page
size, paging on the object lists, parameters in the query string of writes, the token
lifetime, the production bcrypt cost, 404 on PATCH of what does not exist, POST /login
refusing a token, and /version's time coming from the database.
"""

import datetime
import logging
import os
import re

import pytest
from helpers import EXTERNAL, HERE, SEED_PASSWORDS, basic, bearer, register, token_limit, unique

ADMIN = basic("calvin", SEED_PASSWORDS["calvin"])


def next_link(res) -> str:
    """The path and query of the Link rel="next" header, without the script root."""
    link = res.headers["Link"]
    assert link.endswith('; rel="next"'), link
    url = link[link.index("<") + 1 : link.index(">")]
    return url[len(os.environ.get("FLASK_TESTER_APP", "")) :] if url.startswith("http") else url


def strip_root(path: str) -> str:
    """/api/owned?… behind Apache's /api: the path FlaskTester expects, from the route on."""
    return path[path.index("/", 1) :] if path.startswith("/api/") else path


def test_default_limit_is_100(api):
    prefix = unique("Hundred")
    sids = [api.post("/stuff", 201, data={"stuff": f"{prefix}-{i:03d}"}).json["sid"] for i in range(101)]
    res = api.get("/stuff", 200, data={"filter": prefix + "%"})
    assert [row["sid"] for row in res.json] == sids[:100]
    assert f"after={sids[99]}" in res.headers["Link"] and "limit=100" in res.headers["Link"]
    res = api.get(strip_root(next_link(res)), 200)
    assert [row["sid"] for row in res.json] == sids[100:] and "Link" not in res.headers
    for sid in sids:
        api.delete(f"/stuff/{sid}", 204)


def test_paging_of_objects(api):
    login, password, uid = register(api, "pager")
    me = basic(login, password)
    oids = [
        api.post("/object", 201, login=None, headers=me, data={"object": unique("Page")}).json["oid"] for _ in "abc"
    ]
    for path, headers in [(f"/owned/{uid}", me), ("/owned", ADMIN), ("/object", ADMIN)]:
        # from just before our first object: ours only, since the last ones are ours
        res = api.get(path, 200, login=None, headers=headers, data={"after": oids[0] - 1, "limit": 2})
        assert [row["oid"] for row in res.json] == oids[:2], path
        assert f"after={oids[1]}" in res.headers["Link"] and "limit=2" in res.headers["Link"], path
        res = api.get(strip_root(next_link(res)), 200, login=None, headers=headers)
        assert [row["oid"] for row in res.json] == oids[2:] and "Link" not in res.headers, path
        assert "limit" in api.get(path, 400, login=None, headers=headers, data={"limit": 0}).json["error"]
    for oid in oids:
        api.delete(f"/object/{oid}", 204, login=None, headers=me)
    api.delete(f"/users/{uid}", 204, login=None, headers=ADMIN)


def test_parameters_in_the_query_string_of_writes(api):
    name, renamed = unique("Query"), unique("Query")
    sid = api.post(f"/stuff?stuff={name}", 201).json["sid"]
    assert api.get(f"/stuff/{sid}", 200).json == {"sid": sid, "stuff": name}
    api.patch(f"/stuff/{sid}?stuff={renamed}", 204)
    assert api.get(f"/stuff/{sid}", 200).json == {"sid": sid, "stuff": renamed}
    api.put(f"/stuff/{sid}?stuff={name}", 204)
    assert api.get(f"/stuff/{sid}", 200).json == {"sid": sid, "stuff": name}
    oname = unique("QueryOwner")
    oid = api.post(f"/owners?oname={oname}&omail=q@example.org", 201, login="calvin").json["oid"]
    assert api.get(f"/owners/{oid}", 200, login="hobbes").json == {"oid": oid, "oname": oname, "omail": "q@example.org"}
    api.delete(f"/owners/{oid}", 204, login="calvin")
    api.delete(f"/stuff/{sid}", 204)


def test_token_lifetime(api):
    minutes = float(os.environ.get("KIVA_TOKEN_MINUTES", "60"))  # the server's, as make check sets it
    before = datetime.datetime.now(datetime.UTC)
    token = api.get("/login", 200, login="hobbes").json
    after = datetime.datetime.now(datetime.UTC)
    limit = token_limit(token)
    lifetime = datetime.timedelta(minutes=minutes)
    # the limit is written to the second: allow one second either way
    assert (
        before + lifetime - datetime.timedelta(seconds=1) <= limit <= after + lifetime + datetime.timedelta(seconds=1)
    )
    assert api.get("/whoami", 200, login=None, headers=bearer(token)).json == "hobbes"


def test_post_login_refuses_a_token(api):
    token = api.get("/login", 200, login="hobbes").json
    res = api.post("/login", 401, login=None, headers=bearer(token))
    assert isinstance(res.json["error"], str) and token not in res.text
    assert "WWW-Authenticate" in res.headers


def test_patch_of_what_does_not_exist(api):
    # the permission check finds nothing to check: 404, as GET /users/<uid> says
    assert api.patch("/users/424242", 404, login="calvin", json={"isadmin": True}).json == {"error": "object not found"}
    assert api.patch("/users/424242", 404, login="calvin", data={"password": "long-enough"}).json == {
        "error": "object not found"
    }
    assert api.patch("/object/424242", 404, login="hobbes", data={"object": unique("X")}).json == {
        "error": "object not found"
    }


@pytest.mark.skipif(os.environ.get("KIVA_DEPLOYED") != "1", reason="the production configuration, deployed")
def test_production_bcrypt_cost(api):
    # deployed with server.conf (make test-apache): hashes at cost 12
    hashed = api.get("/cmp/hash", 200, login="hobbes", data={"apass": "Wow!"}).json
    assert re.fullmatch(r"\$2[aby]\$12\$[./A-Za-z0-9]{53}", hashed), hashed


@pytest.mark.skipif(EXTERNAL, reason="loads server.conf in-process")
def test_production_refuses_a_low_bcrypt_cost(monkeypatch):
    import FlaskSimpleAuth as fsa

    import auth

    monkeypatch.setenv("KIVA_DB", "host=/nonexistent dbname=kiva")
    monkeypatch.setenv("APP_SECRET", "a-secret-of-at-least-16-characters")
    formatters = [handler.formatter for handler in logging.getLogger().handlers]  # server.conf sets them
    try:
        prod = fsa.Flask("prod")
        prod.config.from_pyfile(os.path.join(HERE, "server.conf"))
    finally:
        for handler, formatter in zip(logging.getLogger().handlers, formatters, strict=False):
            handler.setFormatter(formatter)
    assert prod.config["KIVA_PRODUCTION"] is True and prod.config["FSA_PASSWORD_OPTS"]["rounds"] >= 12
    prod.config["FSA_PASSWORD_OPTS"] = {"rounds": 11}
    with pytest.raises(RuntimeError, match="bcrypt cost must be at least 12"):
        auth.init_app(prod)


@pytest.mark.skipif(EXTERNAL, reason="moves the app's clock: in-process only")
def test_version_time_comes_from_the_database(api):
    import time_machine

    real = datetime.datetime.now(datetime.UTC)
    # the app's Python clock 25 years back: the database's clock stays where it is
    with time_machine.travel(datetime.datetime(2001, 2, 3, 4, 5, 6, tzinfo=datetime.UTC), tick=False):
        assert datetime.datetime.now(datetime.UTC).year == 2001
        now = datetime.datetime.fromisoformat(api.get("/version", 200).json["now"])
    assert abs((now - real).total_seconds()) < 300, now
