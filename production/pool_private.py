"""The one place where Kiva reaches into ProxyPatternPool's internals (version 11.6).

`database.db` is a FlaskSimpleAuth `Reference`, that is a ProxyPatternPool `Proxy`: each
request's thread gets a connection of the pool on its first use. The end of a request
must know whether it took one (no commit nor connection checkout for a request that
never used the database) and must give it back to the pool (a thread of mod_wsgi lives
on, and would keep it). ProxyPatternPool names neither publicly, hence these two
functions; tests/test_library_workarounds.py fails first if the library changes them.
"""

from typing import Any


def holds_object(ref: Any) -> bool:
    """Whether this thread took an object (a connection) from the reference's pool."""
    return ref._has_obj()


def held(ref: Any) -> Any:
    """This thread's object (connection) of the reference's pool, or None: one look-up
    where holds_object() then an attribute read through the proxy made two."""
    return getattr(ref._local, "obj", None)


def give_back(ref: Any) -> None:
    """Return this thread's object to the pool, for the next request."""
    ref._ret_obj()
