"""SQLite and PostgreSQL, made to answer the same JSON.

SQLite has no boolean nor time stamp types: the declared column types BOOLEAN and
TIMESTAMP are converted back to Python values (sqlite3's PARSE_DECLTYPES), as
psycopg does natively; its rows become dicts with lower-case keys, like psycopg's
dict_row. Both engines' datetimes and PostgreSQL's NUMERIC become the same JSON.
"""

import datetime
import decimal
import sqlite3

UTC = datetime.UTC

sqlite3.register_converter("BOOLEAN", lambda b: b != b"0")
sqlite3.register_converter("TIMESTAMP", lambda b: datetime.datetime.fromisoformat(b.decode()).replace(tzinfo=UTC))


def sqlite_dict_row(cursor: sqlite3.Cursor, row: tuple) -> dict:
    """SQLite rows as dicts with lower-case keys, like psycopg's dict_row."""
    return {desc[0].lower(): value for desc, value in zip(cursor.description, row, strict=True)}


def iso8601(when: datetime.datetime) -> str:
    """The same time stamp text on both engines: UTC, to the second."""
    return when.astimezone(UTC).isoformat(timespec="seconds")


def number(value: decimal.Decimal) -> int | float:
    """PostgreSQL NUMERIC as a JSON number: 12.50 → 12.5, 40.00 → 40."""
    return int(value) if value == value.to_integral_value() else float(value)


def init_app(app):
    app.add_json_converter(datetime.datetime, iso8601)
    app.add_json_converter(decimal.Decimal, number)
