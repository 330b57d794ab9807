# A local tool: instructions per token GET /things/<tid>, in-process, under callgrind
# ruff: noqa: S108, S603, S605, S607
"""Instructions per request of Kiva's token GET /things/<tid> (`make bench-instructions`).

Run under `valgrind --tool=callgrind --instr-atstart=no`: the app loads and warms up
uninstrumented, then this script switches instrumentation on (callgrind_control -i on),
serves REQUESTS requests through the WSGI application (as mod_wsgi calls it), and switches it off; callgrind's
total is then the instructions of those requests alone (Python, Flask, FlaskSimpleAuth,
psycopg and libpq client side; not PostgreSQL, not mod_wsgi). Unlike CPU time, the count
does not move with the load of the machine: a change of a few percent shows.
"""

import logging
import os
import subprocess

from inprocess import token_and_thing, wsgi_get

REQUESTS = int(os.environ.get("INSTR_REQUESTS", "200"))
for handler in logging.getLogger().handlers:
    handler.stream = open(os.devnull, "w")  # type: ignore[attr-defined]


def callgrind(command: str):
    subprocess.run(["callgrind_control", command, str(os.getpid())], capture_output=True, check=True)


def main():
    token, tid = token_and_thing()
    for _ in range(50):
        assert wsgi_get(f"/things/{tid}", token)[0] == "200 OK"
    callgrind("--instr=on")
    for _ in range(REQUESTS):
        wsgi_get(f"/things/{tid}", token)
    callgrind("--instr=off")


if __name__ == "__main__":
    main()
