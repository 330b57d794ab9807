"""ETag / If-None-Match / If-Match on single resources (API.md, Conventions): 304 for a
client that has the current version, 412 for a write based on an older one, and of
two clients writing with the same ETag exactly one wins."""

import functools
import re
from typing import Any

import pytest
from helpers import EXTERNAL, SEED_PASSWORDS, basic, register, unique
from race import race

STALE = "precondition failed: the resource was changed since (If-Match), get it again"
ADMIN = {"login": None, "headers": basic("calvin", SEED_PASSWORDS["calvin"])}

# the single resources that have an ETag, as the route table has them: every rule
# /<collection>/<id> with a write method (test_single_resources checks it in-process)
SINGLE = {"/stuff/<sid>", "/owners/<oid>", "/things/<tid>", "/users/<uid>", "/object/<oid>"}


@pytest.fixture
def made(api):
    """Resource(kind) for the test, removed afterwards."""
    rows: list[Resource] = []

    def make(kind: str) -> Resource:
        rows.append(Resource(api, kind))
        return rows[-1]

    yield make
    for row in rows:
        row.remove(api)


class Resource:
    """A fresh row of one kind: its path, the credentials to write it, write bodies."""

    def __init__(self, api, kind: str):
        self.kind, self.auth = kind, dict[str, Any](ADMIN)
        if kind == "stuff":
            self.auth = {"login": None}
            self.id = api.post("/stuff", 201, data={"stuff": unique("etag")}, **self.auth).json["sid"]
        elif kind == "owners":
            self.id = api.post("/owners", 201, data=self.owner(), **self.auth).json["oid"]
        elif kind == "things":
            self.oid = api.post("/owners", 201, data=self.owner(), **self.auth).json["oid"]
            data = {"tname": unique("etag"), "oid": self.oid, "tprice": 1}
            self.id = api.post("/things", 201, data=data, **self.auth).json["tid"]
        elif kind == "users":
            self.id = register(api, "etag")[2]
        else:  # object: written by its owner
            login, password, _ = register(api, "etag")
            self.auth = {"login": None, "headers": basic(login, password)}
            self.id = api.post("/object", 201, data={"object": unique("etag")}, **self.auth).json["oid"]
        self.path = f"/{kind}/{self.id}"

    @staticmethod
    def owner() -> dict:
        name = unique("etag")
        return {"oname": name, "omail": f"{name}@example.org"}

    def body(self, method: str) -> dict:
        """A write of this method that changes the row (nothing for DELETE)."""
        if method == "DELETE":
            return {}
        if self.kind == "stuff":
            return {"data": {"stuff": unique("etag")}}
        if self.kind == "owners":
            return {"data": self.owner() if method == "PUT" else {"omail": f"{unique('m')}@example.org"}}
        if self.kind == "things":
            if method == "PUT":
                return {"data": {"tname": unique("etag"), "oid": self.oid, "tprice": 2}}
            return {"data": {"tname": unique("etag")}}
        if self.kind == "users":
            if method == "PUT":
                user = {"uid": self.id, "login": unique("etag"), "password": "password", "isAdmin": False}
                return {"json": {"user": user}}
            self.admin = not getattr(self, "admin", False)
            return {"data": {"isadmin": self.admin}}
        return {"data": {"object": unique("etag")}}

    def remove(self, api):
        """Delete what this row made (the suite leaves the seed data only)."""
        self.call(api, "DELETE", None)
        if self.kind == "things":
            api.delete(f"/owners/{self.oid}", 204, **ADMIN)
        elif self.kind == "object":
            login = api.get("/whoami", 200, **self.auth).json
            uid = next(u["uid"] for u in api.get("/users", 200, data={"filter": login}, **ADMIN).json)
            api.delete(f"/users/{uid}", 204, **ADMIN)

    def call(self, api, method: str, status: int | None, etag: str | None = None, **kwargs):
        auth = dict(self.auth, headers=dict(self.auth.get("headers", {})))
        if etag is not None:
            auth["headers"]["If-Match"] = etag
        return api.request(method, self.path, status, **auth, **kwargs)

    def get(self, api, status: int = 200, **headers):
        auth = dict(self.auth, headers=dict(self.auth.get("headers", {}), **headers))
        return api.get(self.path, status, **auth)


KINDS = [path.split("/")[1] for path in sorted(SINGLE)]
WRITES = [(k, method) for k in KINDS for method in ("PUT", "PATCH", "DELETE") if (k, method) != ("object", "PUT")]


@pytest.mark.skipif(EXTERNAL, reason="the route table: in-process")
def test_single_resources():
    from app import app

    single = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule)
        for rule in app.url_map.iter_rules()
        if re.fullmatch(r"/\w+/<[^>]+>", rule.rule) and {"PUT", "PATCH", "DELETE"} & (rule.methods or set())
    }
    assert single == SINGLE


@pytest.mark.parametrize("kind", KINDS)
def test_etag_and_304(api, made, kind):
    row = made(kind)
    res = row.get(api)
    etag = res.headers["ETag"]
    assert re.fullmatch(rf'"{row.id}-\d+"', etag) and "version" not in res.json
    body = res.json
    # the client has it: 304 without a body; weak comparison for If-None-Match, lists, *
    for header in (etag, f"W/{etag}", f'"0-0", {etag}', "*"):
        res = row.get(api, 304, **{"If-None-Match": header})
        assert res.headers["ETag"] == etag and not (getattr(res, "data", None) or getattr(res, "content", b""))
    res = row.get(api, 200, **{"If-None-Match": f'"{row.id}-0"'})
    assert res.json == body and res.headers["ETag"] == etag
    # a write gives a new ETag, whose 304 the old one no longer gets
    row.call(api, "PATCH" if kind != "stuff" else "PUT", 204, **row.body("PATCH"))
    res = row.get(api, 200, **{"If-None-Match": etag})
    assert res.headers["ETag"] != etag and res.json != body


