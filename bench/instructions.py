# A local tool: instructions per token GET /things/<tid>, in-process, under callgrind
# ruff: noqa: S108, S603, S605, S607
"""Instructions per request of Kiva's token GET /things/<tid> (`make bench-instructions`).

Run under `valgrind --tool=callgrind --instr-atstart=no`: the app loads and warms up
uninstrumented, then this script switches instrumentation on (callgrind_control -i on),
serves REQUESTS requests through the WSGI application (as mod_wsgi calls it), and switches it off; callgrind's
total is then the instructions of those requests alone (Python, Flask, FlaskSimpleAuth,
psycopg and libpq client side; not PostgreSQL, not mod_wsgi). Unlike CPU time, the count
does not move with the load of the machine: a change of a few percent shows.
"""

import base64
import io
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
os.environ.setdefault("APP_CONFIG", os.path.join(HERE, "server.conf"))

import logging  # noqa: E402

from app import app  # noqa: E402

REQUESTS = int(os.environ.get("INSTR_REQUESTS", "200"))
for handler in logging.getLogger().handlers:
    handler.stream = open(os.devnull, "w")  # type: ignore[attr-defined]


def callgrind(command: str):
    subprocess.run(["callgrind_control", command, str(os.getpid())], capture_output=True, check=True)


def wsgi_get(path: str, headers: dict) -> tuple[str, bytes]:
    """One GET through the WSGI application itself, as mod_wsgi calls it (no test client)."""
    environ = dict(ENVIRONS.get(path) or ENVIRONS.setdefault(path, make_environ(path, headers)))
    environ["wsgi.input"] = io.BytesIO(b"")
    status = []
    body = app(environ, lambda s, h, e=None: status.append(s))
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return status[0], data


def make_environ(path: str, headers: dict) -> dict:
    from werkzeug.test import EnvironBuilder

    return EnvironBuilder(path=path, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()


ENVIRONS: dict[str, dict] = {}


def main():
    client = app.test_client()
    basic = "Basic " + base64.b64encode(b"calvin:hobbes").decode()
    token = {"Authorization": "Bearer " + client.get("/login", headers={"Authorization": basic}).json}
    tid = client.get("/things?limit=1", headers=token).json[0]["tid"]
    for _ in range(50):
        assert wsgi_get(f"/things/{tid}", token)[0] == "200 OK"
    callgrind("--instr=on")
    for _ in range(REQUESTS):
        wsgi_get(f"/things/{tid}", token)
    callgrind("--instr=off")


if __name__ == "__main__":
    main()
