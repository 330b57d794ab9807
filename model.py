"""Kiva types: the parameter types and pydantic models that routes declare.

FlaskSimpleAuth casts each request parameter to its declared type; a value the
type refuses (ValueError) is a 400 with the reason, before the route runs.
"""

import datetime
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


# what no text of Kiva may hold, as a JSON-schema (ECMA 262) character class that Python's
# re reads the same: control characters (Unicode category Cc). The server checks the very
# pattern the document gives: a name valid by /openapi.json is never refused.
CONTROL = "\\x00-\\x1f\\x7f-\\x9f"
NAME_PATTERN = f"^[^{CONTROL}]*$"
# nor halves of surrogate pairs (a JSON "\\ud800" alone is no character: no database stores
# it); not in the pattern: test generators (schemathesis) drop a pattern naming them
SURROGATE = re.compile("[\ud800-\udfff]")


def matches(pattern: str, value: str) -> bool:
    """Whether the value matches a JSON-schema pattern "^…$" as ECMA 262 reads it (Python's
    "$" also matches before a final new line, hence fullmatch without the anchors), and is
    text a database can store (no lone surrogate)."""
    return re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value) is not None and not SURROGATE.search(value)


class Name(str):
    """A name: a non-empty string of at most 200 characters, no control character."""

    json_schema = {
        "type": "string",
        "minLength": 1,
        "maxLength": NAME_MAX,
        "pattern": NAME_PATTERN,
        "description": "no control character (nor lone surrogate)",
    }

    def __new__(cls, value):
        if not isinstance(value, str):
            raise ValueError("a name must be a string")
        if not 1 <= len(value) <= NAME_MAX:
            raise ValueError(f"a name must have 1 to {NAME_MAX} characters")
        if not matches(NAME_PATTERN, value):
            raise ValueError("a name must not contain control characters")
        return super().__new__(cls, value)


# a LIKE pattern: a name whose every backslash escapes the character after it (queries.sql's
# LIKE … ESCAPE '\', on both engines): one at the end escapes nothing, which PostgreSQL
# refuses and SQLite read as no match
LIKE_PATTERN = f"^(?:[^{CONTROL}\\\\]|\\\\[^{CONTROL}])*$"


class Pattern(Name):
    """A SQL LIKE pattern ("C%", "100\\%" for a literal %): the rules of a name, and no
    backslash at its end that would escape nothing."""

    json_schema = {
        **Name.json_schema,
        "pattern": LIKE_PATTERN,
        "description": 'a SQL LIKE pattern ("C%"; a backslash escapes the next character), no control character',
    }

    def __new__(cls, value):
        name = super().__new__(cls, value)
        if not matches(LIKE_PATTERN, name):
            raise ValueError("a LIKE pattern must not end with a backslash that escapes nothing")
        return name


# the longest password, in characters (as JSON Schema's maxLength counts them): auth.py
# hashes one of more than bcrypt's 72 bytes through SHA-256, never cut
PASSWORD_MAX = 72
# the shortest new password (app.conf's FSA_PASSWORD_LENGTH says the same: tests/test_openapi.py)
PASSWORD_MIN = 6


class Secret(str):
    """A password to hash or to check: at most 72 characters.

    Its refusals are ErrorResponses, like User's: FlaskSimpleAuth's cast error would say
    "cast error on <the password>" (errors.py would hide it, in a message made unreadable).
    """

    json_schema = {
        "type": "string",
        "format": "password",
        "maxLength": PASSWORD_MAX,
        "description": f"at most {PASSWORD_MAX} characters, all of them count",
    }

    def __new__(cls, value):
        if not isinstance(value, str):
            raise fsa.ErrorResponse("a password must be a string", 400)
        if len(value) > PASSWORD_MAX:
            raise fsa.ErrorResponse(f"password longer than {PASSWORD_MAX} characters", 400)
        return super().__new__(cls, value)


class Password(Secret):
    """A new password: 6 characters or more, at most 72."""

    json_schema = {**Secret.json_schema, "minLength": PASSWORD_MIN}

    def __new__(cls, value):
        value = super().__new__(cls, value)
        if len(value) < PASSWORD_MIN:  # FlaskSimpleAuth's own words for its quality rule
            raise fsa.ErrorResponse(f"password is too short, must be at least {PASSWORD_MIN}", 400)
        return value


