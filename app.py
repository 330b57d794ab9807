"""Kiva: the reference Flask REST back-end of the course "Programmation back-end".

This file is the table of contents: it creates the application, loads the
configuration named by APP_CONFIG, sets up the audit trail, the database and
authentication, and registers one blueprint per domain.
"""

import logging
import os

import FlaskSimpleAuth as fsa

import audit
import auth
import database
import errors
import security
import throttle
import usercache
from compute import comp
from model import PathId
from owned import owned
from service import service
from stuff import stuff
from things import things
from users import users

logging.basicConfig(level=logging.INFO)

app = fsa.Flask(os.environ.get("APP_NAME", "kiva"))
app.config.from_envvar("APP_CONFIG")
app.url_map.converters["int"] = PathId  # ids beyond 64 bits are a 404, not a database error

# after-request hooks run in the reverse order: the audit line comes last, with the final status
audit.init_app(app)
security.init_app(app)
errors.init_app(app)
usercache.init_app(app)  # invalidates the shared cache after the commits below
throttle.init_app(app)  # counts failed logins once the request's transaction is over
database.init_app(app)
auth.init_app(app)

app.register_blueprint(service)
app.register_blueprint(stuff)
app.register_blueprint(things)
app.register_blueprint(users)
app.register_blueprint(owned)
app.register_blueprint(comp, url_prefix="/cmp")
