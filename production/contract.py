"""Each route's answer, declared next to the route: its success status and the shape of
its body, like FastAPI's `response_model` or APIFairy's `@response`.

    # GET /stuff/<sid>: get this stuff
    @blueprint.get("/stuff/<sid>", authz="OPEN")
    @answers(200, Stuff)
    def get_stuff_sid(sid: int): …

The OpenAPI document (openapi.py) reads it; what the route declares to FlaskSimpleAuth
(authz, authn, typed parameters) gives the rest: the errors each declaration allows.
"""

import dataclasses
import typing

ANSWER = "kiva_answer"  # the view function's attribute holding its Answer


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a route answers when it succeeds, and what only its SQL can add."""

    status: int
    # the body's shape: a pydantic model, list[model], str or int, a JSON schema; None: no body
    body: typing.Any = None
    may: frozenset[int] = frozenset()  # a missing reference (404), a conflict (409)…
    media: tuple[str, ...] = ("application/json",)
    database: bool = True  # False: the route never uses the database (no 503)
    outage: typing.Any = None  # the 503's body when it is not the usual {"error": …}
    one_of: tuple[str, ...] = ()  # parameters of which at least one must come (PATCH)


def answers(
    status: int,
    body: typing.Any = None,
    *,
    may: typing.Iterable[int] = (),
    media: typing.Sequence[str] = ("application/json",),
    database: bool = True,
    outage: typing.Any = None,
    one_of: typing.Sequence[str] = (),
):
    """Declare the route's answer: under its route decorator, above the function."""
    answer = Answer(status, body, frozenset(may), tuple(media), database, outage, tuple(one_of))

    def declare(view):
        setattr(view, ANSWER, answer)
        return view

    return declare


def answer_of(view: typing.Callable) -> Answer | None:
    """The answer a route declared, None if it declared none."""
    return getattr(view, ANSWER, None)


def created(key: str) -> dict:
    """The body of a 201: the new row's id, {"sid": 3}."""
    return {"type": "object", "required": [key], "properties": {key: {"type": "integer", "format": "int64"}}}
