"""Owners and things, the CRUDS exercise: every status of the contract, with its body
(their permissions: test_permissions.py, with every other route).

Reads are AUTH, writes ADMIN: calvin is an admin, hobbes a plain user. Every test
creates its own owners and things (unique names) and removes them: the seed rows
(owners Calvin 1 and Susie 2; things Sled, Wagon, Doll house) are only read.
"""

import functools
import re

import pytest
from helpers import SEED_PASSWORDS, basic, unique
from race import race

ADMIN, USER = "calvin", "hobbes"

SEED_OWNERS = [
    {"oid": 1, "oname": "Calvin", "omail": "calvin@comics.net"},
    {"oid": 2, "oname": "Susie", "omail": "susie@comics.net"},
]
SEED_THINGS = [
    {"tid": 1, "tname": "Sled", "oid": 1, "tprice": 25.5},
    {"tid": 2, "tname": "Wagon", "oid": 1, "tprice": 40},
    {"tid": 3, "tname": "Doll house", "oid": 2, "tprice": 12.5},
]


#
# helpers and fixtures: rows of the test's own, removed afterwards
#


def add_owner(api, oname: str | None = None, omail: str = "someone@example.org") -> dict:
    oname = oname or unique("Owner")
    oid = api.post("/owners", 201, data={"oname": oname, "omail": omail}, login=ADMIN).json["oid"]
    assert isinstance(oid, int)
    return {"oid": oid, "oname": oname, "omail": omail}


def add_thing(api, oid: int, tname: str | None = None, tprice: object = 1.5) -> dict:
    tname = tname or unique("Thing")
    tid = api.post("/things", 201, json={"tname": tname, "oid": oid, "tprice": tprice}, login=ADMIN).json["tid"]
    assert isinstance(tid, int)
    return {"tid": tid, "tname": tname, "oid": oid, "tprice": tprice}


def remove_owner(api, oid: int):
    """Delete an owner and their things, whatever is left of them."""
    res = api.get(f"/owners/{oid}/things", None, data={"limit": 1000}, login=ADMIN)
    if res.status_code == 404:  # deleted by the test itself
        return
    assert res.status_code == 200, res.text
    for thing in res.json:
        api.delete(f"/things/{thing['tid']}", 204, login=ADMIN)
    api.delete(f"/owners/{oid}", 204, login=ADMIN)
    api.get(f"/owners/{oid}", 404, login=ADMIN)


@pytest.fixture
def owner(api):
    row = add_owner(api)
    yield row
    remove_owner(api, row["oid"])


@pytest.fixture
def thing(api, owner):
    return add_thing(api, owner["oid"])


def next_path(res, route: str) -> str:
    """The path and query of a response's Link rel="next", from its route on (no script root)."""
    link = res.headers["Link"]
    assert link.endswith('; rel="next"')
    url = link[link.index("<") + 1 : link.index(">")]
    return url[url.index(route) :]


#
# owners
#


def test_owners_list(api):
    rows = api.get("/owners", 200, data={"limit": 1000}, login=USER).json
    for seed in SEED_OWNERS:
        assert seed in rows
    assert [r["oid"] for r in rows] == sorted(r["oid"] for r in rows)
    assert all(set(r) == {"oid", "oname", "omail"} for r in rows)


