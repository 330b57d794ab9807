"""Stuff, the CRUDS demo: every status of the contract, with its body."""

from helpers import unique


def test_list_seeds(api):
    res = api.get("/stuff", 200, login=None)
    assert res.headers["Content-Type"] == "application/json"
    rows = res.json
    assert {"sid": 1, "stuff": "Chair"} in rows
    assert [r["sid"] for r in rows] == sorted(r["sid"] for r in rows)


def test_list_filter(api):
    name = unique("Cfilter")
    sid = api.post("/stuff", 201, data={"stuff": name}).json["sid"]
    assert api.get("/stuff", 200, data={"filter": name}).json == [{"sid": sid, "stuff": name}]
    prefixed = api.get("/stuff", 200, data={"filter": "C%", "limit": 1000}).json
    assert {"sid": 1, "stuff": "Chair"} in prefixed and {"sid": sid, "stuff": name} in prefixed
    assert all(r["stuff"].startswith("C") for r in prefixed)
    # LIKE is case-sensitive on both engines: "cfilter-…" would match under the other rule
    other_case = name[0].lower() + name[1:]
    assert other_case != name and other_case.lower() == name.lower()
    assert api.get("/stuff", 200, data={"filter": other_case}).json == []
    assert api.get("/stuff", 200, data={"filter": other_case[:4] + "%"}).json == []
    api.delete(f"/stuff/{sid}", 204)


def test_list_filter_nothing(api):
    assert api.get("/stuff", 200, data={"filter": unique("Nope") + "%"}).json == []


def test_list_filter_escapes(api):
    """A backslash escapes the next character of a filter, on both engines (a literal % or
    _); one at the end escapes nothing: a 400 on both (PostgreSQL refused it, SQLite found
    nothing), that /openapi.json's pattern announces."""
    own = unique("Esc")
    names = [f"{own}-100%", f"{own}-100x", f"{own}-a_b", f"{own}-axb", f"{own}-back\\slash"]
    sids = [api.post("/stuff", 201, json={"stuff": n}).json["sid"] for n in names]
    try:
        found = {
            pattern: [row["stuff"] for row in api.get("/stuff", 200, data={"filter": pattern}).json]
            for pattern in (f"{own}-100\\%", f"{own}-a\\_b", f"{own}-back\\\\%", f"{own}-100%")
        }
    finally:
        for sid in sids:
            api.delete(f"/stuff/{sid}", 204)
    assert found == {
        f"{own}-100\\%": [names[0]],
        f"{own}-a\\_b": [names[2]],
        f"{own}-back\\\\%": [names[4]],
        f"{own}-100%": names[:2],
    }
    for pattern in ("\\", f"{own}\\", f"{own}\\\\\\"):
        res = api.get("/stuff", 400, data={"filter": pattern})
        assert "a LIKE pattern must not end with a backslash that escapes nothing" in res.json["error"], res.json


def test_list_paging(api):
    # a prefix of this test's own: no other row (of another test, of an earlier run) on its pages
    own = unique("Page")
    names = [f"{own}-{i}" for i in range(3)]
    sids = [api.post("/stuff", 201, json={"stuff": n}).json["sid"] for n in names]
    prefix = own + "%"
    res = api.get("/stuff", 200, data={"filter": prefix, "after": sids[0] - 1, "limit": 2})
    assert res.json == [{"sid": sid, "stuff": name} for sid, name in zip(sids[:2], names[:2], strict=True)]
    link = res.headers["Link"]
    assert link.endswith('; rel="next"') and f"after={sids[1]}" in link and "limit=2" in link
    assert f"filter={own}%25" in link
    # the next page, by following the link
    url = link[link.index("<") + 1 : link.index(">")]
    path = url[url.index("/stuff") :]
    res = api.get(path, 200)
    assert res.json == [{"sid": sids[2], "stuff": names[2]}]
    # the last page has no Link
    res = api.get("/stuff", 200, data={"filter": prefix, "after": sids[2] - 1, "limit": 1000})
    assert "Link" not in res.headers and res.json == [{"sid": sids[2], "stuff": names[2]}]
    for sid in sids:
        api.delete(f"/stuff/{sid}", 204)


