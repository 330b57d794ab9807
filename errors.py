"""Errors are JSON, always, with the right status: `{"error": "<message>"}`.

FlaskSimpleAuth already answers JSON for its own errors and for Werkzeug's HTTP
exceptions; this module closes the gaps its version 36 leaves (LIBRARY-NOTES.md):
a body that is not a JSON object, a body over the size limit, a 405 without its
`Allow` header, a closed route's plain-text 403.
"""

import json

import flask
import werkzeug.exceptions

from database import json_error

MAX_MESSAGE = 1000  # an error message echoes user input: keep it readable


def check_json_body():
    """Parse a JSON body before FlaskSimpleAuth does: it must be an object of parameters."""
    req = flask.request
    if not req.is_json:
        return None
    body = req.get_json(silent=True)
    if body is None:
        return json_error("malformed or empty JSON body", 400)
    if not isinstance(body, dict):
        return json_error("the JSON body must be an object of parameters", 400)
    return None


def method_not_allowed(e: werkzeug.exceptions.MethodNotAllowed) -> flask.Response:
    """405, keeping the `Allow` header FlaskSimpleAuth's generic handler drops."""
    res = json_error(e.description or "method not allowed", 405)
    res.headers["Allow"] = ", ".join(sorted(e.valid_methods or []))
    return res


def json_errors(res: flask.Response) -> flask.Response:
    """Make sure every error body is a JSON object with a bounded message."""
    if res.status_code < 400 or res.is_streamed:
        return res
    try:
        body = json.loads(res.get_data(as_text=True))
        if isinstance(body, dict) and isinstance(body.get("error"), str) and len(body["error"]) <= MAX_MESSAGE:
            return res
        message = body.get("error") if isinstance(body, dict) else None
    except ValueError:
        message = res.get_data(as_text=True)
    message = str(message or res.status)[:MAX_MESSAGE]
    res.set_data(json.dumps({"error": message}))
    res.content_type = "application/json"
    return res


def init_app(app: flask.Flask):
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default: no limit
        app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # larger bodies get a 413
    app.before_request(check_json_body)
    app.register_error_handler(405, method_not_allowed)
    app.after_request(json_errors)
