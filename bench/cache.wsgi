# Bench-only entry point of the in-process cache variant: the production kiva.wsgi
# (kiva-prod.wsgi here), then auth.lookup, the one user query of an authenticated
# request, cached for 60 s per process: a password change, a demotion or a deletion
# would then take up to a minute to reach every process. Never for production.
import os
import threading

import cachetools

here = os.path.dirname(os.path.abspath(__file__))
entry = os.path.join(here, "kiva-prod.wsgi")
namespace = {"__file__": entry, "__name__": "kiva_prod_wsgi"}
exec(compile(open(entry).read(), entry, "exec"), namespace)
application = namespace["application"]

import auth  # noqa: E402

_lookup, _cache, _lock = auth.lookup, cachetools.TTLCache(maxsize=10000, ttl=60), threading.Lock()


def cached_lookup(login: str) -> dict:
    with _lock:
        row = _cache.get(login)
    if row is None:
        row = _lookup(login)
        with _lock:
            _cache[login] = row
    return row


auth.lookup = cached_lookup