def test_list_bad_parameters(api):
    for params, message in [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "x"}, "after"),
        ({"after": "99999999999999999999999"}, "out of range"),
        ({"filter": ""}, "filter"),
        ({"filter": "x" * 201}, "filter"),
        ({"filter": "a\x00b"}, "control"),
        ({"whatever": "1"}, "whatever"),
    ]:
        res = api.get("/stuff", 400, data=params)
        assert message in res.json["error"], params


def test_get_one(api):
    assert api.get("/stuff/1", 200).json == {"sid": 1, "stuff": "Chair"}
    assert api.get("/stuff/5432", 404).json == {"error": "no such sid: 5432"}


def test_get_bad_ids(api):
    for path in ["/stuff/abc", "/stuff/-1", "/stuff/1.5", "/stuff/" + "9" * 40]:
        assert "error" in api.get(path, 404).json, path


def test_create_read_update_delete(api):
    name = unique("Clock")
    res = api.post("/stuff", 201, data={"stuff": name})
    assert res.headers["Content-Type"] == "application/json"
    sid = res.json["sid"]
    assert isinstance(sid, int)
    assert api.get(f"/stuff/{sid}", 200).json == {"sid": sid, "stuff": name}
    # a duplicate is a conflict, never a 500
    assert api.post("/stuff", 409, data={"stuff": name}).json == {"error": f"stuff already exists: {name}"}
    # rename with PUT, then PATCH, with form or JSON parameters
    bed = unique("Bed")
    assert api.put(f"/stuff/{sid}", 204, data={"stuff": bed}).data == b""
    assert api.get(f"/stuff/{sid}", 200).json == {"sid": sid, "stuff": bed}
    wardrobe = unique("Wardrobe")
    api.patch(f"/stuff/{sid}", 204, json={"stuff": wardrobe})
    assert api.get(f"/stuff/{sid}", 200).json == {"sid": sid, "stuff": wardrobe}
    # delete, twice
    assert api.delete(f"/stuff/{sid}", 204).data == b""
    assert api.get(f"/stuff/{sid}", 404).json == {"error": f"no such sid: {sid}"}
    assert api.delete(f"/stuff/{sid}", 404).json == {"error": f"no such sid: {sid}"}


def test_create_bad_parameters(api):
    assert api.post("/stuff", 400).json == {"error": 'parameter "stuff" is missing'}
    for bad in ["", "x" * 201, "tab\there", "nul\x00"]:
        assert "a name must" in api.post("/stuff", 400, data={"stuff": bad}).json["error"]
    wrong: object
    for wrong in [42, True, None, ["a"], {"a": 1}]:
        assert "error" in api.post("/stuff", 400, json={"stuff": wrong}).json
    assert "error" in api.post("/stuff", 400, data={"stuff": "ok", "extra": "no"}).json


def test_update_missing_and_conflict(api):
    assert api.put("/stuff/5432", 404, data={"stuff": unique("X")}).json == {"error": "no such sid: 5432"}
    assert api.patch("/stuff/5432", 404, data={"stuff": "Wardrobe"}).json == {"error": "no such sid: 5432"}
    name = unique("Lamp")
    sid = api.post("/stuff", 201, data={"stuff": name}).json["sid"]
    assert api.put(f"/stuff/{sid}", 400).json == {"error": 'parameter "stuff" is missing'}
    assert "error" in api.put(f"/stuff/{sid}", 400, data={"stuff": ""}).json
    # renaming to a taken name is a conflict, and leaves nothing half-written:
    # the failed transaction is rolled back and the connection serves the next request
    res = api.put(f"/stuff/{sid}", 409, data={"stuff": "Chair"})
    assert res.json == {"error": "conflict: this name is already taken"}
    assert api.get(f"/stuff/{sid}", 200).json == {"sid": sid, "stuff": name}
    assert api.get("/stuff/1", 200).json == {"sid": 1, "stuff": "Chair"}
    api.delete(f"/stuff/{sid}", 204)


def test_delete_missing(api):
    assert api.delete("/stuff/5432", 404).json == {"error": "no such sid: 5432"}
