"""Keyset paging for list routes: `after` (ids greater than) and `limit`.

A list query fetches one row more than the page: when it comes, the response
carries `Link: <…?after=N&limit=L>; rel="next"` (filters kept), so that a client
never mistakes a page for the whole list. A route hands `page` its list query
(path parameters bound with functools.partial) and its filters.
"""

from collections.abc import Callable, Iterable
from urllib.parse import urlencode

import flask
import FlaskSimpleAuth as fsa

from model import Int64, Limit, Pattern

# parameter defaults: every row, from the first id, 100 at a time
ALL = Pattern("%")
FIRST = Int64(0)
DEFAULT_LIMIT = Limit(100)


def page(
    query: Callable[..., Iterable[dict]], key: str, after: int, limit: int, link: dict | None = None, **filters
) -> tuple[flask.Response, int]:
    """The JSON response for the page of `query`'s rows whose `key` is above `after`.

    The filters go to the query and into the next page's link, with `link`'s extras.
    """
    rows = list(query(after=after, lim=limit + 1, **filters))
    if len(rows) <= limit:
        return fsa.jsonify(rows), 200
    rows = rows[:limit]
    params = {k: v for k, v in {**filters, **(link or {})}.items() if v is not None}
    params.update(after=rows[-1][key], limit=limit)
    res = fsa.jsonify(rows)
    url = flask.request.script_root + flask.request.path + "?" + urlencode(params)
    res.headers["Link"] = f'<{url}>; rel="next"'
    return res, 200
