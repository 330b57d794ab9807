# The raw WSGI floor: no framework, one persistent psycopg connection per thread,
# the same SELECT as GET /things/<tid> (queries.sql get_thing_tid), JSON out.
import json, os, threading
import psycopg

here = os.path.dirname(os.path.abspath(__file__))
env = dict(line.strip().split("=", 1) for line in open(os.path.join(here, "kiva.env")) if "=" in line)
SQL = ("SELECT tid, tname, oid, CASE WHEN tprice = CAST(tprice AS BIGINT) THEN CAST(tprice AS BIGINT)"
       " ELSE tprice END AS tprice FROM Thing WHERE tid = %s")
local = threading.local()


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/things/"):
        conn = getattr(local, "conn", None) or setattr(local, "conn", psycopg.connect(env["KIVA_DB"], autocommit=True)) or local.conn
        row = conn.execute(SQL, (int(path[8:]),)).fetchone()
        res = dict(zip(("tid", "tname", "oid", "tprice"), row[:3] + (float(row[3]),))) if row else None
    else:  # /version, for apache.sh's start check
        res = {"app": "floor"}
    body = json.dumps(res).encode()
    start_response("200 OK" if res else "404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
