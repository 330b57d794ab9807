"""Audit trail: one log line per request, written after the response is decided.

time client user method path status duration-ms — the time (when the answer was
decided, to the millisecond) and the duration say when the request was in flight,
which proves concurrency in the tests; the user is the authenticated
login or "-". User-controlled fields are percent-encoded, so that a login or a
path holding a newline, a space or a control character cannot forge a line. The
query string is never logged, nor any header: no password nor token reaches a log.
"""

import logging
import time
import typing
from urllib.parse import quote

import flask
import FlaskSimpleAuth as fsa

from security import client_address

log = logging.getLogger("kiva.audit")

# the running app as FlaskSimpleAuth's Flask: its methods (current_user…) typed
current_app = typing.cast(fsa.Flask, flask.current_app)

# what may stay as is in a logged field: printable URL characters, no space
SAFE = "/:@!$&'()*+,;=-._~"


def field(value: str | None) -> str:
    """One space-free, control-free field of the audit line."""
    return quote(value, safe=SAFE) if value else "-"


def timestamp() -> str:
    """Now, local time, ISO 8601 to the millisecond: 2026-11-27T18:48:47.123+0000."""
    now = time.time()
    local = time.localtime(now)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', local)}.{int(now % 1 * 1000):03d}{time.strftime('%z', local)}"


def start_clock():
    flask.g.kiva_start = time.perf_counter()


def audit_line(res: flask.Response) -> flask.Response:
    req = flask.request
    start = flask.g.get("kiva_start")
    ms = (time.perf_counter() - start) * 1000 if start else 0.0
    user = current_app.current_user()
    log.info(
        f"{timestamp()} {field(client_address())} {field(user)} "
        f"{field(req.method)} {field(req.path)} {res.status_code} {ms:.1f}"
    )
    return res
