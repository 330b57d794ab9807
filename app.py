"""Kiva: the reference Flask REST back-end of the course "Programmation back-end".

This file is the table of contents: it creates the application, loads the
configuration named by APP_CONFIG, says what runs before and after every request,
sets up the database and authentication, and registers one blueprint per domain.
"""

import logging
import os

import FlaskSimpleAuth as fsa

import auth
import compute
import database
import owned
import service
import stuff
import things
import users
from model import PathId
from production import audit, declared, docs, errors, hooks, metrics, openapi, ratelimit, security, throttle, usercache

logging.basicConfig(level=logging.INFO)
# the audit line is the access log: the development server's own line (werkzeug's, make
# run) would add the query string, which no log may hold (test_audit_line_fields)
logging.getLogger("werkzeug").setLevel(logging.WARNING)

# no static folder, hence no /static route: every route of the app is one of the blueprints below
app = fsa.Flask(os.environ.get("APP_NAME", "kiva"), static_folder=None)
app.config.from_envvar("APP_CONFIG")
app.url_map.converters["int"] = PathId  # ids beyond 64 bits are a 404, not a database error

# before every request, in this order, before FlaskSimpleAuth's own (authentication…)
BEFORE_REQUEST = [
    audit.start_clock,  # the request's clock, for the audit line and the latency metric
    metrics.start,  # GET /metrics with the scrape token answered here
    errors.unknown_route_first,  # 404, 405: before the checks below
    security.refuse_cross_site_writes,  # 403
    errors.refuse_large_bodies,  # 413: before anything reads the body
    errors.check_json_body,  # 400: malformed, nested too deep, not an object
    auth.one_kind_of_credentials,  # 400: credentials in the URL or of two kinds
]
# after every request, in this order, after FlaskSimpleAuth's own (WWW-Authenticate…)
AFTER_REQUEST = [
    auth.restore_refusal,  # a throttled or busy password check, a refused token: the answer
    database.end_transaction,  # commit below 400, roll back otherwise
    throttle.count,  # failed password checks, in a transaction of their own
    throttle.device_cookie,  # after a successful password check: a device cookie (throttle.py)
    usercache.invalidate,  # the shared cache (if any): what the commits above changed
    errors.json_errors,  # every error a JSON object, no secret in it
    security.security_headers,
    metrics.count,  # the final status, as the audit line has it
    audit.audit_line,  # last: the final status
]
app.before_request(hooks.before_chain(BEFORE_REQUEST))  # one Flask hook each way: cheaper
app.after_request(hooks.after_chain(AFTER_REQUEST))
app.teardown_request(database.release)  # roll back on an exception, return the connection
hooks.sync_once(app)  # Flask checks each hook for a coroutine on every request: once is enough

metrics.init_app(app, database.probe)  # first: the figures the others count (build info, dead processes)
audit.init_app(app)  # logging without thread nor process names
errors.init_app(app)
throttle.init_app(app, database.db)
ratelimit.init_app(app)  # per-client limits of password hashing (429)
usercache.init_app(app)
database.init_app(app)
auth.init_app(app)  # FlaskSimpleAuth's hooks: its request hooks come after the ones above

declared.record(app)  # what each route declares, for the OpenAPI document: before any route
app.register_blueprint(service.blueprint)
app.register_blueprint(stuff.blueprint)
app.register_blueprint(things.blueprint)
app.register_blueprint(users.blueprint)
app.register_blueprint(owned.blueprint)
app.register_blueprint(compute.blueprint, url_prefix="/cmp")
app.register_blueprint(metrics.blueprint)
app.register_blueprint(openapi.blueprint)
app.register_blueprint(docs.blueprint)
openapi.init_app(app)  # GET /openapi.json: generated from the routes above, once they are all there
