"""Property-based fuzzing of every route, in-process, under every identity.

For each route of the contract, hypothesis generates path ids and parameters —
any text (NUL and control characters included), huge and negative integers,
floats, booleans, null, lists, objects, missing and extra parameters — sent as
form or JSON, with no credentials, a plain user's or an admin's. The status is
never a 5xx, always one the contract lists for that route (400 only where the
request can be wrong: parameters, an extra one, a raw body), errors are JSON, and
nothing a client sends is logged as an internal error (no ERROR line in the app's log).

Path ids of writing routes are rows the fuzzer created for itself first (so that
success paths and constraint errors, 409s, are reached) or ids no fixture uses
(negative, huge, ≥ 10⁶); names are drawn among its own rows' too. Everything it
created is deleted afterwards, statuses checked: the seed data stays as it is.
KIVA_FUZZ_EXAMPLES sets the examples per route (`make fuzz` raises it); the run is
reproducible (hypothesis' derandomize) unless KIVA_FUZZ_RANDOM=1 (`make fuzz`).
"""

import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from helpers import EXTERNAL, SEED_PASSWORDS, basic, bearer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.skipif(EXTERNAL, reason="fuzzing runs in-process (both backends); live servers run the rest")

EXAMPLES = int(os.environ.get("KIVA_FUZZ_EXAMPLES", "25"))
RANDOM = os.environ.get("KIVA_FUZZ_RANDOM") == "1"

IDENTITIES = {
    "none": {},
    "user": basic("hobbes", SEED_PASSWORDS["hobbes"]),
    "admin": basic("calvin", SEED_PASSWORDS["calvin"]),
    # the plain user's token, from /login (the client fixture): a real one whatever the
    # secret, never silently no credentials
    "token": {"Authorization": "Bearer (set by the client fixture)"},
}

AUTH = {401}  # routes needing authentication may say so
ADMIN = {401, 403}


@dataclass
class Route:
    method: str
    path: str  # with {id} for a path id
    params: dict[str, str] = field(default_factory=dict)  # name → kind of plausible value
    statuses: set[int] = field(default_factory=set)  # what the contract lists, 400 included
    writes: bool = False  # path ids: the fuzzer's own rows, or ids no row has

    def __str__(self):
        return f"{self.method} {self.path}"


PAGE = {"after": "int", "limit": "int"}
LIST = {"filter": "name", **PAGE}
USER = {"user": "user"}
THING = {"tname": "name", "oid": "ref", "tprice": "price"}

