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

# WSGI environs by method, headers and content type, for the path "/": Werkzeug's
# EnvironBuilder costs more than some requests (mod_wsgi builds its environ in C, which no
# count sees), so it runs once per kind of request, not in what is measured
ENVIRONS: dict[tuple, dict] = {}


def make_environ(path: str, headers: dict, method: str = "GET") -> dict:
    from werkzeug.test import EnvironBuilder

    return EnvironBuilder(
        path=path, method=method, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    ).get_environ()


def wsgi_call(
    method: str,
    path: str,
    headers: dict | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    application=app,
) -> tuple[str, bytes]:
    """One request through a WSGI application itself (Kiva's by default), as mod_wsgi calls
    it (no test client): its status line and body. The path has no query string."""
    headers = headers or {}
    key = (method, content_type, *sorted(headers.items()))
    base = ENVIRONS.get(key) or ENVIRONS.setdefault(key, make_environ("/", headers, method))
    environ = dict(base)
    environ["PATH_INFO"] = environ["REQUEST_URI"] = environ["RAW_URI"] = path
    environ["wsgi.input"] = io.BytesIO(body)
    if content_type:
        environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"] = content_type, str(len(body))
    status = []
    res = application(environ, lambda s, h, e=None: status.append(s))
    try:
        data = b"".join(res)
    finally:
        getattr(res, "close", lambda: None)()
    return status[0], data


def wsgi_get(path: str, headers: dict, application=app) -> tuple[str, bytes]:
    """One GET through a WSGI application (wsgi_call)."""
    return wsgi_call("GET", path, headers, application=application)


def token_and_thing() -> tuple[dict, int]:
    """The demo admin's token headers, and the id of a thing to GET with them."""
    client = app.test_client()
    basic = "Basic " + base64.b64encode(b"calvin:hobbes").decode()
    res = client.get("/login", headers={"Authorization": basic})
    assert res.status_code == 200, res.data
    token = {"Authorization": "Bearer " + res.json}
    return token, client.get("/things?limit=1", headers=token).json[0]["tid"]
