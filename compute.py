"""Compute: the blueprint example of the course, mounted at /cmp."""

import FlaskSimpleAuth as fsa

from auth import PASSWORD_MAX_BYTES, hash_password

blueprint = fsa.Blueprint("compute", __name__)


# GET /cmp/add: the sum of two integers
@blueprint.get("/add", authz="AUTH")
def get_add(i: int, j: int):
    return fsa.jsonify(i + j), 200


# GET /cmp/hash: a password hash with the app's own scheme (no quality rule: a demo)
@blueprint.get("/hash", authz="AUTH")
def get_hash(apass: str):
    fsa.checkVal(len(apass.encode()) <= PASSWORD_MAX_BYTES, f"at most {PASSWORD_MAX_BYTES} bytes", 400)
    return fsa.jsonify(hash_password(apass, check=False)), 200
