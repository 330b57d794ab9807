# A local tool: cProfile of Kiva's token GET /things/<tid>, in-process
# ruff: noqa: S108
"""Where the Python CPU of one token GET /things/<tid> goes (`make bench-profile`).

The production configuration (server.conf: FSA_MODE prod, FSA_CACHE none, audit log
on) in this process, called as mod_wsgi calls it (a WSGI environ, no HTTP, no mod_wsgi:
the WSGI application alone), against the PostgreSQL database named by KIVA_DB that
`flask db-init` filled (data.sql: calvin's things). cProfile's own time of every
function is summed by layer (the file it lives in), and the inclusive time of the
few hooks and calls the issue names is printed beside it. cProfile slows Python
down about 2× evenly: read the shares, not the milliseconds.
"""

import cProfile
import io
import logging
import os
import pstats
import sys
import time

from inprocess import token_and_thing, wsgi_get

REQUESTS = int(os.environ.get("PROFILE_REQUESTS", "2000"))

# the audit line goes to a file like under mod_wsgi (its stderr), not to the terminal
for handler in logging.getLogger().handlers:
    handler.stream = open(os.devnull, "w")  # type: ignore[attr-defined]

# which layer a function belongs to, by the path of its file (first match wins)
LAYERS = [
    ("FlaskSimpleAuth (auth, params, hooks)", ("FlaskSimpleAuth",)),
    ("psycopg + libpq round trips", ("psycopg",)),
    ("anodb / aiosql / pool", ("anodb", "aiosql", "ProxyPatternPool")),
    ("logging (audit line write)", ("/logging/",)),
    ("JSON", ("/json/",)),
    ("Flask + Werkzeug", ("/flask/", "/werkzeug/")),
    ("Kiva: audit.py", ("audit.py",)),
    ("Kiva: auth.py", ("auth.py",)),
    ("Kiva: database.py, anodb_private.py", ("database.py", "anodb_private.py")),
    ("Kiva: context.py, etag.py, metrics.py", ("context.py", "etag.py", "metrics.py")),
    ("Kiva: other hooks (security, errors, throttle)", ("security.py", "errors.py", "throttle.py")),
    ("Kiva: route", ("things.py",)),
    ("stdlib (other)", ("/python3",)),
]
# inclusive time of named functions (file suffix, function name)
NAMED = [
    ("audit.audit_line (the audit line)", "audit.py", "audit_line"),
    ("auth.user_row (freshness query get_user)", "auth.py", "user_row"),
    ("etag.resource (JSON answer, ETag)", "etag.py", "resource"),
    ("route get_things_tid (thing query, JSON)", "things.py", "get_things_tid"),
    ("security.security_headers", "security.py", "security_headers"),
    ("errors.json_errors", "errors.py", "json_errors"),
    ("errors.check_json_body", "errors.py", "check_json_body"),
    ("auth.one_kind_of_credentials", "auth.py", "one_kind_of_credentials"),
    ("database.end_transaction", "database.py", "end_transaction"),
    ("database.checkout (revive, autocommit)", "database.py", "checkout"),
    ("json dumps (Flask provider)", "provider.py", "dumps"),
    ("Flask's hook dispatch (ensure_sync, per hook)", "flask/app.py", "ensure_sync"),
    ("auth.token_issued (token age)", "auth.py", "token_issued"),
    ("FlaskSimpleAuth token check (signature)", "FlaskSimpleAuth.py", "_get_token_auth"),
    ("FlaskSimpleAuth route wrapper (auth, authz, params)", "FlaskSimpleAuth.py", "entry"),
    ("logging Logger.info (record, handler, write)", "logging/__init__.py", "info"),
]


def layer(filename: str) -> str:
    for name, parts in LAYERS:
        if any(p in filename for p in parts):
            return name
    return "other (C builtins, interpreter)"


def main():
    token, tid = token_and_thing()
    for _ in range(200):  # warm-up: connections, prepared statements, caches
        assert wsgi_get(f"/things/{tid}", token)[0] == "200 OK"
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(REQUESTS):
        wsgi_get(f"/things/{tid}", token)
    plain_ms = (time.process_time() - c0) / REQUESTS * 1000
    wall_ms = (time.perf_counter() - t0) / REQUESTS * 1000
    prof = cProfile.Profile(time.process_time)  # CPU, not the wait for the server
    prof.enable()
    for _ in range(REQUESTS):
        wsgi_get(f"/things/{tid}", token)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    total = sum(s[2] for s in stats.stats.values())  # type: ignore[attr-defined]
    by_layer: dict[str, float] = {}
    for (filename, _line, _func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_layer[layer(filename)] = by_layer.get(layer(filename), 0.0) + tt
    print(f"token GET /things/<tid>, {REQUESTS} requests in-process (WSGI calls, no HTTP):")
    print(f"without the profiler: {plain_ms:.3f} ms CPU/request ({wall_ms:.3f} ms wall, the rest is waiting)")
    print()
    print("| layer (own time of its functions) | share of Python CPU | ms/request at the unprofiled rate |")
    print("|---|---:|---:|")
    for name, tt in sorted(by_layer.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {tt / total * 100:.1f} % | {tt / total * plain_ms:.3f} |")
    print()
    print("| call (inclusive time) | share of Python CPU |")
    print("|---|---:|")
    for label, suffix, func in NAMED:
        ct = sum(
            s[3]
            for (f, _l, fn), s in stats.stats.items()  # type: ignore[attr-defined]
            if f.endswith(suffix) and fn == func
        )
        print(f"| {label} | {ct / total * 100:.1f} % |")
    if os.environ.get("PROFILE_TOP"):
        stats.stream = sys.stdout  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(int(os.environ["PROFILE_TOP"]))


if __name__ == "__main__":
    main()
