# The raw WSGI floors: no framework, persistent psycopg connections per thread, the
# same statements as Kiva's (read from queries.sql by name, bench/floor_sql.py), JSON out.
#   GET /things/<tid>: get_thing_tid, in autocommit (one round trip, like Kiva's reads)
#   POST /stuff (form stuff=…) and DELETE /stuff/<sid>: add_stuff and del_stuff_sid, each
#   in its own transaction with its COMMIT (psycopg's implicit BEGIN), like Kiva's writes
import json, os, sys
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from floor_sql import connection, get_thing, query  # noqa: E402

ADD_STUFF, DEL_STUFF = query("add_stuff"), query("del_stuff_sid")


def application(environ, start_response):
    path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
    status, res = "200 OK", None
    if path.startswith("/things/"):
        res = get_thing(int(path[8:]))
        status = "200 OK" if res else "404 Not Found"
    elif path == "/stuff" and method == "POST":
        form = parse_qs(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode())
        conn = connection(False)
        row = conn.execute(ADD_STUFF, {"stuff": form["stuff"][0]}).fetchone()
        conn.commit()
        status, res = ("201 Created", {"sid": row[0]}) if row else ("409 Conflict", {"error": "exists"})
    elif path.startswith("/stuff/") and method == "DELETE":
        conn = connection(False)
        # version None: a DELETE without If-Match, as the benchmark's DELETEs to Kiva
        done = conn.execute(DEL_STUFF, {"sid": int(path[7:]), "version": None}).rowcount
        conn.commit()
        status, res = ("204 No Content", "") if done else ("404 Not Found", {"error": "no such sid"})
    else:  # /version, for apache.sh's start check
        res = {"app": "floor"}
    body = b"" if res == "" else json.dumps(res).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
