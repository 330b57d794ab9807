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
/stuff/<sid> pair (one "request" is one pair); and the floors of `make bench`, loaded
here as mod_wsgi loads them: the raw WSGI GET /things/<tid> and write pair (floor.wsgi),
the bare Flask and the FlaskSimpleAuth token GET (flask_floor.wsgi). INSTR_SCENARIOS
chooses some. Then `ratio NAME_instr_floors`: the instructions of a scenario over its
floor's, `make bench`'s CPU ratios without the kernel's share (system calls, the socket
round trips) and without the machine's weather: two runs agree to about 0.01.

INSTR_WITHOUT (comma-separated `module.function` names, e.g. `audit.audit_line`) takes
these hooks out of app.py's BEFORE_REQUEST / AFTER_REQUEST lists: what each hook costs
is the difference (bench/RESULTS.md's table of the parts).
"""

import base64
import glob
import itertools
import logging
import os
import runpy
import shutil
import subprocess
import tempfile
import time

from inprocess import HERE, app, token_and_thing, wsgi_call, wsgi_get

import app as kiva
from bench import CPU_RATIOS

REQUESTS = int(os.environ.get("INSTR_REQUESTS", "200"))
SCENARIOS = os.environ.get("INSTR_SCENARIOS", "floor,flask,fsa,open,token,basic,writes,floor_writes").split(",")
OUT = os.environ["INSTR_OUT"]  # callgrind's --callgrind-out-file: the dumps are OUT.1, OUT.2…
for handler in logging.getLogger().handlers:
    handler.stream = open(os.devnull, "w")  # type: ignore[attr-defined]

for name in filter(None, os.environ.get("INSTR_WITHOUT", "").split(",")):
    chains: list[list] = [kiva.BEFORE_REQUEST, kiva.AFTER_REQUEST]  # the chains hold these very lists
    for chain in chains:
        chain[:] = [h for h in chain if f"{h.__module__.rsplit('.', 1)[-1]}.{h.__name__}" != name]

COUNTER = itertools.count()


def write_pair(application=app) -> tuple[str, bytes]:
    """POST /stuff then DELETE /stuff/<sid>, as the benchmark's writes (a form body); the
    DELETE's answer."""
    body = f"stuff=instr-{os.getpid()}-{time.time()}-{next(COUNTER)}".encode()
    status, data = wsgi_call(
        "POST", "/stuff", body=body, content_type="application/x-www-form-urlencoded", application=application
    )
    assert status.startswith("201"), (status, data)
    sid = data.decode().split(":")[1].strip(" }\n")
    status, data = wsgi_call("DELETE", f"/stuff/{sid}", application=application)
    assert status.startswith("204"), (status, data)
    return status, data


def floors() -> dict:
    """The benchmark's floors (bench/floor.wsgi, bench/flask_floor.wsgi), loaded here as
    mod_wsgi loads them, from a folder holding what `make bench` copies beside them: Kiva's
    statements (queries.sql) and a kiva.env naming this database and secret."""
    folder = tempfile.mkdtemp(prefix="kiva-instr-floors-")
    for name in ("floor.wsgi", "flask_floor.wsgi", "floor_sql.py"):
        shutil.copy2(os.path.join(HERE, "bench", name), folder)
    shutil.copy2(os.path.join(HERE, "queries.sql"), folder)
    with open(os.path.join(folder, "kiva.env"), "w") as env:
        env.write(f"KIVA_DB={os.environ['KIVA_DB']}\nAPP_SECRET={os.environ['APP_SECRET']}\n")
    loaded = {
        name: runpy.run_path(os.path.join(folder, name))["application"] for name in ("floor.wsgi", "flask_floor.wsgi")
    }
    shutil.rmtree(folder)  # the modules are loaded: their files are no longer read
    return loaded


# instructions of a scenario over a floor's: `make bench`'s CPU ratios, without the kernel
# (those of the scenarios counted here: not its in-process cache variant)
RATIOS = {name.replace("_cpu_", "_instr_"): pair for name, pair in CPU_RATIOS.items()}


def callgrind(*args: str):
    subprocess.run(["callgrind_control", *args, str(os.getpid())], capture_output=True, check=True)


def main():
    token, tid = token_and_thing()
    sid = app.test_client().get("/stuff?limit=1").json[0]["sid"]
    basic = {"Authorization": "Basic " + base64.b64encode(b"calvin:hobbes").decode()}
    floor = floors()
    runs = {
        "floor": lambda: wsgi_get(f"/things/{tid}", {}, floor["floor.wsgi"]),
        "flask": lambda: wsgi_get(f"/things/{tid}", {}, floor["flask_floor.wsgi"]),
        "fsa": lambda: wsgi_get(f"/fsa/things/{tid}", token, floor["flask_floor.wsgi"]),
        "floor_writes": lambda: write_pair(floor["floor.wsgi"]),
        "open": lambda: wsgi_get(f"/stuff/{sid}", {}),
        "token": lambda: wsgi_get(f"/things/{tid}", token),
        "basic": lambda: wsgi_get(f"/things/{tid}", basic),
        "writes": write_pair,
    }
    labels = {
        "floor": "floor: raw WSGI GET /things/<tid>",
        "flask": "floor: bare Flask GET /things/<tid>",
        "fsa": "floor: FlaskSimpleAuth token GET /things/<tid>",
        "floor_writes": "floor: raw WSGI POST /stuff + DELETE /stuff/<sid> pair",
        "open": "open GET /stuff/<sid>",
        "token": "token GET /things/<tid>",
        "basic": "basic GET /things/<tid> (no device cookie, as wrk)",
        "writes": "POST /stuff + DELETE /stuff/<sid> pair",
    }
    counts = {}
    for scenario in SCENARIOS:
        run = runs[scenario]
        for _ in range(50):
            status, body = run()
            assert status[0] == "2", (scenario, status, body)
        callgrind("--instr=on")
        for _ in range(REQUESTS):
            run()
        callgrind("--instr=off")
        callgrind(f"--dump={scenario}")
        dumps = sorted(glob.glob(f"{OUT}.*"), key=os.path.getmtime)
        totals = [line for line in open(dumps[-1]) if line.startswith("totals:")]
        count = counts[scenario] = int(totals[0].split()[1]) / REQUESTS
        print(f"{labels[scenario]}: {count:.0f} instructions per request (callgrind, in-process)", flush=True)
    for name, (a, b) in RATIOS.items():
        if a in counts and b in counts:
            print(f"ratio {name}: {counts[a] / counts[b]:.2f}")


if __name__ == "__main__":
    main()
