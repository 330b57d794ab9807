"""Kiva types: the parameter types and pydantic models that routes declare.

FlaskSimpleAuth casts each request parameter to its declared type; a value the
type refuses (ValueError) is a 400 with the reason, before the route runs.
"""

import typing

import pydantic
import werkzeug.routing

NAME_MAX = 200
LIMIT_MAX = 1000


class Name(str):
    """A name: a non-empty string of at most 200 characters, no control character."""

    def __new__(cls, value):
        if not isinstance(value, str):
            raise ValueError("a name must be a string")
        if not 1 <= len(value) <= NAME_MAX:
            raise ValueError(f"a name must have 1 to {NAME_MAX} characters")
        if not value.isprintable():
            raise ValueError("a name must not contain control characters")
        return super().__new__(cls, value)


class Pattern(Name):
    """A SQL LIKE pattern ("C%"): the same rules as a name."""


class Int64(int):
    """An integer parameter that fits the database's 64-bit integers."""

    def __new__(cls, value):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError("expecting an integer")
        value = int(value)
        if not -(2**63) <= value < 2**63:
            raise ValueError("integer out of range")
        return super().__new__(cls, value)


class Limit(int):
    """A page size: an integer from 1 to 1000."""

    def __new__(cls, value):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError("a limit must be an integer")
        value = int(value)
        if not 1 <= value <= LIMIT_MAX:
            raise ValueError(f"a limit must be between 1 and {LIMIT_MAX}")
        return super().__new__(cls, value)


class PathId(werkzeug.routing.IntegerConverter):
    """Integer path segments that fit a 64-bit database integer: larger ones are a 404."""

    def __init__(self, url_map, fixed_digits=0, min=None, max=2**63 - 1, signed=False):
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


Login = typing.Annotated[
    str, pydantic.StringConstraints(min_length=1, max_length=NAME_MAX, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class User(pydantic.BaseModel):
    """A user as /users receives it: the password is clear text here, hashed before storage."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    login: Login
    password: str
    isAdmin: bool = False
    uid: int | None = None  # unknown on POST, must match the path on PUT
