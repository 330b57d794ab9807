"""The performance shortcuts (issue #13) give exactly what the code they replace gave.

Each shortcut is checked against the slower original it replaced, on many inputs:
the audit fields against urllib's quote, the audit time against strftime, the token's
issue time against strptime, and the hook chains against Flask's own hook semantics
(the first before-hook answer wins, after-hooks in their listed order).
"""

import contextlib
import datetime
import io
import logging
import os
import time
from collections.abc import Iterator
from urllib.parse import quote

import flask
import FlaskSimpleAuth as fsa
import pytest
import werkzeug.exceptions
import werkzeug.test
from helpers import EXTERNAL
from hypothesis import given, settings
from hypothesis import strategies as st

import auth
from production import audit, errors, hooks


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_audit_field_is_quote(value):
    assert audit.field(value) == (quote(value, safe=audit.SAFE) if value else "-")


@given(st.sampled_from(["/things/12", "calvin", "GET", "10.1.2.3", "a b", "x\ny", "é", "%41", "[::1]", "a_b-c.d~"]))
def test_audit_field_samples(value):
    assert audit.field(value) == quote(value, safe=audit.SAFE)
    assert " " not in audit.field(value) and "\n" not in audit.field(value)


def test_audit_timestamp_is_strftime():
    # the cached second and zone, with the milliseconds: what strftime gives around it, on
    # the same clock (time.time(): strftime's own clock may lag it by a millisecond)
    def text(now: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S %z", time.localtime(int(now)))

    for _ in range(3):
        before = text(time.time())
        stamp = audit.timestamp()
        after = text(time.time())
        second, millis, zone = stamp[:19], stamp[20:23], stamp[23:]
        assert stamp[19] == "." and millis.isdigit() and f"{second} {zone}" in (before, after), stamp
        time.sleep(0.4)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2200, 12, 31)))
def test_token_issued_is_strptime(expiry):
    app = flask.Flask("fast-paths")
    app.config["FSA_TOKEN_DELAY"] = 60.0
    text = expiry.strftime("%Y%m%d%H%M%S")
    token = f"kiva/60m:calvin:{text}:0123456789abcdef"
    expected = datetime.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=datetime.UTC)
    with app.app_context():
        assert auth.token_issued(token) == (expected - datetime.timedelta(minutes=60)).timestamp()


def test_token_issued_whatever_the_local_zone():
    # the expiry is UTC (FlaskSimpleAuth's): a server set to another zone reads it so too
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"  # +05:30, no summer time
    time.tzset()
    try:
        issued = auth.token_issued("kiva/60m:calvin:20261203120000:0123456789abcdef")
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()
    assert issued == datetime.datetime(2026, 12, 3, 11, 0, 0, tzinfo=datetime.UTC).timestamp()


def test_hook_chains_keep_flask_semantics():
    app = flask.Flask("hook-chains")
    calls: list[str] = []

    def first():
        calls.append("first")

    def refuse():
        calls.append("refuse")
        if flask.request.args.get("refuse"):
            return {"error": "refused"}, 403
        return None

    def never_after_refusal():
        calls.append("third")

    def tag(name):
        def after(res):
            calls.append(name)
            res.headers["X-Order"] = res.headers.get("X-Order", "") + name
            return res

        return after

    app.before_request(hooks.before_chain([first, refuse, never_after_refusal]))
    app.after_request(hooks.after_chain([tag("a"), tag("b"), tag("c")]))
    app.add_url_rule("/", "root", lambda: "ok")
    client = app.test_client()

    res = client.get("/")
    assert res.status_code == 200 and res.text == "ok" and res.headers["X-Order"] == "abc"
    assert calls == ["first", "refuse", "third", "a", "b", "c"]
    calls.clear()
    res = client.get("/?refuse=1")
    assert res.status_code == 403 and res.json == {"error": "refused"} and res.headers["X-Order"] == "abc"
    assert calls == ["first", "refuse", "a", "b", "c"]


