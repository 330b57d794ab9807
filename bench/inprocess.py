"""Kiva's WSGI application in this process, called as mod_wsgi calls it: the shared part
of `make bench-profile` (cpu_profile.py) and `make bench-instructions` (instructions.py).

Importing it loads the app with APP_CONFIG (default: server.conf, production settings).
"""

import base64
import io
import os
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
os.environ.setdefault("APP_CONFIG", os.path.join(HERE, "server.conf"))

from app import app  # noqa: E402

ENVIRONS: dict[tuple, dict] = {}  # by path and headers: a token GET and a basic GET of one path differ


def make_environ(path: str, headers: dict) -> dict:
    from werkzeug.test import EnvironBuilder

    return EnvironBuilder(path=path, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()


def wsgi_get(path: str, headers: dict, application=app) -> tuple[str, bytes]:
    """One GET through a WSGI application itself (Kiva's by default), as mod_wsgi calls it
    (no test client)."""
    key = (path, *sorted(headers.items()))
    environ = dict(ENVIRONS.get(key) or ENVIRONS.setdefault(key, make_environ(path, headers)))
    environ["wsgi.input"] = io.BytesIO(b"")
    status = []
    body = application(environ, lambda s, h, e=None: status.append(s))
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return status[0], data


def token_and_thing() -> tuple[dict, int]:
    """The demo admin's token headers, and the id of a thing to GET with them."""
    client = app.test_client()
    basic = "Basic " + base64.b64encode(b"calvin:hobbes").decode()
    res = client.get("/login", headers={"Authorization": basic})
    assert res.status_code == 200, res.data
    token = {"Authorization": "Bearer " + res.json}
    return token, client.get("/things?limit=1", headers=token).json[0]["tid"]
