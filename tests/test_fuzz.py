"""Property-based fuzzing of every route, in-process, under every identity.

For each route of the contract, hypothesis generates path ids and parameters —
any text (NUL and control characters included), huge and negative integers,
floats, booleans, null, lists, objects, missing and extra parameters — sent as
form or JSON, with no credentials, a plain user's or an admin's. The status is
never a 5xx, always one the contract lists for that route, and errors are JSON.

Writing routes only get ids no fixture uses (negative, huge, ≥ 10⁶), and what the
fuzzer creates (201) is deleted afterwards: the seed data stays as it is.
KIVA_FUZZ_EXAMPLES sets the examples per route (`make fuzz` raises it).
"""

import json
import os
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from helpers import EXTERNAL, SEED_PASSWORDS, basic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.skipif(EXTERNAL, reason="fuzzing runs in-process (both backends); live servers run the rest")

EXAMPLES = int(os.environ.get("KIVA_FUZZ_EXAMPLES", "25"))

IDENTITIES = {
    "none": {},
    "user": basic("hobbes", SEED_PASSWORDS["hobbes"]),
    "admin": basic("calvin", SEED_PASSWORDS["calvin"]),
}

AUTH = {401}  # routes needing authentication may say so
ADMIN = {401, 403}


@dataclass
class Route:
    method: str
    path: str  # with {id} for a path id
    params: dict[str, str] = field(default_factory=dict)  # name → kind of plausible value
    statuses: set[int] = field(default_factory=set)  # what the contract lists, 400 included
    writes: bool = False  # path ids must avoid existing rows

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
    "int": st.integers(min_value=-(2**70), max_value=2**70),
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
BOUNDARIES = st.sampled_from([2**31, 2**63 - 1, 2**63, 10**18 - 1, 10**18, 10**19, 10**40])
NOT_A_NUMBER = st.text(max_size=10).filter(lambda t: not (t.isascii() and t.isdigit()))  # "١", "x"…
SAFE_IDS = st.one_of(st.integers(max_value=-1), st.integers(min_value=10**6), BOUNDARIES, NOT_A_NUMBER)
ANY_IDS = st.one_of(st.integers(min_value=-3, max_value=8), SAFE_IDS)


def path_of(route: Route, draw) -> str:
    if "{id}" not in route.path:
        return route.path
    ident = draw(SAFE_IDS if route.writes else ANY_IDS)
    return route.path.format(id=quote(str(ident), safe="") or "%20")


def params_of(route: Route, draw) -> dict:
    params = {}
    for name, kind in route.params.items():
        choice = draw(st.sampled_from(["plausible", "plausible", "any", "missing"]))
        if choice != "missing":
            params[name] = draw(PLAUSIBLE[kind] if choice == "plausible" else ANY)
    if draw(st.integers(0, 9)) == 0:  # an extra parameter, or a second value for a known one
        params[draw(st.sampled_from(["extra", "x", "filter", "limit"]))] = draw(ANY)
    return params


def as_form(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@pytest.fixture(scope="module")
def client():
    from app import app

    return app.test_client()


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_fuzz_route(client, route):
    created: list[tuple[str, dict]] = []

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def run(data):
        identity = data.draw(st.sampled_from(sorted(IDENTITIES)))
        path = path_of(route, data.draw)
        params = params_of(route, data.draw)
        kwargs: dict = {"headers": dict(IDENTITIES[identity])}
        body = data.draw(st.sampled_from(["form", "json", "json", "raw"]))
        if body == "json":
            kwargs["json"] = params
        elif body == "raw":  # a JSON content type with anything, or nothing, in the body
            kwargs["data"] = data.draw(st.one_of(ANY.map(json.dumps), st.text(max_size=20), st.just("")))
            kwargs["headers"]["Content-Type"] = "application/json"
        else:
            kwargs["data"] = {k: as_form(v) for k, v in params.items()}
        res = client.open(path, method=route.method, **kwargs)
        status = res.status_code
        assert status < 500, (route, identity, path, params, res.get_data(as_text=True))
        assert status in route.statuses, (route, identity, path, params, status, res.get_data(as_text=True))
        if status != 204:
            assert res.is_json and res.get_json(silent=True) is not None, (route, status, res.data[:200])
        if status >= 400:
            assert isinstance(res.get_json()["error"], str)
        if status == 201:
            created.append((identity, res.get_json()))
        elif route.writes:  # only ids no fixture uses: nothing may have changed
            assert status in (400, 401, 403, 404), (route, identity, path, params, status)

    try:
        run()
    finally:
        cleanup(client, route, created)


def cleanup(client, route: Route, created: list[tuple[str, dict]]):
    """Delete what the fuzzer created: stuff, users, objects."""
    admin = IDENTITIES["admin"]
    for identity, body in created:
        if "sid" in body:
            client.delete(f"/stuff/{body['sid']}")
        elif "uid" in body:
            assert client.delete(f"/users/{body['uid']}", headers=admin).status_code == 204
        elif "tid" in body:
            assert client.delete(f"/things/{body['tid']}", headers=admin).status_code == 204
        elif route.path == "/owners":
            assert client.delete(f"/owners/{body['oid']}", headers=admin).status_code == 204
        else:
            assert client.delete(f"/object/{body['oid']}", headers=IDENTITIES[identity]).status_code == 204
