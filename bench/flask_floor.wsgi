# The framework floors: the raw floor's GET /things/<tid> (bench/floor_sql.py: the same
# statement, connections and JSON) as a route of a bare Flask app, and as a route of a
# FlaskSimpleAuth app behind a token (Kiva's token settings and secret, no user query).
# Between the raw floor, these two and Kiva's token GET, the benchmark tells what the
# framework costs, what FlaskSimpleAuth adds, and what Kiva's own code adds.
#   /things/<tid>      Flask
#   /fsa/things/<tid>  FlaskSimpleAuth, authz="AUTH", FSA_AUTH="token"
import os, sys

import flask
import FlaskSimpleAuth as fsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from floor_sql import env, get_thing  # noqa: E402

flask_app = flask.Flask("kiva", static_folder=None)


@flask_app.get("/things/<int:tid>")
def flask_thing(tid: int):
    res = get_thing(tid)
    return (res, 200) if res else ({"error": "no such tid"}, 404)


@flask_app.get("/version")  # apache.sh's start check
def version():
    return {"app": "flask floor"}


fsa_app = fsa.Flask("kiva", static_folder=None)  # the realm of Kiva's tokens: its name
# Kiva's tokens carry their lifetime as their issuer (app.conf): a floor without it refuses them (401)
minutes = float(env.get("KIVA_TOKEN_MINUTES", os.environ.get("KIVA_TOKEN_MINUTES", "60")))
fsa_app.config.update(
    FSA_MODE="prod",
    FSA_AUTH=["token"],
    FSA_TOKEN_CARRIER="bearer",
    FSA_TOKEN_SECRET=env["APP_SECRET"],
    FSA_TOKEN_DELAY=minutes,
    FSA_TOKEN_ISSUER=f"{minutes:g}m",
    FSA_ERROR_RESPONSE="json:error",
    FSA_DEFAULT_CONTENT_TYPE="application/json",
    FSA_JSON_STREAMING=False,
    FSA_CACHE="none",
)


@fsa_app.get("/things/<tid>", authz="AUTH")
def fsa_thing(tid: int):
    res = get_thing(tid)
    return (res, 200) if res else ({"error": "no such tid"}, 404)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/fsa/"):
        environ["SCRIPT_NAME"] += "/fsa"
        environ["PATH_INFO"] = path[4:]
        return fsa_app(environ, start_response)
    return flask_app(environ, start_response)
