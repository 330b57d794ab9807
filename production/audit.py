"""Audit trail: one log line per request, written after the response is decided.

time client user method path status duration-ms — the time (when the answer was
decided, to the millisecond) and the duration say when the request was in flight,
which proves concurrency in the tests; the user is the authenticated
login or "-". User-controlled fields are percent-encoded, so that a login or a
path holding a newline, a space or a control character cannot forge a line. The
query string is never logged, nor any header: no password nor token reaches a log.
"""

import logging
import re
import time
from urllib.parse import quote

import flask

from production import context
from production.security import client_address

log = logging.getLogger("kiva.audit")

# what may stay as is in a logged field: printable URL characters, no space
SAFE = "/:@!$&'()*+,;=-._~"
# a field made of these only is already what quote() would return: the usual case, cheaper
ALREADY_SAFE = re.compile(r"[A-Za-z0-9/:@!$&'()*+,;=\-._~]+").fullmatch

# the time of the line to the second, and its zone: formatted once per second
_stamp: tuple[int, str, str] = (0, "", "")


def field(value: str | None) -> str:
    """One space-free, control-free field of the audit line."""
    if not value:
        return "-"
    return value if ALREADY_SAFE(value) else quote(value, safe=SAFE)


def timestamp() -> str:
    """Now, local time, ISO 8601 to the millisecond: 2026-11-27T18:48:47.123+0000.

    The text of the second is formatted once per second (one tuple swap: thread-safe).
    """
    global _stamp
    now = time.time()
    stamp = _stamp
    if stamp[0] != int(now):
        local = time.localtime(int(now))
        stamp = _stamp = (int(now), time.strftime("%Y-%m-%dT%H:%M:%S", local), time.strftime("%z", local))
    return f"{stamp[1]}.{int(now % 1 * 1000):03d}{stamp[2]}"


def start_clock():
    context.g().kiva_start = time.perf_counter()


def audit_line(res: flask.Response) -> flask.Response:
    req = context.request()
    start = context.g().get("kiva_start")
    ms = (time.perf_counter() - start) * 1000 if start else 0.0
    user = context.app().current_user()
    log.info(
        f"{timestamp()} {field(client_address())} {field(user)} "
        f"{field(req.method)} {field(req.path)} {res.status_code} {ms:.1f}"
    )
    return res


# the log records of Kiva's format (level, logger, message) need no thread nor process
# name: logging then skips looking them up on every record, the audit line's among
# them (the logging HOWTO's "Optimization" settings; its `_srcfile` one is private)
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False