ROUTES = [
    Route("GET", "/version", {}, {200, 400}),
    Route("GET", "/health", {}, {200, 400}),
    Route("GET", "/stuff", LIST, {200, 400}),
    Route("POST", "/stuff", {"stuff": "name"}, {201, 400, 409}),
    Route("GET", "/stuff/{id}", {}, {200, 400, 404}),
    Route("PUT", "/stuff/{id}", {"stuff": "name"}, {204, 400, 404, 409}, writes=True),
    Route("PATCH", "/stuff/{id}", {"stuff": "name"}, {204, 400, 404, 409}, writes=True),
    Route("DELETE", "/stuff/{id}", {}, {204, 400, 404}, writes=True),
    Route("POST", "/register", {"login": "name", "pword": "password"}, {201, 400, 409}),
    Route("GET", "/login", {}, {200, 400} | AUTH),
    Route("POST", "/login", {}, {200, 400} | AUTH),
    Route("GET", "/whoami", {}, {200, 400} | AUTH),
    Route("GET", "/qui-suis-je", {}, {200, 400} | AUTH),
    Route("GET", "/hello", {}, {200, 400} | AUTH),
    Route("GET", "/admin", {}, {200, 400} | ADMIN),
    Route("GET", "/users", LIST, {200, 400} | ADMIN),
    Route("POST", "/users", USER, {201, 400, 409} | ADMIN),
    Route("GET", "/users/{id}", {}, {200, 400, 404} | ADMIN),
    Route("PATCH", "/users/{id}", {"password": "password", "isadmin": "bool"}, {204, 400, 404} | ADMIN, writes=True),
    Route("PUT", "/users/{id}", USER, {204, 400, 404, 409} | ADMIN, writes=True),
    Route("DELETE", "/users/{id}", {}, {204, 400, 404, 409} | ADMIN, writes=True),
    Route("GET", "/owned", PAGE, {200, 400} | ADMIN),
    Route("GET", "/object", PAGE, {200, 400} | ADMIN),
    Route("GET", "/owned/{id}", PAGE, {200, 400, 404} | ADMIN),
    Route("POST", "/object", {"object": "name"}, {201, 400, 409} | AUTH),
    Route("GET", "/object/{id}", {}, {200, 400, 404} | ADMIN),
    Route("PATCH", "/object/{id}", {"object": "name"}, {204, 400, 404, 409} | ADMIN, writes=True),
    Route("DELETE", "/object/{id}", {}, {204, 400, 404} | ADMIN, writes=True),
    Route("GET", "/owners", LIST, {200, 400} | AUTH),
    Route("POST", "/owners", {"oname": "name", "omail": "mail"}, {201, 400, 409} | ADMIN),
    Route("GET", "/owners/{id}", {}, {200, 400, 404} | AUTH),
    Route("PATCH", "/owners/{id}", {"oname": "name", "omail": "mail"}, {204, 400, 404, 409} | ADMIN, writes=True),
    Route("PUT", "/owners/{id}", {"oname": "name", "omail": "mail"}, {204, 400, 404, 409} | ADMIN, writes=True),
    Route("DELETE", "/owners/{id}", {}, {204, 400, 404, 409} | ADMIN, writes=True),
    Route("GET", "/owners/{id}/things", PAGE, {200, 400, 404} | AUTH),
    Route("GET", "/things", {**LIST, "oid": "ref", "pmin": "price", "pmax": "price"}, {200, 400} | AUTH),
    Route("POST", "/things", {"tname": "name", "oid": "ref", "tprice": "price"}, {201, 400, 404, 409} | ADMIN),
    Route("GET", "/things/{id}", {}, {200, 400, 404} | AUTH),
    Route("PATCH", "/things/{id}", THING, {204, 400, 404, 409} | ADMIN, writes=True),
    Route("PUT", "/things/{id}", THING, {204, 400, 404, 409} | ADMIN, writes=True),
    Route("DELETE", "/things/{id}", {}, {204, 400, 404} | ADMIN, writes=True),
    Route("GET", "/cmp/add", {"i": "int", "j": "int"}, {200, 400} | AUTH),
    Route("GET", "/cmp/hash", {"apass": "password"}, {200, 400} | AUTH),
]

# anything at all, for any parameter
NASTY_TEXT = st.sampled_from(
    ["", "\x00", "a\x00b", "\n", "%", "_", "9" * 40, "-1", "1e400", "NaN", "true", "null", "[]", "{}"]
)
ANY = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
        NASTY_TEXT,
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=5,
)
# plausible values, to get past the parameter checks and reach the database
PLAUSIBLE = {
    "name": st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12).map(lambda s: "fz-" + s),
    "password": st.text(min_size=0, max_size=80),
    "int": st.one_of(st.integers(min_value=0, max_value=1000), st.integers(min_value=-(2**70), max_value=2**70)),
    "bool": st.booleans(),
    "ref": st.one_of(st.integers(min_value=0, max_value=3), st.integers()),
    "mail": st.from_regex(r"\A[a-z]{1,5}@[a-z]{1,5}\.[a-z]{2,3}\Z").map(lambda m: "fz" + m),
    "price": st.one_of(
        st.integers(min_value=-5, max_value=10**11),
        st.floats(min_value=-1, max_value=1e11),
        st.decimals(min_value=0, max_value=10**6, places=2).map(str),
    ),
    "user": st.fixed_dictionaries(
        {
            "login": st.text(min_size=1, max_size=12).map(lambda s: "fz-" + s),
            "password": st.text(max_size=20),
            "isAdmin": st.booleans(),
        },
        optional={"uid": st.integers(min_value=-5, max_value=2**64)},
    ),
}
# well-formed values only, for the careful examples that reach the success paths
WORD = st.text(alphabet=st.characters(categories=["Lu", "Ll", "Nd"]), min_size=1, max_size=12)
CAREFUL = {
    **PLAUSIBLE,
    "name": WORD.map(lambda s: "fz-" + s),
    "password": st.text(alphabet=st.characters(categories=["Ll", "Nd"]), min_size=8, max_size=20),
    "int": st.integers(min_value=1, max_value=1000),
    "price": st.decimals(min_value=0, max_value=1000, places=2).map(str),
    "user": st.fixed_dictionaries(
        {"login": WORD.map(lambda s: "fz-" + s), "password": st.just("password"), "isAdmin": st.booleans()}
    ),
}
BOUNDARIES = st.sampled_from([2**31, 2**63 - 1, 2**63, 10**18 - 1, 10**18, 10**19, 10**40])
NOT_A_NUMBER = st.text(max_size=10).filter(lambda t: not (t.isascii() and t.isdigit()))  # "١", "x"…
SAFE_IDS = st.one_of(st.integers(max_value=-1), st.integers(min_value=10**6), BOUNDARIES, NOT_A_NUMBER)
ANY_IDS = st.one_of(st.integers(min_value=-3, max_value=8), SAFE_IDS)


