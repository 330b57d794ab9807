"""Service routes: /version proves the whole chain works, /health is for monitoring."""

import logging
import typing

import flask
import FlaskSimpleAuth as fsa

from database import db
from model import Health, Version
from production import VERSION
from production.contract import answers
from production.errors import DB_FAILURES

log = logging.getLogger("kiva.service")

# the running app as FlaskSimpleAuth's Flask: its methods (current_user…) typed
current_app = typing.cast(fsa.Flask, flask.current_app)

blueprint = fsa.Blueprint("service", __name__)


# GET /version: app name and version, current user if any, time from the database
@blueprint.get("/version", authz="OPEN")
@answers(200, Version)
def get_version():
    user = current_app.get_user(required=False)
    # schema: the number of the last migration applied to the database (production/migrate.py)
    schema = db.get_schema_version()
    return {"app": current_app.name, "version": VERSION, "schema": schema, "user": user, "now": db.now()}, 200


# GET /health: 200 when the database answers, 503 when it does not
@blueprint.get("/health", authz="OPEN")
@answers(200, Health, outage=Health)
def get_health():
    try:
        db.now()
    except DB_FAILURES as e:  # anodb's hook makes an ErrorResponse of a driver's error
        log.error(f"health check: {e}")
        # {"status", "db"} for monitoring, and "error" like every other error answer
        # (errors.json_errors would otherwise replace the body by a bare {"error"})
        return {"error": "database unreachable", "status": "error", "db": "unreachable"}, 503
    return {"status": "ok", "db": "ok"}, 200
