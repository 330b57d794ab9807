"""Compute: the blueprint example of the course, mounted at /cmp."""

import FlaskSimpleAuth as fsa

from auth import hash_password
from model import Secret
from production.contract import answers

blueprint = fsa.Blueprint("compute", __name__)


# GET /cmp/add: the sum of two integers
@blueprint.get("/add", authz="AUTH")
@answers(200, int)
def get_add(i: int, j: int):
    return fsa.jsonify(i + j), 200


# GET /cmp/hash: a password hash with the app's own scheme (no quality rule but 72 characters at most: a demo)
@blueprint.get("/hash", authz="AUTH")
@answers(200, {"type": "string", "description": "a password hash"})
def get_hash(apass: Secret):
    return fsa.jsonify(hash_password(apass, check=False)), 200
