"""Service routes: /version and /health."""

import datetime

from production import migrate


def test_version(api):
    res = api.get("/version", 200, login=None)
    assert res.headers["Content-Type"] == "application/json"
    body = res.json
    assert set(body) == {"app", "version", "schema", "user", "now"}
    assert body["app"] == "kiva" and body["user"] is None and body["version"]
    # the schema version reached by the database: the latest migration this code ships
    assert body["schema"] == migrate.expected() and isinstance(body["schema"], int)
    # "now" comes from the database, as an ISO 8601 UTC time stamp, on both engines
    now = datetime.datetime.fromisoformat(body["now"])
    assert body["now"].endswith("+00:00")
    assert abs((datetime.datetime.now(datetime.UTC) - now).total_seconds()) < 300


def test_version_user(api):
    assert api.get("/version", 200, login="hobbes").json["user"] == "hobbes"


def test_health(api):
    assert api.get("/health", 200).json == {"status": "ok", "db": "ok"}


def test_unknown_route(api):
    assert "error" in api.get("/no-such-route", 404).json
