"""Errors are JSON, always, with the right status: `{"error": "<message>"}`.

FlaskSimpleAuth already answers JSON for its own errors and for Werkzeug's HTTP
exceptions; this module closes the gaps its version 36 leaves (LIBRARY-NOTES.md):
a body that is not a JSON object or nested too deep, a body over the size limit, a
405 without its `Allow` header, a closed route's plain-text 403, and messages that
echo a secret the request carried (FlaskSimpleAuth's cast errors echo the value).
"""

import base64
import binascii
import json

import flask
import werkzeug.exceptions

from database import json_error

MAX_MESSAGE = 1000  # an error message echoes user input: keep it readable

# the request parameters that hold a password, whatever the route
SECRET_PARAMS = ("PASS", "pword", "password", "current", "apass")
REDACTED = "***"
MIN_SECRET = 4
# the messages of FlaskSimpleAuth's parameter checks, which quote the value refused
PARAMETER_ERRORS = ('parameter "', "error on parameter ")


def check_json_body():
    """Parse a JSON body before FlaskSimpleAuth does: it must be an object of parameters."""
    req = flask.request
    if not req.is_json:
        return None
    try:
        body = req.get_json(silent=True)
    except RecursionError:  # [[[[…: the JSON parser gives up, silent or not
        return json_error("JSON body nested too deep", 400)
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


def body_params() -> dict | None:
    """The request's body parameters (JSON object or form), None if it has none or is bad."""
    req = flask.request
    try:
        body = req.get_json(silent=True) if req.is_json else req.form
    except (RecursionError, werkzeug.exceptions.HTTPException):  # too deep, too large
        return None
    return body if isinstance(body, dict) else None


def request_secrets() -> list[str]:
    """The passwords and tokens this request carries, as they may appear in a message."""
    req = flask.request
    body = body_params()
    values: list = [body.get(name) for name in SECRET_PARAMS] if isinstance(body, dict) else []
    user = body.get("user") if isinstance(body, dict) else None
    if isinstance(user, dict):
        values.append(user.get("password"))
    elif isinstance(user, str):  # user=<json> in a form: hide the whole object
        values.append(user)
    scheme, _, credentials = req.headers.get("Authorization", "").partition(" ")
    if scheme == "Basic":
        try:
            values.append(base64.b64decode(credentials).decode().partition(":")[2])
        except (binascii.Error, UnicodeDecodeError):
            pass
    values.append(credentials)
    # shorter ones could not be passwords (FSA_PASSWORD_LENGTH), and would blot out the message
    secrets = {str(v) for v in values if v is not None and len(str(v)) >= MIN_SECRET}
    return sorted(secrets | {repr(s)[1:-1] for s in secrets}, key=len, reverse=True)


def redact(message: str) -> str:
    """FlaskSimpleAuth's parameter errors echo the value: remove the request's secrets."""
    if not message.startswith(PARAMETER_ERRORS):
        return message
    for secret in request_secrets():
        message = message.replace(secret, REDACTED)
    return message


def json_errors(res: flask.Response) -> flask.Response:
    """Make sure every error body is a JSON object with a bounded message, and no secret."""
    if res.status_code < 400 or res.is_streamed:
        return res
    try:
        body = json.loads(res.get_data(as_text=True))
        message = body.get("error") if isinstance(body, dict) else None
        if isinstance(message, str) and len(message) <= MAX_MESSAGE and redact(message) == message:
            return res
        extra = {k: v for k, v in body.items() if k != "error"} if isinstance(body, dict) else {}
    except ValueError:
        message, extra = res.get_data(as_text=True), {}
    message = redact(str(message or res.status))[:MAX_MESSAGE]
    res.set_data(json.dumps({"error": message, **extra}))
    res.content_type = "application/json"
    return res


def init_app(app: flask.Flask):
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default: no limit
        app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # larger bodies get a 413
    app.before_request(check_json_body)
    app.register_error_handler(405, method_not_allowed)
    app.after_request(json_errors)
