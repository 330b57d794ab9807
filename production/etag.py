"""ETag and If-Match on single resources: optimistic concurrency (API.md, Conventions).

Every single resource has a row version (migration 0002) that each UPDATE of
queries.sql increments. Its ETag is "<id>-<version>": a GET answers 304 when the
client's If-None-Match holds it already; a PUT, PATCH or DELETE with an If-Match
gives the version it expects to the query, whose WHERE clause checks it, so that of
two clients writing with the same ETag exactly one wins, whatever the timing (the
database serialises the two UPDATEs, the second finds another version and changes
nothing): the other is answered 412. Without these headers nothing changes.
"""

import re
from collections.abc import Callable

import flask
import FlaskSimpleAuth as fsa

from production import context

# a version in an If-Match tag: ASCII digits only ("²".isdigit() is True, and int() refuses
# more than 4,300 digits), at most 18 of them; beyond the column's 32 bits no row has it
VERSION = re.compile(r"[0-9]{1,18}", re.ASCII)
MAX_VERSION = 2**31 - 1

# If-Match's syntax (RFC 9110): "*" or a list of entity tags, strong or weak, whose
# characters are etagc (visible ASCII but '"', and obs-text); anything else is a 400.
# One pattern, valid in Python and in ECMA-262: /openapi.json documents this very one.
ENTITY_TAG = '(W/)?"[!#-~\\u0080-\\u00ff]*"'
# An empty If-Match is an empty list (RFC 9110's #rule): it names no version, hence 412.
IF_MATCH = f"^(\\*|{ENTITY_TAG}([ \\t]*,[ \\t]*{ENTITY_TAG})*)?$"
IF_MATCH_SYNTAX = re.compile(IF_MATCH)

# never a row's version: a write expecting it changes nothing, and is answered 412
STALE = -1

# the request headers Werkzeug's make_conditional answers (304, 412, 206): without any
# of them it would only add a Date header (the server adds one), for 6 % of a GET's instructions
CONDITIONAL = (
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_RANGE",
)


def tag(rid: int, version: int) -> str:
    """The entity tag of a row (unquoted): its id and its version."""
    return f"{rid}-{version}"


def resource(row: dict, key: str) -> flask.Response:
    """The 200 answer of a single resource with its ETag, or a 304 if the client has it."""
    version = row.pop("version")
    res = fsa.jsonify(row)
    res.set_etag(tag(row[key], version))
    req = context.request()
    if any(header in req.environ for header in CONDITIONAL):
        # Werkzeug compares If-None-Match (weakly, `*` included) and empties the body
        res.make_conditional(req)
    return res


def expected(rid: int, current: Callable[[], dict | None]) -> int | None:
    """The version a write must find, from If-Match: None when any version will do.

    If-Match uses the strong comparison: weak tags never match. A list naming several
    versions of this row matches the current one if it is among them. A tag whose
    version is not a number a row can have is stale (412), never an error.
    """
    req = context.request()
    if "HTTP_IF_MATCH" not in req.environ:
        return None
    if not IF_MATCH_SYNTAX.fullmatch(req.environ["HTTP_IF_MATCH"]):
        fsa.err('malformed If-Match: "*" or a list of entity tags such as "12-3"', 400)
    if req.if_match.star_tag:
        return None
    versions = set()
    for strong in req.if_match.as_set():
        if not strong:  # an empty tag (If-Match: ""), which Werkzeug gives as None
            continue
        rid_text, _, version = strong.partition("-")
        if rid_text == str(rid) and VERSION.fullmatch(version) and int(version) <= MAX_VERSION:
            versions.add(int(version))
    if len(versions) > 1:
        row = current()
        versions &= {row["version"]} if row else set()
    return versions.pop() if len(versions) == 1 else STALE


def write(get: Callable[..., dict | None], change: Callable[..., object], missing: str, key: dict, **values):
    """The write of a single resource under If-Match, in one place: `change(**key, **values,
    version=…)` writes the row only at the version If-Match names (any version without it)
    and says whether a row changed; if none did, `get(**key)` tells 404 (`missing`: the row
    is gone) from 412 (changed since). E.g. etag.write(db.get_stuff_sid, db.upd_stuff_sid,
    "no such sid: 1", {"sid": 1}, stuff="Chair")."""
    ((_, rid),) = key.items()
    version = expected(rid, lambda: get(**key))
    if not change(**key, **values, version=version):
        refused(get(**key), missing)


def refused(found: dict | None, missing: str):
    """After a write that changed nothing: 404 if the row is gone, else 412 (If-Match)."""
    fsa.checkVal(found, missing, 404)
    fsa.err("precondition failed: the resource was changed since (If-Match), get it again", 412)
