"""Keyset paging for list routes: `after` (ids greater than) and `limit`.

A list query fetches one row more than the page: when it comes, the response
carries `Link: <…?after=N&limit=L>; rel="next"` (filters kept), so that a client
never mistakes a page for the whole list.
"""

from urllib.parse import urlencode

import flask
import FlaskSimpleAuth as fsa

from model import Int64, Limit, Pattern

# parameter defaults: every row, from the first id, 100 at a time
ALL = Pattern("%")
FIRST = Int64(0)
DEFAULT_LIMIT = Limit(100)


def page(rows: list[dict], key: str, limit: int, **filters) -> tuple[flask.Response, int]:
    """The JSON response for one page of `limit + 1` fetched rows, ordered by `key`."""
    if len(rows) <= limit:
        return fsa.jsonify(rows), 200
    rows = rows[:limit]
    query = {k: v for k, v in filters.items() if v is not None}
    query.update(after=rows[-1][key], limit=limit)
    res = fsa.jsonify(rows)
    url = flask.request.script_root + flask.request.path + "?" + urlencode(query)
    res.headers["Link"] = f'<{url}>; rel="next"'
    return res, 200