@dataclass
class Rows:
    """The fuzzer's own rows, made before it runs: ids and names by kind."""

    ids: dict[str, list[int]] = field(default_factory=dict)  # "stuff", "users", "object", "owners", "things"
    names: list[str] = field(default_factory=list)  # the names they hold, for conflicts (409)


def kind_of(route: Route) -> str:
    kind = route.path.split("/")[1]
    return "users" if kind == "owned" else kind


def path_of(route: Route, rows: Rows, draw, careful: bool) -> str:
    if "{id}" not in route.path:
        return route.path
    mine = st.sampled_from(rows.ids[kind_of(route)])
    if careful:  # reads: the seed rows too, which the writes never touch
        ident = draw(mine if route.writes else st.one_of(mine, st.integers(1, 2)))
    else:
        ident = draw(st.one_of(mine, SAFE_IDS) if route.writes else st.one_of(mine, ANY_IDS))
    return route.path.format(id=quote(str(ident), safe="") or "%20")


def params_of(route: Route, rows: Rows, draw, careful: bool) -> tuple[dict, bool]:
    """Parameters, and whether one was added that the route does not take."""
    params = {}
    for name, kind in route.params.items():
        choices = ["plausible", "taken"] if careful else ["plausible", "plausible", "taken", "any", "missing"]
        choice = draw(st.sampled_from(choices))
        if choice == "taken" and kind in ("name", "ref"):  # a name or an owner of the fuzzer's rows
            params[name] = draw(st.sampled_from(rows.names if kind == "name" else rows.ids["owners"]))
        elif choice != "missing":
            strategy = CAREFUL if careful else PLAUSIBLE
            params[name] = draw(strategy[kind] if choice in ("plausible", "taken") else ANY)
    extra = not careful and draw(st.integers(0, 9)) == 0
    if extra:  # an extra parameter, or a second value for a known one
        params[draw(st.sampled_from(["extra", "x", "filter", "limit"]))] = draw(ANY)
    return params, extra