def test_owners_filter_and_paging(api):
    prefix = unique("Pg")
    owners = [add_owner(api, f"{prefix}-{i}") for i in range(3)]
    oids = [o["oid"] for o in owners]
    # LIKE filter, case-sensitive on both engines
    assert api.get("/owners", 200, data={"filter": owners[1]["oname"]}, login=USER).json == [owners[1]]
    assert api.get("/owners", 200, data={"filter": prefix.lower() + "%"}, login=USER).json == []
    assert api.get("/owners", 200, data={"filter": "Calv%"}, login=USER).json[0] == SEED_OWNERS[0]
    # pages of 2, following the Link header, filter kept
    res = api.get("/owners", 200, data={"filter": prefix + "%", "limit": 2}, login=USER)
    assert res.json == owners[:2]
    link = res.headers["Link"]
    assert f"after={oids[1]}" in link and "limit=2" in link and f"filter={prefix}%25" in link
    res = api.get(next_path(res, "/owners"), 200, login=USER)
    assert res.json == owners[2:] and "Link" not in res.headers
    # after
    assert api.get("/owners", 200, data={"filter": prefix + "%", "after": oids[0]}, login=USER).json == owners[1:]
    for oid in oids:
        remove_owner(api, oid)


def test_owners_list_bad_parameters(api):
    for params, message in [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"after": "x"}, "after"),
        ({"after": "9" * 30}, "out of range"),
        ({"filter": ""}, "filter"),
        ({"filter": "x" * 201}, "filter"),
        ({"filter": "a\x00b"}, "control"),
        ({"whatever": "1"}, "whatever"),
    ]:
        assert message in api.get("/owners", 400, data=params, login=USER).json["error"], params


def test_owner_create_read_update_delete(api):
    oname, omail = unique("Moe"), "moe@school.example.org"
    res = api.post("/owners", 201, json={"oname": oname, "omail": omail}, login=ADMIN)
    assert res.headers["Content-Type"] == "application/json" and set(res.json) == {"oid"}
    oid = res.json["oid"]
    assert api.get(f"/owners/{oid}", 200, login=USER).json == {"oid": oid, "oname": oname, "omail": omail}
    # a taken name is a conflict, even with another mail address
    res = api.post("/owners", 409, data={"oname": oname, "omail": "other@example.org"}, login=ADMIN)
    assert res.json == {"error": f"owner already exists: {oname}"}
    # PATCH one field, then the other: the other one is kept
    api.patch(f"/owners/{oid}", 204, data={"omail": "moe@example.org"}, login=ADMIN)
    assert api.get(f"/owners/{oid}", 200, login=USER).json == {
        "oid": oid,
        "oname": oname,
        "omail": "moe@example.org",
    }
    renamed = unique("Moe")
    assert api.patch(f"/owners/{oid}", 204, json={"oname": renamed}, login=ADMIN).data == b""
    assert api.get(f"/owners/{oid}", 200, login=USER).json == {
        "oid": oid,
        "oname": renamed,
        "omail": "moe@example.org",
    }
    # PUT both
    api.put(f"/owners/{oid}", 204, data={"oname": oname, "omail": omail}, login=ADMIN)
    assert api.get(f"/owners/{oid}", 200, login=USER).json == {"oid": oid, "oname": oname, "omail": omail}
    # DELETE, twice
    assert api.delete(f"/owners/{oid}", 204, login=ADMIN).data == b""
    assert api.get(f"/owners/{oid}", 404, login=USER).json == {"error": f"no such owner: {oid}"}
    assert api.delete(f"/owners/{oid}", 404, login=ADMIN).json == {"error": f"no such owner: {oid}"}


BAD_MAILS = [
    "",
    "moe",
    "moe@",
    "@example.org",
    "moe@example",
    "moe@@example.org",
    "moe@a@b.org",
    "moe @example.org",
]
BAD_MAILS += ["moe@.org", "moe@example.", "moe\x00@example.org", "m" * 190 + "@example.org"]
BAD_NAMES = ["", "x" * 201, "tab\there", "nul\x00"]


