"""GET /docs: the interactive documentation of /openapi.json (Swagger UI), served by Kiva itself.

Swagger UI's files come from the pinned PyPI package flask-swagger-ui (its `dist`
folder, read as package data): no CDN, the page works offline. Every URL of the page
is relative to the request's SCRIPT_NAME, so that it works behind Apache's /api too.
The page has no inline script: its start-up code is one more file, served from here.
"""

import importlib.resources

import flask
import FlaskSimpleAuth as fsa
from markupsafe import escape

blueprint = fsa.Blueprint("docs", __name__)

SWAGGER_UI = importlib.resources.files("flask_swagger_ui") / "dist"
START = "kiva-docs.js"
# the files of the page, by name: Swagger UI's, then its start-up code
ASSETS = ["swagger-ui.css", "index.css", "swagger-ui-bundle.js", "favicon-32x32.png", START]
TYPES = {"css": "text/css", "js": "text/javascript", "png": "image/png"}

START_JS = """\
// Swagger UI on the document whose URL the page gives (data-url): see docs.py
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.url,
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""

PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} API</title>
  <link rel="stylesheet" href="{base}/swagger-ui.css">
  <link rel="stylesheet" href="{base}/index.css">
  <link rel="icon" type="image/png" href="{base}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui" data-url="{spec}"></div>
  <script src="{base}/swagger-ui-bundle.js"></script>
  <script src="{base}/{start}"></script>
</body>
</html>
"""


# the page's Content-Security-Policy: its scripts, styles and images from this server only,
# its requests (the document, "Try it out") to this server only, and never in a frame of
# another site (clickjacking: frame-ancestors). Swagger UI needs two relaxations, both
# for styles and images, never for scripts: React sets style attributes ('unsafe-inline'
# styles), and its CSS draws icons as data: SVG images.
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


# GET /docs: the documentation page
@blueprint.get("/docs", authz="OPEN")
def get_docs():
    root = flask.request.script_root
    title, base, spec = escape(flask.current_app.name), escape(root + "/docs"), escape(root + "/openapi.json")
    page = PAGE.format(title=title, base=base, spec=spec, start=START)
    res = flask.Response(page, 200, content_type="text/html; charset=utf-8")
    res.headers["Content-Security-Policy"] = CSP
    res.headers["X-Frame-Options"] = "DENY"  # frame-ancestors, for browsers without CSP level 2
    return res


# GET /docs/<asset>: a file of the page (Swagger UI's, or its start-up code)
@blueprint.get("/docs/<asset>", authz="OPEN")
def get_docs_asset(asset: str):
    fsa.checkVal(asset in ASSETS, f"no such file: {asset}", 404)
    kind = TYPES[asset.rsplit(".", 1)[1]]
    data = START_JS.encode() if asset == START else (SWAGGER_UI / asset).read_bytes()
    res = flask.Response(data, 200, content_type=kind + ("; charset=utf-8" if kind.startswith("text/") else ""))
    res.headers["Cache-Control"] = "public, max-age=86400"  # the pinned package changes only with a deploy
    return res
