# A local tool: instructions per request of Kiva's main routes, in-process, under callgrind
# ruff: noqa: S108, S603, S605, S607
"""Instructions per request of Kiva's main routes (`make bench-instructions`).

Run under `valgrind --tool=callgrind --instr-atstart=no`: the app loads and warms up
uninstrumented, then for each scenario this script switches instrumentation on
(callgrind_control -i on), serves REQUESTS requests through the WSGI application (as
mod_wsgi calls it), switches it off and dumps the counts (callgrind_control --dump,
which also zeroes them): each dump's total is the instructions of that scenario's
requests alone (Python, Flask, FlaskSimpleAuth, psycopg and libpq client side; not
PostgreSQL, not mod_wsgi, not the kernel). Unlike CPU time, the count does not move
with the load of the machine: a change of a few percent shows.

Scenarios: the open GET /stuff/<sid>, the token GET /things/<tid>, the basic GET
/things/<tid> (without a device cookie, as wrk sends it), the POST /stuff + DELETE
/stuff/<sid> pair (one "request" is one pair). INSTR_SCENARIOS chooses some.

INSTR_WITHOUT (comma-separated `module.function` names, e.g. `audit.audit_line`) takes
these hooks out of app.py's BEFORE_REQUEST / AFTER_REQUEST lists: what each hook costs
is the difference (bench/RESULTS.md's table of the parts).
"""

import base64
import glob
import io
import itertools
import logging
import os
import subprocess
import time

from inprocess import app, make_environ, token_and_thing, wsgi_get

import app as kiva

REQUESTS = int(os.environ.get("INSTR_REQUESTS", "200"))
SCENARIOS = os.environ.get("INSTR_SCENARIOS", "open,token,basic,writes").split(",")
OUT = os.environ["INSTR_OUT"]  # callgrind's --callgrind-out-file: the dumps are OUT.1, OUT.2…
for handler in logging.getLogger().handlers:
    handler.stream = open(os.devnull, "w")  # type: ignore[attr-defined]

for name in filter(None, os.environ.get("INSTR_WITHOUT", "").split(",")):
    chains: list[list] = [kiva.BEFORE_REQUEST, kiva.AFTER_REQUEST]  # the chains hold these very lists
    for chain in chains:
        chain[:] = [h for h in chain if f"{h.__module__.rsplit('.', 1)[-1]}.{h.__name__}" != name]

COUNTER = itertools.count()


def wsgi_call(method: str, path: str, body: bytes = b"", content_type: str | None = None) -> tuple[str, bytes]:
    environ = make_environ(path, {})
    environ["REQUEST_METHOD"] = method
    environ["wsgi.input"] = io.BytesIO(body)
    if content_type:
        environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"] = content_type, str(len(body))
    status = []
    res = app(environ, lambda s, h, e=None: status.append(s))
    try:
        data = b"".join(res)
    finally:
        getattr(res, "close", lambda: None)()
    return status[0], data


def write_pair():
    """POST /stuff then DELETE /stuff/<sid>, as the benchmark's writes (a form body)."""
    body = f"stuff=instr-{os.getpid()}-{time.time()}-{next(COUNTER)}".encode()
    status, data = wsgi_call("POST", "/stuff", body, "application/x-www-form-urlencoded")
    assert status.startswith("201"), (status, data)
    sid = data.decode().split(":")[1].strip(" }\n")
    status, data = wsgi_call("DELETE", f"/stuff/{sid}")
    assert status.startswith("204"), (status, data)


def callgrind(*args: str):
    subprocess.run(["callgrind_control", *args, str(os.getpid())], capture_output=True, check=True)


def main():
    token, tid = token_and_thing()
    sid = app.test_client().get("/stuff?limit=1").json[0]["sid"]
    basic = {"Authorization": "Basic " + base64.b64encode(b"calvin:hobbes").decode()}
    runs = {
        "open": lambda: wsgi_get(f"/stuff/{sid}", {}),
        "token": lambda: wsgi_get(f"/things/{tid}", token),
        "basic": lambda: wsgi_get(f"/things/{tid}", basic),
        "writes": write_pair,
    }
    labels = {
        "open": "open GET /stuff/<sid>",
        "token": "token GET /things/<tid>",
        "basic": "basic GET /things/<tid> (no device cookie, as wrk)",
        "writes": "POST /stuff + DELETE /stuff/<sid> pair",
    }
    for scenario in SCENARIOS:
        run = runs[scenario]
        for _ in range(50):
            run()
        callgrind("--instr=on")
        for _ in range(REQUESTS):
            run()
        callgrind("--instr=off")
        callgrind(f"--dump={scenario}")
        dumps = sorted(glob.glob(f"{OUT}.*"), key=os.path.getmtime)
        totals = [line for line in open(dumps[-1]) if line.startswith("totals:")]
        count = int(totals[0].split()[1]) / REQUESTS
        print(f"{labels[scenario]}: {count:.0f} instructions per request (callgrind, in-process)", flush=True)


if __name__ == "__main__":
    main()
