"""Owned objects: the object permissions transcripts, and the CRUD of one's objects."""

from helpers import SEED_PASSWORDS, basic, unique


def test_owned_transcripts(api):
    rows = api.get("/owned", 200, login="calvin").json
    assert rows[:5] == [
        {"oid": 1, "object": "Box", "owner": 1},
        {"oid": 2, "object": "Box", "owner": 2},
        {"oid": 3, "object": "Doll", "owner": 3},
        {"oid": 4, "object": "Tiger", "owner": 1},
        {"oid": 5, "object": "Snow", "owner": 1},
    ]
    assert api.get("/object", 200, login="calvin").json == rows
    assert api.get("/owned", 403, login="susie").json == {"error": 'not in group "ADMIN"'}
    assert api.get("/object/1", 200, login="calvin").json == {"oid": 1, "object": "Box", "owner": 1}
    assert api.get("/object/1", 403, login="hobbes").json == {"error": "permission denied on owned:[1] (None)"}
    mine = api.get("/owned/1", 200, login="calvin").json
    assert [r["oid"] for r in mine][:3] == [1, 4, 5] and all(r["owner"] == 1 for r in mine)
    assert api.get("/owned/1", 403, login="hobbes").json == {"error": "permission denied on user:[1] (None)"}
    assert api.get("/owned/42", 404, login="hobbes").json == {"error": "object not found"}
    # an admin may read any user's objects
    assert api.get("/owned/3", 200, login="calvin").json[0] == {"oid": 3, "object": "Doll", "owner": 3}


def test_object_crud(api):
    login, password = unique("own"), "password"
    uid = api.post("/register", 201, data={"login": login, "pword": password}).json["uid"]
    me = basic(login, password)
    name = unique("Kite")
    oid = api.post("/object", 201, login=None, headers=me, data={"object": name}).json["oid"]
    assert api.get(f"/object/{oid}", 200, login=None, headers=me).json == {
        "oid": oid,
        "object": name,
        "owner": uid,
    }
    assert api.get(f"/owned/{uid}", 200, login=None, headers=me).json == [{"oid": oid, "object": name, "owner": uid}]
    # the same name twice for one owner: a conflict; for another owner: fine
    res = api.post("/object", 409, login=None, headers=me, data={"object": name})
    assert res.json == {"error": f"you own this object already: {name}"}
    other = api.post("/object", 201, login="hobbes", data={"object": name}).json["oid"]
    # rename, with the usual name rules
    renamed = unique("Balloon")
    api.patch(f"/object/{oid}", 204, login=None, headers=me, data={"object": renamed})
    assert api.get(f"/object/{oid}", 200, login=None, headers=me).json["object"] == renamed
    assert "a name must" in api.patch(f"/object/{oid}", 400, login=None, headers=me, data={"object": ""}).json["error"]
    assert api.patch(f"/object/{oid}", 400, login=None, headers=me).json == {"error": 'parameter "object" is missing'}
    api.post("/object", 201, login=None, headers=me, data={"object": name})  # name is free again
    assert (
        api.patch(f"/object/{oid}", 409, login=None, headers=me, data={"object": name})
        .json["error"]
        .startswith("conflict")
    )
    # delete: twice
    api.delete(f"/object/{oid}", 204, login=None, headers=me)
    assert api.get(f"/object/{oid}", 404, login=None, headers=me).json == {"error": "object not found"}
    assert api.delete(f"/object/{oid}", 404, login=None, headers=me).json == {"error": "object not found"}
    for row in api.get(f"/owned/{uid}", 200, login=None, headers=me).json:
        api.delete(f"/object/{row['oid']}", 204, login=None, headers=me)
    api.delete(f"/object/{other}", 204, login="hobbes")
    api.delete(f"/users/{uid}", 204, login=None, headers=basic("calvin", SEED_PASSWORDS["calvin"]))


def test_object_bad_parameters(api):
    assert api.post("/object", 400, login="hobbes").json == {"error": 'parameter "object" is missing'}
    for bad in ["", "x" * 201, "nul\x00"]:
        assert "a name must" in api.post("/object", 400, login="hobbes", data={"object": bad}).json["error"]
    assert "error" in api.post("/object", 400, login="hobbes", json={"object": 12}).json
