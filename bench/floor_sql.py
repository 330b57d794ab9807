"""What the floors of the benchmark share: Kiva's own statements, read from queries.sql
by their aiosql name, and one persistent psycopg connection per thread and mode."""

import os
import re
import threading

import psycopg

here = os.path.dirname(os.path.abspath(__file__))
env = dict(line.strip().split("=", 1) for line in open(os.path.join(here, "kiva.env")) if "=" in line)


def query(name: str) -> str:
    """A query of queries.sql by its aiosql name, :param turned into psycopg's %(param)s."""
    text = open(os.path.join(here, "queries.sql")).read()
    found = re.search(rf"-- name: {name}\(.*?\n(.*?)(?:\n\n|\Z)", text, re.S)
    if found is None:
        raise LookupError(f"no query {name} in queries.sql")
    body = found.group(1)
    body = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--"))
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", body)


local = threading.local()


def connection(autocommit: bool) -> psycopg.Connection:
    """This thread's connection: autocommit for reads, one transaction per write."""
    name = "reads" if autocommit else "writes"
    conn = getattr(local, name, None)
    if conn is None:
        conn = psycopg.connect(env["KIVA_DB"], autocommit=autocommit)
        setattr(local, name, conn)
    return conn


GET_THING = query("get_thing_tid")


def get_thing(tid: int) -> dict | None:
    """The floors' read: get_thing_tid in autocommit (one round trip, like Kiva's reads)."""
    row = connection(True).execute(GET_THING, {"tid": tid}).fetchone()
    if row is None:
        return None
    tid, tname, oid, tprice, _version = row
    return {"tid": tid, "tname": tname, "oid": oid, "tprice": float(tprice)}
