"""The /cmp blueprint."""

import re


def test_add(api):
    assert api.get("/cmp/add", 200, login="hobbes", data={"i": 30, "j": 12}).json == 42
    assert api.get("/cmp/add", 200, login="hobbes", json={"i": -5, "j": 2}).json == -3
    assert api.get("/cmp/add", 400, login="hobbes", data={"i": 30}).json == {"error": 'parameter "j" is missing'}
    assert "error" in api.get("/cmp/add", 400, login="hobbes", data={"i": "x", "j": 1}).json
    assert "error" in api.get("/cmp/add", 400, login="hobbes", json={"i": 1.5, "j": 1}).json
    assert api.get("/cmp/add", 401, login=None, data={"i": 1, "j": 1}).json == {"error": "missing authorization header"}


def test_hash(api):
    hashed = api.get("/cmp/hash", 200, login="hobbes", data={"apass": "Wow!"}).json
    assert re.fullmatch(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}", hashed)
    assert api.get("/cmp/hash", 400, login="hobbes").json == {"error": 'parameter "apass" is missing'}
    assert "72 characters" in api.get("/cmp/hash", 400, login="hobbes", data={"apass": "x" * 73}).json["error"]
    assert re.fullmatch(
        r"\$2[aby]\$\d\d\$.{53}", api.get("/cmp/hash", 200, login="hobbes", data={"apass": "é" * 72}).json
    )
