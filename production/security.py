"""Browser-facing security: who the client is, cross-site writes, and response headers.

- The client address is the connection's. `X-Forwarded-For` is believed only from a
  proxy named in KIVA_TRUSTED_PROXIES (none by default), and then only its last
  entry, the one that proxy wrote: anything before it, the client may have forged.
- Cross-site requests: a POST, PUT, PATCH or DELETE that a browser marks as
  cross-site (`Sec-Fetch-Site: cross-site`, or an `Origin` that is neither this
  server's nor in KIVA_CORS_ORIGINS) is refused (403): credentials a browser holds
  cannot be ridden by another site. curl and scripts send neither header.
- A 401 challenges with `Bearer` only: `WWW-Authenticate: Basic` would make browsers
  prompt, then send the credentials with every later request, cross-site ones included.
- `X-Content-Type-Options: nosniff`: browsers take JSON for JSON, never for HTML.
- `Cache-Control: no-store` when the request carried credentials: no shared cache
  keeps one user's answer for another.
- CORS: `KIVA_CORS_ORIGINS` lists the web origins allowed to call the API from a
  browser (none by default: same-origin only).
"""

import urllib.parse

import flask

from production import context
from production.context import WRITE_METHODS
from production.errors import json_error

CORS_HEADERS = "Authorization, Content-Type, If-Match, If-None-Match"


def client_address() -> str:
    """The address of the client: the connection's, or what a trusted proxy says it is."""
    req = context.request()
    address = req.remote_addr or "-"
    if address in context.app().config["KIVA_TRUSTED_PROXIES"]:
        forwarded = req.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        address = forwarded or address
    return address[:100]


def same_origin(origin: str) -> bool:
    """Is this Origin header this server's own (scheme aside: a TLS proxy may be in front)?"""
    return urllib.parse.urlsplit(origin).netloc == flask.request.host


def refuse_cross_site_writes():
    req = context.request()
    if req.method not in WRITE_METHODS:
        return None
    origin = req.environ.get("HTTP_ORIGIN")
    if req.environ.get("HTTP_SEC_FETCH_SITE") == "cross-site" or (
        origin is not None and not same_origin(origin) and origin not in flask.current_app.config["KIVA_CORS_ORIGINS"]
    ):
        return json_error("cross-site request refused", 403)
    return None


def security_headers(res: flask.Response) -> flask.Response:
    req, app = context.request(), context.app()
    res.headers["X-Content-Type-Options"] = "nosniff"
    if res.status_code == 401:
        res.headers["WWW-Authenticate"] = f'Bearer realm="{app.name}"'
    if "HTTP_AUTHORIZATION" in req.environ or app.current_user():
        res.headers["Cache-Control"] = "no-store"
    origin = req.environ.get("HTTP_ORIGIN")
    if origin:
        res.vary.add("Origin")
        if origin in app.config["KIVA_CORS_ORIGINS"]:
            res.headers["Access-Control-Allow-Origin"] = origin
            if req.method == "OPTIONS":  # a preflight: say what may follow
                res.headers["Access-Control-Allow-Methods"] = res.headers.get("Allow", "GET")
                res.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
                res.headers["Access-Control-Max-Age"] = "600"
    return res