def test_owner_create_bad_parameters(api):
    assert api.post("/owners", 400, login=ADMIN).json == {
        "error": 'parameter "oname" is missing\nparameter "omail" is missing'
    }
    assert api.post("/owners", 400, data={"oname": unique("Moe")}, login=ADMIN).json == {
        "error": 'parameter "omail" is missing'
    }
    for mail in BAD_MAILS:
        res = api.post("/owners", 400, data={"oname": unique("Moe"), "omail": mail}, login=ADMIN)
        assert "mail address" in res.json["error"], mail
    for name in BAD_NAMES:
        res = api.post("/owners", 400, data={"oname": name, "omail": "moe@example.org"}, login=ADMIN)
        assert "a name must" in res.json["error"], name
    for bad in [42, True, None, ["a"], {"a": 1}]:
        assert "error" in api.post("/owners", 400, json={"oname": bad, "omail": "m@example.org"}, login=ADMIN).json
        assert "error" in api.post("/owners", 400, json={"oname": unique("Moe"), "omail": bad}, login=ADMIN).json
    res = api.post("/owners", 400, data={"oname": unique("Moe"), "omail": "m@example.org", "x": "1"}, login=ADMIN)
    assert "error" in res.json


def test_owner_update_errors(api, owner):
    oid = owner["oid"]
    # nothing to update, or something wrong: 400, and the owner is unchanged
    assert api.patch(f"/owners/{oid}", 400, login=ADMIN).json == {"error": "nothing to update: oname or omail"}
    assert "mail address" in api.patch(f"/owners/{oid}", 400, data={"omail": "moe"}, login=ADMIN).json["error"]
    assert "a name must" in api.patch(f"/owners/{oid}", 400, data={"oname": ""}, login=ADMIN).json["error"]
    assert api.put(f"/owners/{oid}", 400, data={"oname": unique("X")}, login=ADMIN).json == {
        "error": 'parameter "omail" is missing'
    }
    assert (
        "mail address" in api.put(f"/owners/{oid}", 400, data={"oname": "X", "omail": "@"}, login=ADMIN).json["error"]
    )
    # a taken name: 409, nothing half-written
    conflict = {"error": "conflict: this name is already taken"}
    assert api.patch(f"/owners/{oid}", 409, data={"oname": "Calvin"}, login=ADMIN).json == conflict
    res = api.put(f"/owners/{oid}", 409, data={"oname": "Susie", "omail": "x@example.org"}, login=ADMIN)
    assert res.json == conflict
    assert api.get(f"/owners/{oid}", 200, login=USER).json == owner
    assert api.get("/owners/1", 200, login=USER).json == SEED_OWNERS[0]
    # no such owner
    missing = {"error": "no such owner: 999999999"}
    assert api.patch("/owners/999999999", 404, data={"omail": "m@example.org"}, login=ADMIN).json == missing
    assert (
        api.put("/owners/999999999", 404, data={"oname": unique("X"), "omail": "m@ex.org"}, login=ADMIN).json == missing
    )


def test_owner_get_missing_and_bad_ids(api):
    assert api.get("/owners/999999999", 404, login=USER).json == {"error": "no such owner: 999999999"}
    assert api.get("/owners/999999999/things", 404, login=USER).json == {"error": "no such owner: 999999999"}
    assert api.delete("/owners/999999999", 404, login=ADMIN).json == {"error": "no such owner: 999999999"}
    huge = 2**62
    assert api.get(f"/owners/{huge}", 404, login=USER).json == {"error": f"no such owner: {huge}"}
    assert api.get(f"/things/{huge}", 404, login=USER).json == {"error": f"no such thing: {huge}"}
    assert api.get("/things", 200, data={"oid": huge}, login=USER).json == []
    for path in ["/owners/abc", "/owners/-1", "/owners/1.5", "/owners/" + "9" * 40, "/owners/x/things"]:
        assert "error" in api.get(path, 404, login=USER).json, path


