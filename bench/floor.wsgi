# The raw WSGI floors: no framework, persistent psycopg connections per thread, the
# same statements as Kiva's (read from queries.sql by name), JSON out.
#   GET /things/<tid>: get_thing_tid, in autocommit (one round trip, like Kiva's reads)
#   POST /stuff (form stuff=…) and DELETE /stuff/<sid>: add_stuff and del_stuff_sid, each
#   in its own transaction with its COMMIT (psycopg's implicit BEGIN), like Kiva's writes
import json, os, re, threading
from urllib.parse import parse_qs
import psycopg

here = os.path.dirname(os.path.abspath(__file__))
env = dict(line.strip().split("=", 1) for line in open(os.path.join(here, "kiva.env")) if "=" in line)


def query(name):
    """A query of queries.sql by its aiosql name, :param turned into psycopg's %(param)s."""
    text = open(os.path.join(here, "queries.sql")).read()
    body = re.search(rf"-- name: {name}\(.*?\n(.*?)(?:\n\n|\Z)", text, re.S).group(1)
    body = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--"))
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", body)


GET_THING, ADD_STUFF, DEL_STUFF = query("get_thing_tid"), query("add_stuff"), query("del_stuff_sid")
local = threading.local()


def connection(autocommit):
    name = "reads" if autocommit else "writes"
    conn = getattr(local, name, None)
    if conn is None:
        conn = psycopg.connect(env["KIVA_DB"], autocommit=autocommit)
        setattr(local, name, conn)
    return conn


def application(environ, start_response):
    path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
    status, res = "200 OK", None
    if path.startswith("/things/"):
        row = connection(True).execute(GET_THING, {"tid": int(path[8:])}).fetchone()
        res = dict(zip(("tid", "tname", "oid", "tprice"), row[:3] + (float(row[3]),))) if row else None
        status = "200 OK" if res else "404 Not Found"
    elif path == "/stuff" and method == "POST":
        form = parse_qs(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode())
        conn = connection(False)
        row = conn.execute(ADD_STUFF, {"stuff": form["stuff"][0]}).fetchone()
        conn.commit()
        status, res = ("201 Created", {"sid": row[0]}) if row else ("409 Conflict", {"error": "exists"})
    elif path.startswith("/stuff/") and method == "DELETE":
        conn = connection(False)
        done = conn.execute(DEL_STUFF, {"sid": int(path[7:])}).rowcount
        conn.commit()
        status, res = ("204 No Content", "") if done else ("404 Not Found", {"error": "no such sid"})
    else:  # /version, for apache.sh's start check
        res = {"app": "floor"}
    body = b"" if res == "" else json.dumps(res).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
