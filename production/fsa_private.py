"""The one place where Kiva reaches into FlaskSimpleAuth's internals (version 36).

FlaskSimpleAuth tokens (realm:login:expiry:signature) carry no issue time and the
library has no hook to refuse a token that is valid but revoked: a token of a
deleted user, or one obtained before its user's last password change. Its public
`app.authentication(scheme, hook)` can replace the "token" scheme, but not reach
the original to call it: this module keeps the original (the only private access)
and wraps it. tests/test_library_workarounds.py fails if the library changes under it.
"""

import flask
import FlaskSimpleAuth as fsa

TOKEN_SCHEME = "token"  # noqa: S105 (a scheme name, not a secret)


def check_tokens(app: fsa.Flask, check):
    """Let `check(login, token)` have the last word on every token sent.

    login is what FlaskSimpleAuth's own check says: the token's user, or None for an
    invalid token (its refusal is dropped: its message echoes the token). `check`
    returns the login, or raises an ErrorResponse. No token at all: left as it was.
    """
    verify = app._fsa._am._authentication[TOKEN_SCHEME]  # type: ignore[attr-defined]

    def authenticate(fsa_app, req: flask.Request) -> str | None:
        try:
            login = verify(fsa_app, req)
        except fsa.ErrorResponse as e:
            if e.message == "missing token":
                raise
            login = None
        return check(login, req.headers["Authorization"].split(" ", 1)[1])

    app.authentication(TOKEN_SCHEME, authenticate)
