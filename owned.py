"""Owned objects: object-level permissions (True → 200, False → 403, None → 404)."""

import functools

import FlaskSimpleAuth as fsa

from database import db
from model import Int64, Limit, Name, Owned
from production import etag
from production.contract import answers, created
from production.paging import DEFAULT_LIMIT, FIRST, page

blueprint = fsa.Blueprint("owned", __name__)


# GET /owned, GET /object: every object, for administrators
@blueprint.get("/owned", authz="ADMIN")
@blueprint.get("/object", authz="ADMIN", endpoint="get_object")
@answers(200, list[Owned])
def get_owned(after: Int64 = FIRST, limit: Limit = DEFAULT_LIMIT):
    return page(db.get_owned_page, "oid", after, limit)


# GET /owned/<uid>: the objects of this user, for them or an administrator
@blueprint.get("/owned/<uid>", authz=("user", "uid"))
@answers(200, list[Owned])
def get_owned_uid(uid: int, after: Int64 = FIRST, limit: Limit = DEFAULT_LIMIT):
    return page(functools.partial(db.get_owned_uid_page, uid=uid), "oid", after, limit)


# POST /object: a new object owned by the caller
@blueprint.post("/object", authz="AUTH")
@answers(201, created("oid"), may=[409])
def post_object(user: fsa.CurrentUser, object: Name):
    oid = db.add_object(object=object, login=user)
    fsa.checkVal(oid, f"you own this object already: {object}", 409)
    return {"oid": oid}, 201


# GET /object/<oid>: an object, for its owner
@blueprint.get("/object/<oid>", authz=("owned", "oid"))
@answers(200, Owned)
def get_object_oid(oid: int):
    res = db.get_object_oid(oid=oid)
    fsa.checkVal(res, f"no such object: {oid}", 404)
    return etag.resource(res, "oid")


# PATCH /object/<oid>: rename an object, for its owner
@blueprint.patch("/object/<oid>", authz=("owned", "oid"))
@answers(204, may=[409])
def patch_object_oid(oid: int, object: Name):
    etag.write(db.get_object_oid, db.upd_object_oid, f"no such object: {oid}", {"oid": oid}, object=object)
    return "", 204


# DELETE /object/<oid>: delete an object, for its owner
@blueprint.delete("/object/<oid>", authz=("owned", "oid"))
@answers(204)
def delete_object_oid(oid: int):
    etag.write(db.get_object_oid, db.del_object_oid, f"no such object: {oid}", {"oid": oid})
    return "", 204