def test_owner_delete_with_things(api, owner, thing):
    # refused while the owner has things, and nothing is deleted
    res = api.delete(f"/owners/{owner['oid']}", 409, login=ADMIN)
    assert res.json == {"error": "conflict: still referenced, or referencing nothing"}
    assert api.get(f"/owners/{owner['oid']}", 200, login=USER).json == owner
    assert api.get(f"/owners/{owner['oid']}/things", 200, login=USER).json == [thing]
    assert api.get(f"/things/{thing['tid']}", 200, login=USER).json == thing
    # the seed owners neither
    assert api.delete("/owners/1", 409, login=ADMIN).json["error"].startswith("conflict")
    assert api.get("/owners/1", 200, login=USER).json == SEED_OWNERS[0]
    # without things, it goes
    api.delete(f"/things/{thing['tid']}", 204, login=ADMIN)
    api.delete(f"/owners/{owner['oid']}", 204, login=ADMIN)
    api.get(f"/owners/{owner['oid']}", 404, login=USER)


def test_owner_things(api, owner):
    oid = owner["oid"]
    assert api.get(f"/owners/{oid}/things", 200, login=USER).json == []
    things = [add_thing(api, oid, f"T{i}", tprice=i + 0.5) for i in range(3)]
    other = add_owner(api)
    add_thing(api, other["oid"], "T0")  # the same name for another owner: fine, and not listed
    assert api.get(f"/owners/{oid}/things", 200, login=USER).json == things
    # pages of 2, by following the Link header
    res = api.get(f"/owners/{oid}/things", 200, data={"limit": 2}, login=USER)
    assert res.json == things[:2]
    assert f"after={things[1]['tid']}" in res.headers["Link"] and f"/owners/{oid}/things?" in res.headers["Link"]
    res = api.get(next_path(res, "/owners"), 200, login=USER)
    assert res.json == things[2:] and "Link" not in res.headers
    assert api.get(f"/owners/{oid}/things", 200, data={"after": things[0]["tid"]}, login=USER).json == things[1:]
    assert "limit" in api.get(f"/owners/{oid}/things", 400, data={"limit": 0}, login=USER).json["error"]
    # the seeds
    assert api.get("/owners/1/things", 200, login=USER).json == SEED_THINGS[:2]
    remove_owner(api, other["oid"])


#
# things
#


def test_things_list(api):
    res = api.get("/things", 200, data={"limit": 1000}, login=USER)
    assert res.headers["Content-Type"] == "application/json"
    rows = res.json
    for seed in SEED_THINGS:
        assert seed in rows
    assert [r["tid"] for r in rows] == sorted(r["tid"] for r in rows)
    assert all(set(r) == {"tid", "tname", "oid", "tprice"} for r in rows)


def test_things_filters(api, owner):
    oid = owner["oid"]
    prefix = unique("F")
    cheap = add_thing(api, oid, f"{prefix}-cheap", 0)
    mid = add_thing(api, oid, f"{prefix}-mid", 12.5)
    dear = add_thing(api, oid, f"{prefix}-dear", 99.99)
    mine = {"filter": prefix + "%"}

    def get(**params):
        return api.get("/things", 200, data=params, login=USER).json

    assert get(**mine) == [cheap, mid, dear]
    assert get(filter=f"{prefix}-mid") == [mid]
    assert get(filter=f"%{prefix[2:]}-d%") == [dear]
    assert get(filter=prefix.lower() + "%") == []  # LIKE is case-sensitive
    # by owner
    assert get(oid=oid) == [cheap, mid, dear]
    assert get(oid=999999999) == []
    assert get(oid=1, limit=1000) == SEED_THINGS[:2]
    # by price, bounds included
    assert get(pmin=12.5, **mine) == [mid, dear]
    assert get(pmax=12.5, **mine) == [cheap, mid]
    assert get(pmin="12.5", pmax="12.5", **mine) == [mid]
    assert get(pmin=0.01, pmax=99.98, **mine) == [mid]
    assert get(pmin=100, **mine) == []
    assert get(pmin=50, pmax=10, **mine) == []
    assert get(oid=1, pmin=30, limit=1000) == [SEED_THINGS[1]]
    # every filter is kept in the Link header
    res = api.get("/things", 200, data={"oid": oid, "pmin": "0", "pmax": "100", "limit": 1, **mine}, login=USER)
    assert res.json == [cheap]
    link = res.headers["Link"]
    for part in [
        f"oid={oid}",
        "pmin=0",
        "pmax=100",
        f"filter={prefix}%25",
        f"after={cheap['tid']}",
        "limit=1",
    ]:
        assert part in link, part
    res = api.get(next_path(res, "/things"), 200, login=USER)
    assert res.json == [mid] and f"after={mid['tid']}" in res.headers["Link"]
    res = api.get(next_path(res, "/things"), 200, login=USER)
    assert res.json == [dear] and "Link" not in res.headers