@pytest.mark.parametrize("kind,method", WRITES)
def test_stale_if_match(api, made, kind, method):
    """Two clients read, both write with their If-Match: the first 204, the second 412."""
    row = made(kind)
    first, second = row.get(api).headers["ETag"], row.get(api).headers["ETag"]
    assert first == second
    written = "PATCH" if method == "DELETE" else method  # a DELETE loses against an update
    row.call(api, written, 204, etag=first, **row.body(written))
    after = row.get(api)
    res = row.call(api, method, 412, etag=second, **row.body(method))
    assert res.json == {"error": STALE}
    # nothing changed: the row holds the first write
    again = row.get(api)
    assert again.json == after.json and again.headers["ETag"] == after.headers["ETag"] != first
    # garbage, empty tags (schemathesis found a 500 there), another row's tag, a weak tag:
    # none is the current version
    current = after.headers["ETag"]
    for stale in ('"x"', '""', '"", "x"', f'"{row.id + 1}-{current.strip(chr(34)).split("-")[1]}"', f"W/{current}"):
        assert row.call(api, method, 412, etag=stale, **row.body(method)).json["error"].startswith("precondition")
    # the current ETag, or *, goes through
    row.call(api, method, 204, etag=current if method != "DELETE" else "*", **row.body(method))
    if method == "DELETE":
        assert row.get(api, 404).json["error"]
        # 404 still 404, whatever the If-Match
        row.call(api, method, 404, etag=current)
    else:
        assert row.get(api).headers["ETag"] != current


@pytest.mark.parametrize("kind,method", WRITES)
def test_if_match_list_naming_the_current_version(api, made, kind, method):
    """If-Match listing several versions of the row: the write goes through if the
    current one is among them (the route reads it to tell), 412 if none is."""
    row = made(kind)
    current = row.get(api).headers["ETag"]
    rid, version = current.strip('"').split("-")
    old = [f'"{rid}-{int(version) + n}"' for n in (5, 7)]
    assert row.call(api, method, 412, etag=", ".join(old), **row.body(method)).json == {"error": STALE}
    assert row.get(api).headers["ETag"] == current
    row.call(api, method, 204, etag=", ".join([old[0], current, old[1]]), **row.body(method))
    if method == "DELETE":
        assert row.get(api, 404).json["error"]
    else:
        assert row.get(api).headers["ETag"] != current


@pytest.mark.parametrize("kind", KINDS)
def test_missing_is_404(api, made, kind):
    row = made(kind)
    missing = Resource.__new__(Resource)
    missing.auth, missing.kind, missing.id = row.auth, kind, row.id + 10**9
    missing.path = f"/{kind}/{missing.id}"
    assert missing.get(api, 404, **{"If-None-Match": "*"}).json["error"]
    for method in ("PATCH", "DELETE"):
        assert missing.call(api, method, 404, etag=f'"{missing.id}-1"', **row.body(method)).json["error"]


def test_lost_update_race(api, raw, made):
    """Two clients write with the same ETag: the second write waits on the first's
    uncommitted one (tests/race.py), then changes nothing (412) when the first commits,
    or goes through (204) when it rolls back. Nothing is lost either way."""
    for commit in (True, False):
        row = made("stuff")
        etag = row.get(api).headers["ETag"]
        version = int(etag.strip('"').split("-")[1])
        first, second = unique("race"), unique("race")
        res = race(
            "upd_stuff_sid",
            {"sid": row.id, "stuff": first, "version": version},
            functools.partial(raw.request, "PUT", row.path, data={"stuff": second}, headers={"If-Match": etag}),
            commit,
        )
        if commit:
            assert (res.status_code, res.json_body) == (412, {"error": STALE})
        else:
            assert (res.status_code, res.json_body) == (204, None)
        assert row.get(api).json == {"sid": row.id, "stuff": first if commit else second}


# issue 20, point 7: a version is [0-9]{1,18} in ASCII; anything else is a tag no row has
# (412), never a 500: int() refuses more than 4,300 digits, and "²".isdigit() is True
# (a header is bytes, latin-1 for WSGI: "²" is one, Arabic-Indic digits come as their UTF-8 bytes)
NOT_VERSIONS = ["9" * 5000, "²", "١٢".encode().decode("latin-1"), "1" * 19, "99999999999", "+1", " 1", "1_0", "-1"]


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_if_match_version_not_a_number(api, made, method):
    row = made("stuff")
    current = row.get(api).headers["ETag"]
    for version in NOT_VERSIONS:
        res = row.call(api, method, 412, etag=f'"{row.id}-{version}"', **row.body(method))
        assert res.json["error"].startswith("precondition failed"), version
        # with the current tag beside it, the current one still matches (nothing written yet)
    assert row.get(api).headers["ETag"] == current
    row.call(api, "PATCH", 204, etag=f'"{row.id}-{"9" * 5000}", {current}', **row.body("PATCH"))
