"""Owners and their things: the CRUDS exercise of the course (reads AUTH, writes ADMIN)."""

import FlaskSimpleAuth as fsa

things = fsa.Blueprint("things", __name__)
