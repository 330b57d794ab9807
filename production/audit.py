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
    context.state().start = time.perf_counter()


def probe_record(i: int) -> logging.LogRecord:
    """A record of the audit logger with an empty-ish message, its other fields numbered i."""
    record = logging.LogRecord(log.name, logging.INFO, f"/probe{i}.py", i, "\x00", None, None, f"probe{i}")
    record.process, record.processName, record.thread, record.threadName = i, f"p{i}", i, f"t{i}"
    return record


def direct_stream() -> tuple[logging.Handler, str] | None:
    """The handler the audit line may be written to directly, and the text its formatter
    puts before a message, when the logging configuration is the plain one app.py and
    server.conf set (one stream handler on the root logger, a time-free format ending
    with the message, no filter): then a record would come out exactly so, and building
    it through the logging module costs about half of the line's instructions
    (bench/RESULTS.md). Anything else (a handler a test or an operator added, another
    format, a filter) goes through logging as usual: None.
    """
    global _direct
    root = logging.root
    if log.filters or len(root.handlers) != 1:
        return None
    logger: logging.Logger | None = log
    while logger is not root and logger is not None:  # kiva.audit, then kiva…: none may handle it
        if logger.handlers or not logger.propagate:
            return None
        logger = logger.parent
    handler = root.handlers[0]
    formatter = handler.formatter
    cached = _direct
    if cached is not None and cached[0] is handler and cached[1] is formatter:
        return cached[2]
    found = None
    if type(handler) is logging.StreamHandler and not handler.filters and handler.level <= logging.INFO:
        if formatter is not None and not formatter.usesTime():
            # the text before the message, for two records that differ in all but the
            # logger, the level and the message: equal only if it depends on these alone
            texts = {formatter.format(probe_record(i)).partition("\x00") for i in (1, 2)}
            if len(texts) == 1:
                prefix, marker, rest = texts.pop()
                if marker and not rest:
                    found = (handler, prefix)
    _direct = (handler, formatter, found)
    return found


# (handler, formatter, what direct_stream found for them): one tuple swap, thread-safe
_direct: tuple[logging.Handler, logging.Formatter | None, tuple[logging.Handler, str] | None] | None = None


def write(line: str):
    """Log the line at INFO on kiva.audit: straight to the stream when logging would
    write it there unchanged (direct_stream), through the logging module otherwise."""
    if not log.isEnabledFor(logging.INFO):
        return
    direct = direct_stream()
    if direct is None:
        log.info(line, stacklevel=2)  # the caller's function and line, as before
        return
    handler, prefix = direct  # what StreamHandler.emit does with the record, without the record
    try:
        with handler.lock:  # type: ignore[union-attr]
            stream = handler.stream  # type: ignore[attr-defined]
            stream.write(f"{prefix}{line}{handler.terminator}")  # type: ignore[attr-defined]
            stream.flush()
    except (OSError, ValueError):  # a closed stream…: logging's own error handling
        log.info(line)


def audit_line(res: flask.Response) -> flask.Response:
    req = context.request()
    start = context.state().start
    ms = (time.perf_counter() - start) * 1000 if start else 0.0
    user = context.app().current_user()
    line = (
        f"{timestamp()} {field(client_address())} {field(user)} "
        f"{field(req.method)} {field(req.path)} {res.status_code} {ms:.1f}"
    )
    write(line)
    return res


def init_app(app: flask.Flask):  # pragma: no mutate block (set-up)
    """Logging set for the app's records: in the app, not at import (tests/test_layers.py).

    The log records of Kiva's format (level, logger, message) need no thread nor process
    name: logging then skips looking them up on every record, the audit line's among
    them (the logging HOWTO's "Optimization" settings; its `_srcfile` one is private).
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
