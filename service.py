"""Service routes: /version proves the whole chain works, /health is for monitoring."""

import flask
import FlaskSimpleAuth as fsa

from database import DB_FAILURES, db, log

VERSION = "1.0.0"

service = fsa.Blueprint("service", __name__)


# GET /version: app name and version, current user if any, time from the database
@service.get("/version", authz="OPEN")
def get_version():
    app = flask.current_app
    user = app.get_user(required=False)  # type: ignore[attr-defined]
    # schema: the number of the last migration applied to the database (migrate.py)
    return {"app": app.name, "version": VERSION, "schema": db.get_schema_version(), "user": user, "now": db.now()}, 200


# GET /health: 200 when the database answers, 503 when it does not
@service.get("/health", authz="OPEN")
def get_health():
    try:
        db.now()
    except DB_FAILURES as e:  # anodb's hook makes an ErrorResponse of a driver's error
        log.error(f"health check: {e}")
        # {"status", "db"} for monitoring, and "error" like every other error answer
        # (errors.json_errors would otherwise replace the body by a bare {"error"})
        return {"error": "database unreachable", "status": "error", "db": "unreachable"}, 503
    return {"status": "ok", "db": "ok"}, 200
