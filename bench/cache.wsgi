# Bench-only entry point of the in-process cache variant: the production kiva.wsgi
# (kiva-prod.wsgi here), then auth.lookup and auth.user_row, the user queries of an
# authenticated request (with and without the throttling counts), cached for 60 s per
# process: a password change, a demotion or a deletion would then take up to a minute
# to reach every process. Never for production.
import os
import threading

import cachetools

here = os.path.dirname(os.path.abspath(__file__))
entry = os.path.join(here, "kiva-prod.wsgi")
namespace = {"__file__": entry, "__name__": "kiva_prod_wsgi"}
exec(compile(open(entry).read(), entry, "exec"), namespace)
application = namespace["application"]

import auth  # noqa: E402


def cached(function):
    """function(login), its answers kept for 60 s in this process."""
    cache, lock = cachetools.TTLCache(maxsize=10000, ttl=60), threading.Lock()
    missing = object()

    def cached_function(login: str):
        with lock:
            row = cache.get(login, missing)
        if row is missing:
            row = function(login)
            with lock:
                cache[login] = row
        return row

    return cached_function


auth.lookup = cached(auth.lookup)
auth.user_row = cached(auth.user_row)