def test_things_list_bad_parameters(api):
    for params, message in [
        ({"oid": "x"}, "oid"),
        ({"oid": "9" * 30}, "out of range"),
        ({"pmin": "x"}, "price"),
        ({"pmin": "-1"}, "negative"),
        ({"pmax": "nan"}, "price"),
        ({"pmax": "inf"}, "price"),
        ({"pmax": "1e3"}, "price"),
        ({"limit": 1001}, "limit"),
        ({"after": "x"}, "after"),
        ({"filter": ""}, "filter"),
        ({"whatever": "1"}, "whatever"),
    ]:
        assert message in api.get("/things", 400, data=params, login=USER).json["error"], params
    for bad in [True, "x", [1], {"a": 1}, -0.5]:
        assert "error" in api.get("/things", 400, json={"pmin": bad}, login=USER).json, bad


def test_thing_create_read_update_delete(api, owner):
    oid, tname = owner["oid"], unique("Bike")
    res = api.post("/things", 201, data={"tname": tname, "oid": oid, "tprice": "12.5"}, login=ADMIN)
    assert res.headers["Content-Type"] == "application/json" and set(res.json) == {"tid"}
    tid = res.json["tid"]
    bike = {"tid": tid, "tname": tname, "oid": oid, "tprice": 12.5}
    assert api.get(f"/things/{tid}", 200, login=USER).json == bike
    # a thing of that name for that owner already: 409; for another owner: fine
    res = api.post("/things", 409, json={"tname": tname, "oid": oid, "tprice": 3}, login=ADMIN)
    assert res.json == {"error": f"thing already exists: {tname}"}
    other = add_owner(api)
    add_thing(api, other["oid"], tname)
    # no such owner: 404
    res = api.post("/things", 404, json={"tname": unique("Bike"), "oid": 999999999, "tprice": 3}, login=ADMIN)
    assert res.json == {"error": "no such owner: 999999999"}
    # PATCH one field at a time, the others are kept
    api.patch(f"/things/{tid}", 204, json={"tprice": 40}, login=ADMIN)
    assert api.get(f"/things/{tid}", 200, login=USER).json == {**bike, "tprice": 40}
    renamed = unique("Trike")
    assert api.patch(f"/things/{tid}", 204, data={"tname": renamed}, login=ADMIN).data == b""
    assert api.get(f"/things/{tid}", 200, login=USER).json == {**bike, "tname": renamed, "tprice": 40}
    api.patch(f"/things/{tid}", 204, data={"oid": other["oid"]}, login=ADMIN)
    moved = {"tid": tid, "tname": renamed, "oid": other["oid"], "tprice": 40}
    assert api.get(f"/things/{tid}", 200, login=USER).json == moved
    assert api.get(f"/owners/{oid}/things", 200, login=USER).json == []
    # PUT everything
    api.put(f"/things/{tid}", 204, json={"tname": tname, "oid": oid, "tprice": 0.1}, login=ADMIN)
    assert api.get(f"/things/{tid}", 200, login=USER).json == {**bike, "tprice": 0.1}
    # DELETE, twice
    assert api.delete(f"/things/{tid}", 204, login=ADMIN).data == b""
    assert api.get(f"/things/{tid}", 404, login=USER).json == {"error": f"no such thing: {tid}"}
    assert api.delete(f"/things/{tid}", 404, login=ADMIN).json == {"error": f"no such thing: {tid}"}
    remove_owner(api, other["oid"])


