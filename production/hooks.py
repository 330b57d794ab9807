"""Kiva's request hooks as one Flask hook each way: the same order, less dispatch.

Flask wraps every registered hook (`ensure_sync`, an `inspect` check for coroutines)
on every request: with ten hooks that was about 5 % of a token GET's Python CPU
(bench/RESULTS.md). One `before` and one `after` hook that run the lists in order
behave the same: the first `before` hook that returns a response stops the chain,
each `after` hook gets the previous one's response.
"""

import typing
from collections.abc import Sequence

import flask

Before = typing.Callable[[], flask.typing.ResponseReturnValue | None]
After = typing.Callable[[flask.Response], flask.Response]


def before_chain(hooks: Sequence[Before]) -> Before:
    """One before_request hook running `hooks` in order, stopping at the first answer."""

    def before_request():
        for hook in hooks:
            res = hook()
            if res is not None:
                return res
        return None

    return before_request


def after_chain(hooks: Sequence[After]) -> After:
    """One after_request hook running `hooks` in order on the response."""

    def after_request(res: flask.Response) -> flask.Response:
        for hook in hooks:
            res = hook(res)
        return res

    return after_request


def sync_once(app: flask.Flask):
    """Flask's ensure_sync, remembered per function.

    Flask passes every hook and view through `app.ensure_sync` on every request (an
    `inspect.iscoroutinefunction` test each): with FlaskSimpleAuth's hooks and Kiva's,
    11 per request, 6 % of an open GET's Python CPU (cProfile, bench/RESULTS.md). A
    function's answer never changes: it is asked once, then looked up. Flask documents
    ensure_sync as the method to override; the functions are the app's hooks, views
    and handlers, a bounded set.
    """
    original = app.ensure_sync
    known: dict[typing.Callable, typing.Callable] = {}

    def ensure_sync(func: typing.Callable) -> typing.Callable:
        try:
            return known[func]
        except KeyError:
            return known.setdefault(func, original(func))
        except TypeError:  # an unhashable callable: asked every time
            return original(func)

    app.ensure_sync = ensure_sync  # type: ignore[method-assign]
