"""Kiva: the reference Flask REST back-end of the course "Programmation back-end".

This file is the table of contents: it creates the application, loads the
configuration named by APP_CONFIG, sets up the database and authentication,
and registers one blueprint per domain.
"""

import logging
import os

import FlaskSimpleAuth as fsa

logging.basicConfig(level=logging.INFO)

app = fsa.Flask(os.environ.get("APP_NAME", "kiva"))
app.config.from_envvar("APP_CONFIG")

from model import PathId  # noqa: E402

app.url_map.converters["int"] = PathId

import auth  # noqa: E402  (modules below need the configured app)
import database  # noqa: E402

database.init_app(app)
auth.init_app(app)

from service import service  # noqa: E402
from stuff import stuff  # noqa: E402
from things import things  # noqa: E402

app.register_blueprint(service)
app.register_blueprint(stuff)
app.register_blueprint(things)
