"""Kiva types: the parameter types and pydantic models that routes declare.

FlaskSimpleAuth casts each request parameter to its declared type; a value the
type refuses (ValueError) is a 400 with the reason, before the route runs.
"""

import decimal
import math
import re
import typing

import FlaskSimpleAuth as fsa
import pydantic
import werkzeug.routing

NAME_MAX = 200
LIMIT_MAX = 1000
# prices are NUMERIC(12, 2) on PostgreSQL: below 10^10, in cents
PRICE_MAX = decimal.Decimal(10) ** 10
CENT = decimal.Decimal("0.01")


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


class Mail(str):
    """A mail address, checked simply: printable, no space, at most 200 characters,
    one "@" between a non-empty local part and a domain with a dot inside ("a@b.c").

    Whether the address exists is for a confirmation mail to tell, not for a pattern.
    """

    def __new__(cls, value):
        if not isinstance(value, str):
            raise ValueError("a mail address must be a string")
        if not 1 <= len(value) <= NAME_MAX:
            raise ValueError(f"a mail address must have 1 to {NAME_MAX} characters")
        if not value.isprintable() or any(c.isspace() for c in value):
            raise ValueError("a mail address must not contain spaces or control characters")
        local, at, domain = value.partition("@")
        if not at or not local or "@" in domain or "." not in domain.strip("."):
            raise ValueError('a mail address looks like "name@example.org"')
        return super().__new__(cls, value)


class Price(float):
    """A price: a number from 0 to 10^10 excluded, with at most 2 decimals (cents).

    JSON numbers and decimal strings ("12.5", as form parameters come) are
    accepted; booleans, NaN, infinities and exponents ("1e3") are not. A float
    holds such prices faithfully both ways: 12.5 stays 12.5 on both engines.
    """

    def __new__(cls, value):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError("a price must be a number")
        if isinstance(value, str):
            if not re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", value):
                raise ValueError('a price must be a decimal number such as "12.5"')
            price = decimal.Decimal(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("a price must be a finite number")
            price = decimal.Decimal(repr(value))  # the shortest text: 0.1, not 0.1000000000000000055…
        else:
            price = decimal.Decimal(value)
        if price < 0:
            raise ValueError("a price must not be negative")
        if price >= PRICE_MAX:
            raise ValueError(f"a price must be below {PRICE_MAX}")
        if price != price.quantize(CENT):
            raise ValueError("a price must not have more than 2 decimals")
        return super().__new__(cls, float(price) + 0.0)  # + 0.0: no "-0.0"


def integer(value) -> int:
    """A JSON integer, or a string of ASCII digits with an optional sign.

    Stricter than int(): no "1_000", no " 5 ", no other scripts' digits ("١" is 1).
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("expecting an integer")
    if isinstance(value, str) and not re.fullmatch(r"[-+]?[0-9]{1,40}", value):
        raise ValueError("expecting an integer")
    return int(value)


class Int64(int):
    """An integer parameter that fits the database's 64-bit integers."""

    def __new__(cls, value):
        value = integer(value)
        if not -(2**63) <= value < 2**63:
            raise ValueError("integer out of range")
        return super().__new__(cls, value)


class Limit(int):
    """A page size: an integer from 1 to 1000."""

    def __new__(cls, value):
        value = integer(value)
        if not 1 <= value <= LIMIT_MAX:
            raise ValueError(f"a limit must be between 1 and {LIMIT_MAX}")
        return super().__new__(cls, value)


def up_to(limit: int) -> str:
    """A regular expression matching the decimal numbers from 0 to limit, no more.

    [0-9], not \\d: \\d also matches other scripts' digits, which int() accepts ("١" is 1).
    """
    digits = str(limit)
    shorter = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    same_length = [
        digits[:i] + (f"[0-{int(d) - 1}]" if d != "1" else "0") + f"[0-9]{{{len(digits) - i - 1}}}"
        for i, d in enumerate(digits)
        if d != "0"
    ]
    return "|".join([*shorter, *same_length, digits])


class PathId(werkzeug.routing.IntegerConverter):
    """Integer path segments up to 2⁶³ - 1, the largest database integer.

    Larger ones match no route at all, hence a 404. A bound checked after the match
    (max=…) would make Werkzeug answer 405 for the other methods of the same path.
    """

    regex = f"(?:{up_to(2**63 - 1)})"


# a login in a pydantic model: the very rules of Name, the type /register uses
Login = typing.Annotated[str, pydantic.AfterValidator(Name)]


class User(pydantic.BaseModel):
    """A user as /users receives it: the password is clear text here, hashed before storage."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    login: Login
    password: str
    isAdmin: bool = False
    uid: int | None = None  # unknown on POST, must match the path on PUT

    def __init__(self, **data):
        """Refuse an invalid user with a 400 that names the faults, never the values.

        FlaskSimpleAuth builds the model with User(**value) and would answer
        "cast error on <value>": the clear password with it. An ErrorResponse is
        not an Exception: it passes FlaskSimpleAuth's handler as it is.
        """
        try:
            super().__init__(**data)
        except pydantic.ValidationError as e:
            faults = "; ".join(
                f"{'.'.join(map(str, err['loc'])) or 'user'}: {err['msg']}"
                for err in e.errors(include_input=False, include_url=False)
            )
            raise fsa.ErrorResponse(f"invalid user: {faults}", 400) from None