class Mail(str):
    """A mail address, checked simply: printable, no space, at most 200 characters,
    one "@" between a non-empty local part and a domain with a dot inside ("a@b.c").

    Whether the address exists is for a confirmation mail to tell, not for a pattern.
    """

    # a domain with a dot between two other characters: "a@b.c", not "a@b." nor "a@.b";
    # no space (" ", and the control characters: tab, new line…). The server checks this
    # very pattern ([…] and not \\s, whose Unicode spaces differ between ECMA 262 and Python).
    pattern = f"^[^@ {CONTROL}]+@[^@ {CONTROL}]*[^@. {CONTROL}][.]+[^@. {CONTROL}][^@ {CONTROL}]*$"
    json_schema = {
        "type": "string",
        "minLength": 1,
        "maxLength": NAME_MAX,
        "pattern": pattern,
        "examples": ["name@example.org"],
    }

    def __new__(cls, value):
        if not isinstance(value, str):
            raise ValueError("a mail address must be a string")
        if not 1 <= len(value) <= NAME_MAX:
            raise ValueError(f"a mail address must have 1 to {NAME_MAX} characters")
        if not matches(cls.pattern, value):
            raise ValueError('a mail address looks like "name@example.org": no space nor control character')
        return super().__new__(cls, value)


class Price(float):
    """A price: a number from 0 to 10^10 excluded, with at most 2 decimals (cents).

    JSON numbers and decimal strings ("12.5", as form parameters come) are
    accepted; booleans, NaN, infinities and exponents ("1e3") are not. A float
    holds such prices faithfully both ways: 12.5 stays 12.5 on both engines.
    """

    json_schema = {"type": "number", "minimum": 0, "exclusiveMaximum": int(PRICE_MAX), "multipleOf": float(CENT)}

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

    Stricter than int(): no "1_000", no " 5 ", no other scripts' digits ("١" is 1). A JSON
    number without a fraction (12.0) is an integer, as JSON Schema says.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("expecting an integer")
    if isinstance(value, str) and not re.fullmatch(r"[-+]?[0-9]{1,40}", value):
        raise ValueError("expecting an integer")
    return int(value)


class Int64(int):
    """An integer parameter that fits the database's 64-bit integers."""

    json_schema = {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1}

    def __new__(cls, value):
        value = integer(value)
        if not -(2**63) <= value < 2**63:
            raise ValueError("integer out of range")
        return super().__new__(cls, value)


class Limit(int):
    """A page size: an integer from 1 to 1000."""

    json_schema = {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX}

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
    json_schema = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}


# a login in a pydantic model: the very rules of Name, the type /register uses
Login = typing.Annotated[str, pydantic.AfterValidator(Name), pydantic.WithJsonSchema(Name.json_schema)]


class User(pydantic.BaseModel):
    """A user as /users receives it: the password is clear text here, hashed before storage."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    login: Login
    password: typing.Annotated[str, pydantic.AfterValidator(Password), pydantic.WithJsonSchema(Password.json_schema)]
    isAdmin: bool = False
    uid: int | None = None  # unknown on POST; on PUT, the path's if given

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


#
# what the routes answer: the shapes of their bodies (production/contract.py's @answers)
#

Id = typing.Annotated[int, pydantic.WithJsonSchema({"type": "integer", "format": "int64"})]
NameText = typing.Annotated[str, pydantic.WithJsonSchema(Name.json_schema)]
PriceValue = typing.Annotated[float, pydantic.WithJsonSchema(Price.json_schema)]


class Stuff(pydantic.BaseModel):
    """A stuff."""

    sid: Id
    stuff: NameText


class Owner(pydantic.BaseModel):
    """An owner of things."""

    oid: Id
    oname: NameText
    omail: str


class Thing(pydantic.BaseModel):
    """A thing, with its owner."""

    tid: Id
    tname: NameText
    oid: Id
    tprice: PriceValue


class UserInfo(pydantic.BaseModel):
    """A user as Kiva shows it: never the password hash."""

    uid: Id
    login: NameText
    isadmin: bool
    created: datetime.datetime


class Owned(pydantic.BaseModel):
    """An object and its owner's uid."""

    oid: Id
    object: NameText
    owner: Id


class Version(pydantic.BaseModel):
    """GET /version: the whole chain works, up to the database's clock."""

    app: str
    version: str
    schema_: int | None = pydantic.Field(alias="schema")  # the database's schema version
    user: str | None
    now: datetime.datetime


class Health(pydantic.BaseModel):
    """GET /health: for load balancers and monitoring."""

    status: typing.Literal["ok", "error"]
    db: typing.Literal["ok", "unreachable"]
