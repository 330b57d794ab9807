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
