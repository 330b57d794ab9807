"""Stuff: the CRUDS demo of the course, open on purpose."""

import FlaskSimpleAuth as fsa

from database import db
from model import Int64, Limit, Name, Pattern, Stuff
from production import etag
from production.contract import answers, created
from production.paging import ALL, DEFAULT_LIMIT, FIRST, page

blueprint = fsa.Blueprint("stuff", __name__)


# GET /stuff: all stuff, or those matching a LIKE pattern, by pages
@blueprint.get("/stuff", authz="OPEN")
@answers(200, list[Stuff])
def get_stuff(filter: Pattern = ALL, after: Int64 = FIRST, limit: Limit = DEFAULT_LIMIT):
    return page(db.get_stuff_page, "sid", after, limit, filter=filter)


# POST /stuff: add new stuff
@blueprint.post("/stuff", authz="OPEN")
@answers(201, created("sid"), may=[409])
def post_stuff(stuff: Name):
    sid = db.add_stuff(stuff=stuff)
    fsa.checkVal(sid, f"stuff already exists: {stuff}", 409)
    return {"sid": sid}, 201


# GET /stuff/<sid>: get this stuff
@blueprint.get("/stuff/<sid>", authz="OPEN")
@answers(200, Stuff)
def get_stuff_sid(sid: int):
    res = db.get_stuff_sid(sid=sid)
    fsa.checkVal(res, f"no such sid: {sid}", 404)
    return etag.resource(res, "sid")


# PUT /stuff/<sid>, PATCH /stuff/<sid>: rename this stuff
@blueprint.route("/stuff/<sid>", methods=["PUT", "PATCH"], authz="OPEN")
@answers(204, may=[409])
def put_stuff_sid(sid: int, stuff: Name):
    etag.write(db.get_stuff_sid, db.upd_stuff_sid, f"no such sid: {sid}", {"sid": sid}, stuff=stuff)
    return "", 204


# DELETE /stuff/<sid>: delete this stuff
@blueprint.delete("/stuff/<sid>", authz="OPEN")
@answers(204)
def delete_stuff_sid(sid: int):
    etag.write(db.get_stuff_sid, db.del_stuff_sid, f"no such sid: {sid}", {"sid": sid})
    return "", 204