def as_form(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@pytest.fixture(scope="module")
def client():
    from app import app

    test_client = app.test_client()
    res = test_client.get("/login", headers=IDENTITIES["user"])
    assert res.status_code == 200, res.get_data(as_text=True)
    IDENTITIES["token"] = bearer(res.get_json())
    assert test_client.get("/qui-suis-je", headers=IDENTITIES["token"]).get_json() == "hobbes"
    return test_client


def created(res, status: int = 201) -> int:
    assert res.status_code == status, res.get_data(as_text=True)
    return next(iter(res.get_json().values()))


@pytest.fixture(scope="module")
def rows(client):
    """Two stuff, two users, two objects of the plain user, two owners with a thing each
    and one without: then deleted (or found deleted by the fuzzer: 404)."""
    admin, user = IDENTITIES["admin"], IDENTITIES["user"]
    made = Rows(names=[f"fz-{kind}-{uuid.uuid4().hex[:8]}" for kind in range(6)])
    a, b, c, d, e, f = made.names
    made.ids["stuff"] = [created(client.post("/stuff", data={"stuff": n})) for n in (a, b)]
    made.ids["users"] = [created(client.post("/register", data={"login": n, "pword": "password"})) for n in (a, b)]
    made.ids["object"] = [created(client.post("/object", data={"object": n}, headers=user)) for n in (c, d)]
    made.ids["owners"] = [
        created(client.post("/owners", data={"oname": n, "omail": "fz@example.org"}, headers=admin)) for n in (c, d, e)
    ]
    made.ids["things"] = [
        created(client.post("/things", data={"tname": f, "oid": oid, "tprice": 1}, headers=admin))
        for oid in made.ids["owners"][:2]
    ]
    yield made
    # things first (wherever the fuzzer moved them), then owners and the rest
    for kind, headers in [("things", admin), ("owners", admin), ("object", user), ("users", admin), ("stuff", {})]:
        for ident in made.ids[kind]:
            res = client.delete(f"/{kind}/{ident}", headers=headers)
            assert res.status_code in (204, 404), (kind, ident, res.get_data(as_text=True))


def right_identity(route: Route) -> str:
    """Who may call the route: its objects' owner, a token, or the admin."""
    if route.path.startswith("/object/"):
        return "user"
    return "token" if route.path == "/qui-suis-je" else "admin"


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_fuzz_route(client, rows, route, caplog):
    made: list[tuple[str, dict]] = []
    seen: set[int] = set()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=not RANDOM,
    )
    @given(data=st.data())
    def run(data):
        # half the examples careful: the identity the route wants, well-formed values,
        # the fuzzer's own rows; the others anything at all
        careful = data.draw(st.booleans())
        identity = right_identity(route) if careful else data.draw(st.sampled_from(sorted(IDENTITIES)))
        path = path_of(route, rows, data.draw, careful)
        params, extra = params_of(route, rows, data.draw, careful)
        if careful and isinstance(params.get("user"), dict) and "{id}" in route.path:
            params["user"]["uid"] = int(path.rsplit("/", 1)[1])  # PUT /users/<uid>: the same uid
        kwargs: dict = {"headers": dict(IDENTITIES[identity])}
        body = data.draw(st.sampled_from(["form", "json"] if careful else ["form", "json", "json", "raw"]))
        if body == "json":
            kwargs["json"] = params
        elif body == "raw":  # a JSON content type with anything, or nothing, in the body
            kwargs["data"] = data.draw(st.one_of(ANY.map(json.dumps), st.text(max_size=20), st.just("")))
            kwargs["headers"]["Content-Type"] = "application/json"
        else:
            kwargs["data"] = {k: as_form(v) for k, v in params.items()}
        res = client.open(path, method=route.method, **kwargs)
        status = res.status_code
        seen.add(status)
        # a 400 needs something to be wrong: a parameter, an extra one, or the body
        allowed = route.statuses if route.params or extra or body == "raw" else route.statuses - {400}
        assert status < 500, (route, identity, path, params, res.get_data(as_text=True))
        assert status in allowed, (route, identity, path, params, status, res.get_data(as_text=True))
        if status != 204:
            assert res.is_json and res.get_json(silent=True) is not None, (route, status, res.data[:200])
        if status >= 400:
            assert isinstance(res.get_json()["error"], str)
        if status == 201:
            made.append((identity, res.get_json()))

    try:
        run()
    finally:
        cleanup(client, route, made)
    # a client's input, whatever it is, is never logged as an internal error
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [], route
    # the fuzzer reached the routes' success paths: writes on its own rows included
    success = {200, 201, 204} & route.statuses
    assert seen & success, f"{route}: only {sorted(seen)} in {EXAMPLES} examples"


def cleanup(client, route: Route, made: list[tuple[str, dict]]):
    """Delete what the fuzzer created: stuff, users, objects, owners, things."""
    admin = IDENTITIES["admin"]
    for identity, body in made:
        if "sid" in body:
            res = client.delete(f"/stuff/{body['sid']}")
        elif "uid" in body:
            res = client.delete(f"/users/{body['uid']}", headers=admin)
        elif "tid" in body:
            res = client.delete(f"/things/{body['tid']}", headers=admin)
        elif route.path == "/owners":
            res = client.delete(f"/owners/{body['oid']}", headers=admin)
        else:
            res = client.delete(f"/object/{body['oid']}", headers=IDENTITIES[identity])
        assert res.status_code == 204, (body, res.get_data(as_text=True))
