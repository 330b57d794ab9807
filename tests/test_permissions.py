"""The permission matrix of the AAA routes, generated from one table.

Every route × every identity gets the exact status the contract says. The target
of each case is fresh: a new user (the "owner") with one object, so that the
writing cases cannot disturb each other nor the seed data.
"""

from dataclasses import dataclass

import pytest
from conftest import SEED_PASSWORDS, basic, unique

IDENTITIES = ["none", "unknown", "wrong", "user", "admin", "owner", "nonowner"]


@dataclass
class Target:
    """A fresh user with a known password, owning one fresh object."""

    login: str
    password: str
    uid: int
    oid: int


def credentials(identity: str, target: Target) -> dict[str, str]:
    """The Authorization header of an identity (none: no header at all)."""
    return {
        "none": {},
        "unknown": basic(unique("hacker"), "secret-password"),
        "wrong": basic(target.login, "not-the-password"),
        "user": basic("hobbes", SEED_PASSWORDS["hobbes"]),  # a plain user, unrelated
        "admin": basic("calvin", SEED_PASSWORDS["calvin"]),
        "owner": basic(target.login, target.password),
        "nonowner": basic("susie", SEED_PASSWORDS["susie"]),  # another plain user
    }[identity]


def user_json(target: Target, uid: int | None = None) -> dict:
    return {"user": {"login": target.login, "password": "new-password", "isAdmin": False, "uid": uid}}


# (method, path, parameters, statuses for: none unknown wrong user admin owner nonowner)
NO = (401, 401, 401)
MATRIX = [
    ("GET", "/version", None, (200, 200, 200, 200, 200, 200, 200)),
    ("POST", "/register", lambda t: {"data": {"login": unique("reg"), "pword": "password"}}, (201,) * 7),
    ("GET", "/hello", None, (*NO, 200, 200, 200, 200)),
    ("GET", "/admin", None, (*NO, 403, 200, 403, 403)),
    ("GET", "/whoami", None, (*NO, 200, 200, 200, 200)),
    ("GET", "/login", None, (*NO, 200, 200, 200, 200)),
    ("POST", "/login", None, (*NO, 200, 200, 200, 200)),
    ("GET", "/qui-suis-je", None, (*NO, 401, 401, 401, 401)),  # token only
    ("GET", "/users", None, (*NO, 403, 200, 403, 403)),
    (
        "POST",
        "/users",
        lambda t: {"json": user_json(Target(unique("new"), "", 0, 0))},
        (*NO, 403, 201, 403, 403),
    ),
    ("GET", "/users/{uid}", None, (*NO, 403, 200, 200, 403)),
    (
        "PATCH",
        "/users/{uid}",
        lambda t: {"data": {"password": "changed-pw", "current": t.password}},
        (*NO, 403, 204, 204, 403),
    ),
    ("PATCH", "/users/{uid}", lambda t: {"data": {"isadmin": "true"}}, (*NO, 403, 204, 403, 403)),
    ("PUT", "/users/{uid}", lambda t: {"json": user_json(t, t.uid)}, (*NO, 403, 204, 403, 403)),
    ("DELETE", "/users/{uid}", None, (*NO, 403, 409, 403, 403)),  # 409: they still own an object
    ("GET", "/owned", None, (*NO, 403, 200, 403, 403)),
    ("GET", "/object", None, (*NO, 403, 200, 403, 403)),
    ("GET", "/owned/{uid}", None, (*NO, 403, 200, 200, 403)),
    ("POST", "/object", lambda t: {"data": {"object": unique("Obj")}}, (*NO, 201, 201, 201, 201)),
    ("GET", "/object/{oid}", None, (*NO, 403, 403, 200, 403)),  # its owner only, not even an admin
    ("PATCH", "/object/{oid}", lambda t: {"data": {"object": unique("Ren")}}, (*NO, 403, 403, 204, 403)),
    ("DELETE", "/object/{oid}", None, (*NO, 403, 403, 204, 403)),
    ("GET", "/cmp/add", lambda t: {"data": {"i": 30, "j": 12}}, (*NO, 200, 200, 200, 200)),
    ("GET", "/cmp/hash", lambda t: {"data": {"apass": "Wow!"}}, (*NO, 200, 200, 200, 200)),
]

CASES = [
    pytest.param(method, path, params, identity, status, id=f"{method} {path} {identity} {status}")
    for method, path, params, statuses in MATRIX
    for identity, status in zip(IDENTITIES, statuses, strict=True)
]


@pytest.fixture
def target(api):
    login, password = unique("owner"), "owner-password"
    uid = api.post("/register", 201, data={"login": login, "pword": password}).json["uid"]
    oid = api.post("/object", 201, data={"object": unique("Thing")}, headers=basic(login, password)).json["oid"]
    yield Target(login, password, uid, oid)
    # clean up whatever the case left: the objects (only their owner may, so the admin
    # first restores the password a case may have changed), then the user (admin)
    admin = basic("calvin", SEED_PASSWORDS["calvin"])
    api.patch(f"/users/{uid}", headers=admin, data={"password": password})
    for row in api.get(f"/owned/{uid}", headers=admin).json or []:
        api.delete(f"/object/{row['oid']}", headers=basic(login, password))
    api.delete(f"/users/{uid}", headers=admin)


@pytest.mark.parametrize("method,path,params,identity,status", CASES)
def test_matrix(api, target, method, path, params, identity, status):
    url = path.format(uid=target.uid, oid=target.oid)
    kwargs = params(target) if params else {}
    res = api.request(method, url, status, headers=credentials(identity, target), login=None, **kwargs)
    if status >= 400:
        assert "error" in res.json, res.text
    if status == 401:
        assert "WWW-Authenticate" in res.headers
    if status == 204:
        assert res.data == b""
    if status == 201:  # what the case created is its own to delete
        admin = basic("calvin", SEED_PASSWORDS["calvin"])
        if "uid" in res.json:
            api.delete(f"/users/{res.json['uid']}", 204, headers=admin, login=None)
        else:
            api.delete(f"/object/{res.json['oid']}", 204, headers=credentials(identity, target), login=None)


def test_matrix_size():
    # 24 route rows × 7 identities: the count the closing note reports
    assert len(CASES) == len(MATRIX) * len(IDENTITIES) == 168