BAD_PRICES = [
    -1,
    -0.01,
    "-3",
    True,
    None,
    "abc",
    "",
    "1e3",
    "nan",
    "inf",
    "12,5",
    1.234,
    "0.001",
    1e10,
    "1" * 12,
]
BAD_PRICES += [[1], {"p": 1}]


def test_thing_create_bad_parameters(api, owner):
    oid = owner["oid"]
    assert api.post("/things", 400, login=ADMIN).json["error"].startswith('parameter "tname" is missing')
    assert api.post("/things", 400, data={"tname": "X", "oid": oid}, login=ADMIN).json == {
        "error": 'parameter "tprice" is missing'
    }
    assert api.post("/things", 400, data={"tname": "X", "tprice": 1}, login=ADMIN).json == {
        "error": 'parameter "oid" is missing'
    }
    for price in BAD_PRICES:
        res = api.post("/things", 400, json={"tname": unique("X"), "oid": oid, "tprice": price}, login=ADMIN)
        assert "error" in res.json, price
    res = api.post("/things", 400, data={"tname": "X", "oid": oid, "tprice": "-1"}, login=ADMIN)
    assert res.json["error"].endswith("a price must not be negative")
    for name in BAD_NAMES:
        res = api.post("/things", 400, data={"tname": name, "oid": oid, "tprice": 1}, login=ADMIN)
        assert "a name must" in res.json["error"], name
    for bad_oid in ["x", "1.5", True, "9" * 30, [1]]:
        assert "error" in api.post("/things", 400, json={"tname": "X", "oid": bad_oid, "tprice": 1}, login=ADMIN).json
    # nothing was created
    assert api.get(f"/owners/{oid}/things", 200, login=USER).json == []


def test_thing_update_errors(api, owner, thing):
    tid, oid = thing["tid"], owner["oid"]
    sibling = add_thing(api, oid)
    # nothing to update, or something wrong: 400, and the thing is unchanged
    res = api.patch(f"/things/{tid}", 400, login=ADMIN)
    assert res.json == {"error": "nothing to update: tname, oid or tprice"}
    for price in BAD_PRICES:
        assert "error" in api.patch(f"/things/{tid}", 400, json={"tprice": price}, login=ADMIN).json, price
    assert "a name must" in api.patch(f"/things/{tid}", 400, data={"tname": ""}, login=ADMIN).json["error"]
    assert "error" in api.patch(f"/things/{tid}", 400, data={"oid": "x"}, login=ADMIN).json
    res = api.put(f"/things/{tid}", 400, data={"tname": "X", "oid": oid}, login=ADMIN)
    assert res.json == {"error": 'parameter "tprice" is missing'}
    assert "error" in api.put(f"/things/{tid}", 400, json={"tname": "X", "oid": oid, "tprice": -1}, login=ADMIN).json
    # a name taken by another thing of that owner: 409, nothing half-written
    conflict = {"error": "conflict: this name is already taken"}
    assert api.patch(f"/things/{tid}", 409, data={"tname": sibling["tname"]}, login=ADMIN).json == conflict
    res = api.put(f"/things/{tid}", 409, data={"tname": sibling["tname"], "oid": oid, "tprice": 7}, login=ADMIN)
    assert res.json == conflict
    # moving to the seed owner Calvin, who has a Sled already
    renamed = api.patch(f"/things/{tid}", 409, data={"tname": "Sled", "oid": 1}, login=ADMIN)
    assert renamed.json == conflict
    assert api.get(f"/things/{tid}", 200, login=USER).json == thing
    # no such thing, no such new owner: 404
    missing = {"error": "no such thing: 999999999"}
    assert api.patch("/things/999999999", 404, data={"tprice": 1}, login=ADMIN).json == missing
    res = api.put("/things/999999999", 404, data={"tname": "X", "oid": oid, "tprice": 1}, login=ADMIN)
    assert res.json == missing
    no_owner = {"error": "no such owner: 999999999"}
    assert api.patch(f"/things/{tid}", 404, data={"oid": 999999999}, login=ADMIN).json == no_owner
    # ids beyond PostgreSQL's 32-bit keys are merely missing, on both engines
    huge = 2**62
    assert api.patch(f"/things/{tid}", 404, json={"oid": huge}, login=ADMIN).json == {"error": f"no such owner: {huge}"}
    assert api.patch(f"/things/{huge}", 404, json={"oid": huge}, login=ADMIN).json == {
        "error": f"no such thing: {huge}"
    }
    res = api.post("/things", 404, json={"tname": unique("X"), "oid": huge, "tprice": 1}, login=ADMIN)
    assert res.json == {"error": f"no such owner: {huge}"}
    res = api.put(f"/things/{tid}", 404, data={"tname": "X", "oid": 999999999, "tprice": 1}, login=ADMIN)
    assert res.json == no_owner
    assert api.get(f"/things/{tid}", 200, login=USER).json == thing


