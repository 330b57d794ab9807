"""Freshness of the shared cache across the nodes of a cluster (make test-cluster).

Each check warms the cache through both nodes (and checks that Redis holds the
entry: the cache is really in use), changes something through node 1, and asks
node 2 at once: the change must show on the very next request, from the node
that did not make it. Nodes are reached directly, not through HAProxy, so that
which node answers is known. CLUSTER_NODES (two API URLs) and CLUSTER_REDIS_PORT
come from deploy/cluster.sh env; without them (make check) the module is skipped.
"""

import os

import pytest
import redis
import requests
from helpers import bearer, new_address, unique

NODES = [url for url in os.environ.get("CLUSTER_NODES", "").split(",") if url]
pytestmark = pytest.mark.skipif(len(NODES) < 2, reason="a cluster's nodes (CLUSTER_NODES): make test-cluster")
ADMIN = ("calvin", "hobbes")
TIMEOUT = 10


ADDRESS = new_address()  # this module's client address (the nodes trust 127.0.0.1 as a proxy)


def call(node: int, method: str, path: str, status: int, auth=None, headers=None, **kwargs) -> requests.Response:
    """A request to node 1 or 2, its status checked, its error body a JSON error."""
    headers = {"X-Forwarded-For": ADDRESS, **(headers or {})}
    res = requests.request(method, NODES[node - 1] + path, auth=auth, headers=headers, timeout=TIMEOUT, **kwargs)
    assert res.status_code == status, f"node {node}: {method} {path}: {res.status_code} {res.text}"
    if status >= 400:
        assert isinstance(res.json()["error"], str)
    return res


def cached(key: str) -> bool:
    client = redis.Redis(port=int(os.environ["CLUSTER_REDIS_PORT"]))
    return bool(client.exists(f"kiva:{key}"))


def cached_user(login: str) -> bool:
    """The user row of this login, as seen from this module's address."""
    return cached(f"user:{login}|{ADDRESS}")


def new_user(admin: bool = False) -> tuple[str, str, int]:
    login, password = unique("cluster"), unique("Pw")
    user = {"login": login, "password": password, "isAdmin": admin}
    uid = call(1, "POST", "/users", 201, auth=ADMIN, json={"user": user}).json()["uid"]
    return login, password, uid


def warm(login: str, password: str, path: str = "/whoami", expect=None):
    """Both nodes answer 200 (with `expect` as the body), and the user row is in Redis."""
    for node in (1, 2):
        res = call(node, "GET", path, 200, auth=(login, password))
        if expect is not None:
            assert res.json() == expect
    assert cached_user(login), "the user row is not in the shared cache"


def test_password_change():
    login, old, uid = new_user()
    warm(login, old, expect=login)
    new = unique("New-Pw")
    call(1, "PATCH", f"/users/{uid}", 204, auth=ADMIN, data={"password": new})
    call(2, "GET", "/whoami", 401, auth=(login, old))
    assert call(2, "GET", "/whoami", 200, auth=(login, new)).json() == login
    call(1, "GET", "/whoami", 401, auth=(login, old))
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)


def test_demotion():
    login, password, uid = new_user(admin=True)
    warm(login, password, "/admin", expect=f"hello admin {login}!")
    # an object permission of an admin: another user's data
    for node in (1, 2):
        assert call(node, "GET", "/users/1", 200, auth=(login, password)).json()["login"] == "calvin"
    assert cached(f"perm:user:1:{login}"), "the permission is not in the shared cache"
    call(1, "PATCH", f"/users/{uid}", 204, auth=ADMIN, data={"isadmin": "false"})
    assert call(2, "GET", "/admin", 403, auth=(login, password)).json()["error"] == 'not in group "ADMIN"'
    call(2, "GET", "/users/1", 403, auth=(login, password))
    call(1, "GET", "/users/1", 403, auth=(login, password))
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)


def test_deletion():
    login, password, uid = new_user()
    warm(login, password)
    token = call(1, "GET", "/login", 200, auth=(login, password)).json()
    for node in (1, 2):
        assert call(node, "GET", "/whoami", 200, headers=bearer(token)).json() == login
    assert cached(f"row:{login}"), "the token's user row is not in the shared cache"
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)
    call(2, "GET", "/whoami", 401, headers=bearer(token))
    call(2, "GET", "/whoami", 401, auth=(login, password))
    call(1, "GET", "/whoami", 401, headers=bearer(token))


def test_object_deletion():
    login, password, uid = new_user()
    name = unique("thing")
    oid = call(1, "POST", "/object", 201, auth=(login, password), data={"object": name}).json()["oid"]
    for node in (1, 2):
        assert call(node, "GET", f"/object/{oid}", 200, auth=(login, password)).json()["object"] == name
        call(node, "GET", f"/object/{oid}", 403, auth=("hobbes", "susie"))
    assert cached(f"perm:owned:{oid}:{login}") and cached(f"perm:owned:{oid}:hobbes")
    call(1, "DELETE", f"/object/{oid}", 204, auth=(login, password))
    assert call(2, "GET", f"/object/{oid}", 404, auth=(login, password)).json()["error"] == "object not found"
    call(2, "GET", f"/object/{oid}", 404, auth=("hobbes", "susie"))
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)


def test_throttling():
    """Failed password checks counted through node 1 throttle the login on node 2 at once.

    From an address of its own: the throttle counts by login and by address, and an
    address's window opened by another test's failures may end in the middle of this one.
    """
    login, password, uid = new_user()
    address = {"X-Forwarded-For": new_address()}
    for node in (1, 2):  # the row of this login seen from this address, in the cache
        assert call(node, "GET", "/whoami", 200, auth=(login, password), headers=address).json() == login
    assert cached(f"user:{login}|{address['X-Forwarded-For']}"), "the user row is not in the shared cache"
    for _ in range(5):
        call(1, "GET", "/whoami", 401, auth=(login, "wrong-password"), headers=address)
    res = call(2, "GET", "/whoami", 429, auth=(login, "wrong-password"), headers=address)
    assert int(res.headers["Retry-After"]) > 0
    call(1, "DELETE", f"/users/{uid}", 204, auth=ADMIN)
