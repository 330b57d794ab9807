"""Owners and their things: the CRUDS exercise of the course (reads AUTH, writes ADMIN).

The database says no: a taken name (409), an owner that still has things (409),
a negative price (400) are refused by the constraints of create.sql, and
production/errors.py turns the refusal into the answer. A route asks a second question
only to tell which of two answers a refusal means (no such owner, or a conflict).
"""

import functools

import FlaskSimpleAuth as fsa

from database import db
from model import Int64, Limit, Mail, Name, Owner, Pattern, Price, Thing
from production import etag
from production.contract import answers, created
from production.paging import ALL, DEFAULT_LIMIT, FIRST, page

blueprint = fsa.Blueprint("things", __name__)


#
# OWNERS
#


# GET /owners: all owners, or those whose name matches a LIKE pattern, by pages
@blueprint.get("/owners", authz="AUTH")
@answers(200, list[Owner])
def get_owners(filter: Pattern = ALL, after: Int64 = FIRST, limit: Limit = DEFAULT_LIMIT):
    return page(db.get_owner_page, "oid", after, limit, filter=filter)


# POST /owners: add a new owner
@blueprint.post("/owners", authz="ADMIN")
@answers(201, created("oid"), may=[409])
def post_owners(oname: Name, omail: Mail):
    oid = db.add_owner(oname=oname, omail=omail)
    fsa.checkVal(oid, f"owner already exists: {oname}", 409)
    return {"oid": oid}, 201


# GET /owners/<oid>: get this owner
@blueprint.get("/owners/<oid>", authz="AUTH")
@answers(200, Owner)
def get_owners_oid(oid: int):
    res = db.get_owner_oid(oid=oid)
    fsa.checkVal(res, f"no such owner: {oid}", 404)
    return etag.resource(res, "oid")


# PATCH /owners/<oid>: change the name or the mail address of this owner
@blueprint.patch("/owners/<oid>", authz="ADMIN")
@answers(204, may=[409], one_of=["oname", "omail"])
def patch_owners_oid(oid: int, oname: Name | None = None, omail: Mail | None = None):
    fsa.checkVal(oname is not None or omail is not None, "nothing to update: oname or omail", 400)
    return update_owner(oid, oname, omail)


# PUT /owners/<oid>: replace the name and the mail address of this owner
@blueprint.put("/owners/<oid>", authz="ADMIN")
@answers(204, may=[409])
def put_owners_oid(oid: int, oname: Name, omail: Mail):
    return update_owner(oid, oname, omail)


def update_owner(oid: int, oname: str | None, omail: str | None):
    """Update an owner (None: unchanged), 404 if there is no such owner, 412 if changed since."""
    etag.write(db.get_owner_oid, db.upd_owner_oid, f"no such owner: {oid}", {"oid": oid}, oname=oname, omail=omail)
    return "", 204


# DELETE /owners/<oid>: delete this owner, refused (409) while they have things
@blueprint.delete("/owners/<oid>", authz="ADMIN")
@answers(204, may=[409])
def delete_owners_oid(oid: int):
    etag.write(db.get_owner_oid, db.del_owner_oid, f"no such owner: {oid}", {"oid": oid})
    return "", 204


# GET /owners/<oid>/things: the things of this owner, by pages
@blueprint.get("/owners/<oid>/things", authz="AUTH")
@answers(200, list[Thing])
def get_owners_oid_things(oid: int, after: Int64 = FIRST, limit: Limit = DEFAULT_LIMIT):
    fsa.checkVal(db.get_owner_oid(oid=oid), f"no such owner: {oid}", 404)
    things_of = functools.partial(db.get_thing_oid_page, oid=oid, filter=ALL, pmin=None, pmax=None)
    return page(things_of, "tid", after, limit)


#
# THINGS
#


# GET /things: all things, or those matching a LIKE pattern, an owner, a price range, by pages
@blueprint.get("/things", authz="AUTH")
@answers(200, list[Thing])
def get_things(
    filter: Pattern = ALL,
    oid: Int64 | None = None,
    pmin: Price | None = None,
    pmax: Price | None = None,
    after: Int64 = FIRST,
    limit: Limit = DEFAULT_LIMIT,
):
    # an owner's things: a query of its own, on the (oid, tid) index
    query = functools.partial(db.get_thing_oid_page, oid=oid) if oid is not None else db.get_thing_page
    return page(query, "tid", after, limit, link={"oid": oid}, filter=filter, pmin=pmin, pmax=pmax)


# POST /things: add a new thing to an owner
@blueprint.post("/things", authz="ADMIN")
@answers(201, created("tid"), may=[404, 409])
def post_things(tname: Name, oid: Int64, tprice: Price):
    tid = db.add_thing(tname=tname, oid=oid, tprice=tprice)
    if tid is None:  # no such owner, or a thing of that name already
        fsa.checkVal(db.get_owner_oid(oid=oid), f"no such owner: {oid}", 404)
        fsa.err(f"thing already exists: {tname}", 409)
    return {"tid": tid}, 201


# GET /things/<tid>: get this thing
@blueprint.get("/things/<tid>", authz="AUTH")
@answers(200, Thing)
def get_things_tid(tid: int):
    res = db.get_thing_tid(tid=tid)
    fsa.checkVal(res, f"no such thing: {tid}", 404)
    return etag.resource(res, "tid")


# PATCH /things/<tid>: change the name, the owner or the price of this thing
@blueprint.patch("/things/<tid>", authz="ADMIN")
@answers(204, may=[409], one_of=["tname", "oid", "tprice"])
def patch_things_tid(tid: int, tname: Name | None = None, oid: Int64 | None = None, tprice: Price | None = None):
    fsa.checkVal((tname, oid, tprice) != (None, None, None), "nothing to update: tname, oid or tprice", 400)
    return update_thing(tid, tname, oid, tprice)


# PUT /things/<tid>: replace the name, the owner and the price of this thing
@blueprint.put("/things/<tid>", authz="ADMIN")
@answers(204, may=[409])
def put_things_tid(tid: int, tname: Name, oid: Int64, tprice: Price):
    return update_thing(tid, tname, oid, tprice)


def update_thing(tid: int, tname: str | None, oid: int | None, tprice: float | None):
    """Update a thing (None: unchanged), 404 if the thing or its new owner does not exist,
    412 if the thing was changed since the client's If-Match. Not etag.write: a write that
    changed nothing may also mean that the new owner does not exist."""
    version = etag.expected(tid, lambda: db.get_thing_tid(tid=tid))
    if not db.upd_thing_tid(tid=tid, tname=tname, oid=oid, tprice=tprice, version=version):
        found = db.get_thing_tid(tid=tid)
        if found is None or version not in (None, found["version"]):
            etag.refused(found, f"no such thing: {tid}")
        fsa.err(f"no such owner: {oid}", 404)
    return "", 204


# DELETE /things/<tid>: delete this thing
@blueprint.delete("/things/<tid>", authz="ADMIN")
@answers(204)
def delete_things_tid(tid: int):
    etag.write(db.get_thing_tid, db.del_thing_tid, f"no such thing: {tid}", {"tid": tid})
    return "", 204