@contextlib.contextmanager
def root_logging(fmt: str) -> Iterator[io.StringIO]:
    """One stream handler on the root logger, with this format, at INFO: its stream."""
    root, stream = logging.getLogger(), io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(fmt))
    saved, level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved, level


@pytest.mark.parametrize(
    "fmt",
    [
        logging.BASIC_FORMAT,  # app.py's logging.basicConfig
        "%(levelname)s %(name)s: %(message)s",  # server.conf's, under mod_wsgi
        "%(levelno)d %(module)s %(message)s",  # the calling module: through logging
        "%(asctime)s %(message)s",  # a time: through logging
        "%(message)s (%(funcName)s)",  # the message not last: through logging
        "%(lineno)d %(message)s",  # the calling line: through logging
        "%(funcName)s: %(message)s",  # the calling function before the message: through logging
        "%(processName)s %(threadName)s %(message)s",  # the process and thread: through logging
    ],
)
def test_audit_write_is_logging(fmt):
    # the audit line written straight to the stream is what the logging module writes
    with root_logging(fmt) as stream:
        direct = audit.direct_stream()
        lines = ["2026-12-02T23:30:00.123+0000 127.0.0.1 calvin GET /things/1 200 0.4", "a %s %(x)s é\\x"]
        for line in lines:
            audit.write(line)
        written = stream.getvalue()
        stream.seek(0)
        stream.truncate()
        for line in lines:
            audit.log.info(line)
        logged = stream.getvalue()
    taken = fmt in (logging.BASIC_FORMAT, "%(levelname)s %(name)s: %(message)s")
    assert (direct is not None) == taken, direct
    # under make mutation, mutmut's trampoline is a frame between audit.write and its
    # caller: the calling module and function logged are the trampoline's
    by_mutmut = "MUTANT_UNDER_TEST" in os.environ and any(f"({key})" in fmt for key in ("module", "funcName"))
    # a time, or the line of the call (two calls in this test): the text differs anyway
    if "asctime" not in fmt and "lineno" not in fmt and not by_mutmut:
        assert written == logged, (written, logged)
    assert written.count("\n") == 2 and lines[1] in written


def test_sync_once_asks_flask_once_per_function():
    # the answer is Flask's own, asked once per function, whatever the number of requests
    app = flask.Flask("sync-once")
    asked: list = []
    flask_ensure_sync = app.ensure_sync
    app.ensure_sync = lambda func: asked.append(func) or flask_ensure_sync(func)  # type: ignore[method-assign,func-returns-value]
    hooks.sync_once(app)

    @app.get("/")
    def index():
        return "ok"

    app.after_request(lambda res: res)
    for _ in range(5):
        assert app.test_client().get("/").data == b"ok"
    assert index in asked and len(asked) == len(set(map(id, asked))) == 2, asked

    async def coroutine():  # still Flask's: wrapped (asgiref) or refused, as without the cache
        return "x"

    try:
        expected: object = flask_ensure_sync(coroutine)
    except RuntimeError as e:
        expected = str(e)
    try:
        got: object = app.ensure_sync(coroutine)
    except RuntimeError as e:
        got = str(e)
    assert type(got) is type(expected) and got is not coroutine


def test_token_issued_with_a_slash_in_the_app_name():
    # the realm is the app's name (APP_NAME), then the lifetime after the last slash
    assert auth.token_issued("my/kiva/60m:calvin:20261203120000:0123456789abcdef") == (
        datetime.datetime(2026, 12, 3, 11, 0, 0, tzinfo=datetime.UTC).timestamp()
    )


def test_password_quality_bounds():
    assert auth.password_quality("p" * auth.PASSWORD_MAX) is True
    with pytest.raises(fsa.ErrorResponse) as refused:
        auth.password_quality("p" * (auth.PASSWORD_MAX + 1))
    assert (refused.value.status, refused.value.message) == (
        400,
        f"password longer than {auth.PASSWORD_MAX} characters",
    )


