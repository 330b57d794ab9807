"""Security headers on every response, and CORS for an allow-list of origins only.

- `X-Content-Type-Options: nosniff`: browsers take JSON for JSON, never for HTML.
- `Cache-Control: no-store` when the request carried credentials: no shared cache
  keeps one user's answer for another.
- CORS: `KIVA_CORS_ORIGINS` lists the web origins allowed to call the API from a
  browser (none by default: same-origin only).
"""

import flask

CORS_HEADERS = "Authorization, Content-Type"


def security_headers(res: flask.Response) -> flask.Response:
    req = flask.request
    res.headers["X-Content-Type-Options"] = "nosniff"
    if "Authorization" in req.headers or flask.current_app.current_user():  # type: ignore[attr-defined]
        res.headers["Cache-Control"] = "no-store"
    origin = req.headers.get("Origin")
    if origin:
        res.vary.add("Origin")
        if origin in flask.current_app.config["KIVA_CORS_ORIGINS"]:
            res.headers["Access-Control-Allow-Origin"] = origin
            if req.method == "OPTIONS":  # a preflight: say what may follow
                res.headers["Access-Control-Allow-Methods"] = res.headers.get("Allow", "GET")
                res.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
                res.headers["Access-Control-Max-Age"] = "600"
    return res


def init_app(app: flask.Flask):
    app.config.setdefault("KIVA_CORS_ORIGINS", [])
    app.after_request(security_headers)