def test_thing_get_missing_and_bad_ids(api):
    assert api.get("/things/999999999", 404, login=USER).json == {"error": "no such thing: 999999999"}
    assert api.delete("/things/999999999", 404, login=ADMIN).json == {"error": "no such thing: 999999999"}
    for path in ["/things/abc", "/things/-1", "/things/1.5", "/things/" + "9" * 40]:
        assert "error" in api.get(path, 404, login=USER).json, path


def test_price_round_trip(api, owner):
    """Prices come back as they went, as JSON numbers, the same text on both engines."""
    oid = owner["oid"]
    for sent, back in [(12.5, 12.5), ("12.5", 12.5), ("12.50", 12.5), (0, 0), (0.1, 0.1), ("0.07", 0.07)]:
        tid = add_thing(api, oid, tprice=sent)["tid"]
        res = api.get(f"/things/{tid}", 200, login=USER)
        assert res.json["tprice"] == back and not isinstance(res.json["tprice"], (str, bool)), sent
        api.delete(f"/things/{tid}", 204, login=ADMIN)
    tid = add_thing(api, oid, tprice=9999999999.99)["tid"]
    assert api.get(f"/things/{tid}", 200, login=USER).json["tprice"] == 9999999999.99
    # whole prices are written 40, not 40.0 on one engine and 40 on the other
    assert re.search(r'"tprice":\s*40\s*[,}]', api.get("/things/2", 200, login=USER).text)
    assert re.search(r'"tprice":\s*12\.5\s*[,}]', api.get("/things/3", 200, login=USER).text)


#
# concurrency: the database decides, once
#


def test_concurrent_owner_creation(api, raw):
    """Two admins create the same owner at once: the second insert waits on the first's
    uncommitted row (tests/race.py), then is refused (409, never a 500) when the first
    commits, or goes through (201) when it rolls back."""
    admin = basic(ADMIN, SEED_PASSWORDS[ADMIN])
    for commit in (True, False):
        owner = {"oname": unique("Twin"), "omail": "twin@example.org"}
        res = race(
            "add_owner", owner, functools.partial(raw.request, "POST", "/owners", data=owner, headers=admin), commit
        )
        rows = api.get("/owners", 200, data={"filter": owner["oname"]}, login=USER).json
        assert [{k: r[k] for k in ("oname", "omail")} for r in rows] == [owner]
        if commit:
            assert (res.status_code, res.json_body) == (409, {"error": f"owner already exists: {owner['oname']}"})
        else:
            assert (res.status_code, res.json_body) == (201, {"oid": rows[0]["oid"]})
        remove_owner(api, rows[0]["oid"])