@pytest.mark.skipif(EXTERNAL, reason="the app's request context: in-process only")
def test_token_of_the_second_of_the_change(monkeypatch):
    """A token whose issue second is the very second a password changed (pwchanged a whole
    second) was issued at or after the change: accepted; a second before: refused."""
    from app import app

    token = "kiva/60m:calvin:20261203120000:0123456789abcdef"
    changed = auth.token_issued(token)
    for pwchanged, accepted in ((changed, True), (changed + 0.5, False)):
        monkeypatch.setattr(auth, "user_row", lambda _login, p=pwchanged: {"uid": 1, "pwchanged": p})
        with app.test_request_context("/whoami"):
            if accepted:
                assert auth.check_token("calvin", token) == "calvin"
            else:
                with pytest.raises(fsa.ErrorResponse):
                    auth.check_token("calvin", token)


@pytest.mark.skipif(EXTERNAL, reason="the app's request context: in-process only")
def test_new_token_second_waited_for_only_after_a_change(monkeypatch):
    """/login right after a password change waits for the next second, at most 1 s; long
    after it, not at all."""
    from app import app

    waits: list[float] = []
    monkeypatch.setattr(auth.time, "sleep", waits.append)
    now = time.time()
    monkeypatch.setattr(auth.time, "time", lambda: now)
    for pwchanged in (now - 3600, now - 0.25):
        monkeypatch.setattr(auth, "user_row", lambda _login, p=pwchanged: {"uid": 1, "pwchanged": p})
        with app.test_request_context("/login"):
            auth.wait_for_a_new_token_second("calvin")
    assert waits == [0.0, pytest.approx(0.75)]


CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "Application/X-WWW-Form-URLEncoded",
    "multipart/form-data; boundary=b",
    "MULTIPART/FORM-DATA; boundary=b",
]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("body", [b"", b"a=1&b=2", b'{"a": 1}', b"--b\r\nx\r\n--b--\r\n"])
def test_no_form_is_what_werkzeug_parses(content_type, body):
    # errors.check_json_body sets request.form and .files empty when the body is no form:
    # the very answer of Werkzeug's own parser, whatever the type's spelling
    app = flask.Flask("no-form")
    headers = [("Content-Type", content_type)] if content_type else []

    def environ() -> dict:
        return werkzeug.test.EnvironBuilder("/x", method="POST", data=body, headers=headers).get_environ()

    expected = parsed(flask.Request(environ()))
    with app.request_context(environ()) as ctx:
        errors.check_json_body()
        assert parsed(ctx.request) == expected, content_type


def parsed(request: flask.Request) -> tuple:
    """A request's form and files, or the error parsing them raised (a malformed multipart)."""
    try:
        return request.form, request.files
    except werkzeug.exceptions.HTTPException as e:
        return (type(e),)


@pytest.mark.parametrize(
    ("name", "change"),
    [("", "handler"), ("kiva", "handler"), ("kiva.audit", "handler"), ("kiva.audit", "filter"), ("kiva.audit", "own")],
)
def test_audit_line_reaches_every_handler(name, change):
    # with any other logging set-up than the plain one, the line goes through logging:
    # a second handler (on the root, kiva or kiva.audit) gets it, a filter sees it, a
    # logger that does not propagate ("own") keeps it to its own handler
    logger, extra = logging.getLogger(name), io.StringIO()
    added = logging.StreamHandler(extra)
    seen: list[str] = []

    def note(record: logging.LogRecord) -> bool:
        seen.append(record.getMessage())
        return True

    with root_logging(logging.BASIC_FORMAT) as plain:
        try:
            if change == "filter":
                logger.addFilter(note)
            else:
                logger.addHandler(added)
                logger.propagate = change != "own"
            audit.write("2026-12-02T23:30:00.123+0000 127.0.0.1 calvin GET /things/1 200 0.4")
        finally:
            logger.removeHandler(added)
            logger.filters.clear()
            logger.propagate = True
    line = "calvin GET /things/1 200 0.4"
    assert (line in plain.getvalue()) == (change != "own"), plain.getvalue()
    assert line in (seen[0] if seen else extra.getvalue())
