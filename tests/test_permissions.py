"""The permission matrix of every route, driven by the route table.

MATRIX has an entry for each (method, rule) of app.url_map, and test_matrix_covers_
every_route checks that it has exactly those: a new route without its line fails.
For each route × each identity, the exact status the contract says, with its body.

The cases share one fresh user, the "owner" of the objects, and a few whose password
"wrong" misses; every id in a path is a fresh row of the request's own (a stuff, an
object, an owner with a thing; a user, for a write on /users/<uid> that may succeed),
deleted afterwards with its status checked.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from helpers import SEED_PASSWORDS, app_routes, basic, unique

IDENTITIES = ["none", "unknown", "wrong", "user", "admin", "owner", "nonowner"]
ADMIN = basic("calvin", SEED_PASSWORDS["calvin"])


@dataclass
class Case:
    """One request of a route, and its status for each identity (IDENTITIES' order)."""

    statuses: tuple[int, ...]
    params: Callable[[], dict] = dict  # the request's parameters, fresh for each identity
    fresh_user: bool = False  # the request changes or deletes the user of the path: one per identity


NO = (401, 401, 401)  # none, unknown, wrong


def everyone(status: int) -> tuple[int, ...]:
    return (status,) * 7


def auth(status: int) -> tuple[int, ...]:
    return (*NO, status, status, status, status)


def admin(status: int) -> tuple[int, ...]:
    return (*NO, 403, status, 403, 403)


def name() -> dict:
    return {"data": {"stuff": unique("Perm")}}


MATRIX: dict[tuple[str, str], list[Case]] = {
    ("GET", "/version"): [Case(everyone(200))],
    ("GET", "/health"): [Case(everyone(200))],
    ("GET", "/stuff"): [Case(everyone(200))],
    ("POST", "/stuff"): [Case(everyone(201), name)],
    ("GET", "/stuff/<int:sid>"): [Case(everyone(200))],
    ("PUT", "/stuff/<int:sid>"): [Case(everyone(204), name)],
    ("PATCH", "/stuff/<int:sid>"): [Case(everyone(204), name)],
    ("DELETE", "/stuff/<int:sid>"): [Case(everyone(204))],
    ("POST", "/register"): [Case(everyone(201), lambda: {"data": {"login": unique("reg"), "pword": "password"}})],
    ("GET", "/hello"): [Case(auth(200))],
    ("GET", "/admin"): [Case(admin(200))],
    ("GET", "/whoami"): [Case(auth(200))],
    ("GET", "/login"): [Case(auth(200))],
    ("POST", "/login"): [Case(auth(200))],
    ("GET", "/qui-suis-je"): [Case(everyone(401))],  # token only
    ("GET", "/users"): [Case(admin(200))],
    (
        "POST",
        "/users",
    ): [
        Case(admin(201), lambda: {"json": {"user": {"login": unique("new"), "password": "password", "isAdmin": False}}})
    ],
    ("GET", "/users/<int:uid>"): [Case((*NO, 403, 200, 200, 403))],
    ("PATCH", "/users/<int:uid>"): [
        Case((*NO, 403, 204, 204, 403), lambda: {"data": {"password": "changed-pw"}}, fresh_user=True),
        Case((*NO, 403, 204, 403, 403), lambda: {"data": {"isadmin": "true"}}, fresh_user=True),
    ],
    ("PUT", "/users/<int:uid>"): [Case((*NO, 403, 204, 403, 403), fresh_user=True)],  # params: see user_put
    ("DELETE", "/users/<int:uid>"): [Case((*NO, 403, 204, 403, 403), fresh_user=True)],
    ("GET", "/owned"): [Case(admin(200))],
    ("GET", "/object"): [Case(admin(200))],
    ("GET", "/owned/<int:uid>"): [Case((*NO, 403, 200, 200, 403))],
    ("POST", "/object"): [Case(auth(201), lambda: {"data": {"object": unique("Obj")}})],
    ("GET", "/object/<int:oid>"): [Case((*NO, 403, 403, 200, 403))],  # its owner only, not even an admin
    ("PATCH", "/object/<int:oid>"): [Case((*NO, 403, 403, 204, 403), lambda: {"data": {"object": unique("Ren")}})],
    ("DELETE", "/object/<int:oid>"): [Case((*NO, 403, 403, 204, 403))],
    ("GET", "/owners"): [Case(auth(200))],
    ("POST", "/owners"): [Case(admin(201), lambda: {"data": {"oname": unique("Own"), "omail": "o@example.org"}})],
    ("GET", "/owners/<int:oid>"): [Case(auth(200))],
    ("PATCH", "/owners/<int:oid>"): [Case(admin(204), lambda: {"data": {"omail": "patched@example.org"}})],
    ("PUT", "/owners/<int:oid>"): [
        Case(admin(204), lambda: {"data": {"oname": unique("Put"), "omail": "p@example.org"}})
    ],
    ("DELETE", "/owners/<int:oid>"): [Case(admin(204))],  # an owner without things
    ("GET", "/owners/<int:oid>/things"): [Case(auth(200))],
    ("GET", "/things"): [Case(auth(200))],
    ("POST", "/things"): [Case(admin(201))],  # params: an owner of the case's own, see Fresh
    ("GET", "/things/<int:tid>"): [Case(auth(200))],
    ("PATCH", "/things/<int:tid>"): [Case(admin(204), lambda: {"data": {"tprice": "2"}})],
    ("PUT", "/things/<int:tid>"): [Case(admin(204))],  # params: see Fresh
    ("DELETE", "/things/<int:tid>"): [Case(admin(204))],
    ("GET", "/cmp/add"): [Case(auth(200), lambda: {"data": {"i": 30, "j": 12}})],
    ("GET", "/cmp/hash"): [Case(auth(200), lambda: {"data": {"apass": "Wow!"}})],
}


def test_matrix_covers_every_route():
    assert set(MATRIX) == app_routes()


@dataclass
class Fresh:
    """The rows one request of a case needs, created through the API, then deleted."""

    api: object
    login: str  # the owner of the objects
    password: str
    created: list[tuple[str, str, dict]] = field(default_factory=list)  # (method, path, headers) to undo
    thing_owner: int = 0  # the owner of the thing of a /things/<tid> path

    def make(self, path: str, data: dict, key: str, headers: dict, undo: str | None = None) -> int:
        ident = self.api.post(path, 201, login=None, headers=headers, data=data).json[key]  # type: ignore[attr-defined]
        self.created.append(("DELETE", f"{undo or path}/{ident}", headers))
        return ident

    def owner(self, with_thing: bool = True) -> tuple[int, int | None]:
        oid = self.make("/owners", {"oname": unique("Own"), "omail": "o@example.org"}, "oid", ADMIN)
        if not with_thing:
            return oid, None
        tid = self.make("/things", {"tname": unique("T"), "oid": oid, "tprice": 1}, "tid", ADMIN)
        return oid, tid

    def ids(self, rule: str, method: str) -> dict[str, int]:
        """Values for the rule's path ids: rows of this request's own."""
        if rule.startswith("/stuff/"):
            return {"sid": self.make("/stuff", {"stuff": unique("Perm")}, "sid", {})}
        if rule.startswith("/object/"):
            return {"oid": self.make("/object", {"object": unique("Obj")}, "oid", basic(self.login, self.password))}
        if rule.startswith("/owners/"):
            return {"oid": self.owner(with_thing=method != "DELETE")[0]}
        if rule.startswith("/things/"):
            self.thing_owner, tid = self.owner()
            return {"tid": tid}  # type: ignore[dict-item]
        return {}

    def undo(self, done: str | None):
        """Delete what was created, newest first (things before owners): 204 each,
        but for the row the request itself deleted (`done`), which must be gone."""
        for method, path, headers in reversed(self.created):
            status = 404 if path == done else 204
            self.api.request(method, path, status, login=None, headers=headers)  # type: ignore[attr-defined]


def credentials(identity: str, login: str, password: str, wrong: str) -> dict[str, str]:
    """The Authorization header of an identity (none: no header at all)."""
    return {
        "none": {},
        "unknown": basic(unique("hacker"), "secret-password"),
        "wrong": basic(wrong, "not-the-password"),
        "user": basic("hobbes", SEED_PASSWORDS["hobbes"]),  # a plain user, unrelated
        "admin": ADMIN,
        "owner": basic(login, password),
        "nonowner": basic("susie", SEED_PASSWORDS["susie"]),  # another plain user
    }[identity]


def new_user(api) -> tuple[str, str, int]:
    login, password = unique("owner"), "owner-password"
    return login, password, api.post("/register", 201, data={"login": login, "pword": password}).json["uid"]


class People:
    """The users the cases share: one owner, and the targets of wrong passwords, each
    used fewer times than the throttling limit (5 failures) so that "wrong" stays a 401.
    Sharing them spares a bcrypt hash per case: at the production cost (Apache), the
    bulk of the matrix's time."""

    def __init__(self):
        self.api = None
        self.owner: tuple[str, str, int] = ("", "", 0)
        self.wrongs: list[tuple[str, int]] = []  # (login, uid) of the wrong-password targets
        self.failures = 4

    def bind(self, api):
        """FlaskTester's client of the current test (a fixture per test)."""
        self.api = api
        if not self.owner[0]:
            self.owner = new_user(api)

    def wrong(self) -> str:
        if self.failures == 4:
            login, _, uid = new_user(self.api)
            self.wrongs.append((login, uid))
            self.failures = 0
        self.failures += 1
        return self.wrongs[-1][0]

    def remove(self):
        if self.api is None:
            return
        for uid in [self.owner[2]] + [uid for _, uid in self.wrongs]:
            self.api.delete(f"/users/{uid}", 204, login=None, headers=ADMIN)


@pytest.fixture(scope="module")
def people():
    shared = People()
    yield shared
    shared.remove()


CASES = [
    pytest.param(method, rule, case, id=f"{method} {rule}{' ' + str(n) if n else ''}")
    for (method, rule), cases in sorted(MATRIX.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    for n, case in enumerate(cases)
]


@pytest.mark.parametrize("method,rule,case", CASES)
def test_matrix(api, people, method, rule, case):
    people.bind(api)
    wrong = []
    for identity, status in zip(IDENTITIES, case.statuses, strict=True):
        # a request that changes or deletes the user of its path, and may: a user of its own
        fresh_user = case.fresh_user and status < 400
        login, password, uid = new_user(api) if fresh_user else people.owner
        fresh = Fresh(api, login, password)
        values = {"uid": uid, **fresh.ids(rule, method)}
        path = re.sub(r"<int:(\w+)>", lambda m: str(values[m[1]]), rule)  # noqa: B023
        kwargs = case.params()
        if (method, rule) == ("PATCH", "/users/<int:uid>") and "password" in kwargs["data"]:
            kwargs["data"]["current"] = password  # a user's own change needs it; an admin's ignores it
        elif (method, rule) == ("PUT", "/users/<int:uid>"):
            kwargs = {"json": {"user": {"login": login, "password": "new-password", "isAdmin": False, "uid": uid}}}
        elif (method, rule) == ("POST", "/things"):
            kwargs = {"data": {"tname": unique("T"), "oid": fresh.owner(with_thing=False)[0], "tprice": "1.5"}}
        elif (method, rule) == ("PUT", "/things/<int:tid>"):
            kwargs = {"data": {"tname": unique("T"), "oid": fresh.thing_owner, "tprice": "1.5"}}
        headers = credentials(identity, login, password, people.wrong() if identity == "wrong" else "")
        res = api.request(method, path, None, login=None, headers=headers, **kwargs)
        if res.status_code != status:
            wrong.append(f"{identity}: {res.status_code} instead of {status}: {res.text[:100]}")
        elif status >= 400:
            assert isinstance(res.json["error"], str), res.text
            if status == 401:
                assert "WWW-Authenticate" in res.headers
        elif status == 204:
            assert res.data == b""
        else:
            assert res.headers["Content-Type"] == "application/json" and res.json is not None
        if res.status_code == 201:  # what the request created is its own to delete
            body = res.json
            if "sid" in body:
                api.delete(f"/stuff/{body['sid']}", 204, login=None)
            elif "uid" in body:
                api.delete(f"/users/{body['uid']}", 204, login=None, headers=ADMIN)
            elif "tid" in body:
                api.delete(f"/things/{body['tid']}", 204, login=None, headers=ADMIN)
            elif rule == "/owners":
                api.delete(f"/owners/{body['oid']}", 204, login=None, headers=ADMIN)
            else:
                api.delete(f"/object/{body['oid']}", 204, login=None, headers=headers)
        deleted = path if method == "DELETE" and res.status_code == 204 else None
        fresh.undo(deleted)
        if fresh_user and deleted != path:
            api.delete(f"/users/{uid}", 204, login=None, headers=ADMIN)
    assert not wrong, wrong
