"""A client generated from the server's /openapi.json works: the most used Python
generator (openapi-python-client) makes a package whose every module imports, and the
course's operations go through its typed functions and models, errors included.

The client is generated once per run, from the document the server under test serves;
in-process its requests go to the app through httpx's WSGI transport, else to the server.
"""

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import httpx
import pytest
from helpers import EXTERNAL, SEED_PASSWORDS, Raw, new_address, unique


@pytest.fixture(scope="module")
def kiva(tmp_path_factory):
    """The package generated from the server's document, imported."""
    document = Raw().request("GET", "/openapi.json").json_body
    folder = tmp_path_factory.mktemp("generated")
    (folder / "openapi.json").write_text(json.dumps(document))
    tools = os.path.dirname(sys.executable)  # the generator, and ruff, which it runs
    res = subprocess.run(  # noqa: S603 (this virtual environment's tool)
        [os.path.join(tools, "openapi-python-client"), "generate", "--meta", "none", "--fail-on-warning"]
        + ["--path", str(folder / "openapi.json"), "--output-path", str(folder / "kiva_client")],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": tools + os.pathsep + os.environ.get("PATH", "")},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    sys.path.insert(0, str(folder))
    yield importlib.import_module("kiva_client")
    sys.path.remove(str(folder))
    for name in [n for n in sys.modules if n == "kiva_client" or n.startswith("kiva_client.")]:
        del sys.modules[name]


def client(kiva, login: str | None = None, password: str | None = None, token: str | None = None):
    """A generated client (authenticated with a token, or basic credentials, or none),
    from an address of its own (helpers.new_address: no throttling shared with others)."""
    base = os.environ["FLASK_TESTER_APP"] if EXTERNAL else "http://localhost"
    httpx_args: dict = {"auth": httpx.BasicAuth(login, password)} if login and password else {}
    if not EXTERNAL:
        from app import app

        httpx_args["transport"] = httpx.WSGITransport(app=app)
    kwargs = {"base_url": base, "headers": {"X-Forwarded-For": new_address()}, "httpx_args": httpx_args}
    return kiva.AuthenticatedClient(token=token, **kwargs) if token else kiva.Client(**kwargs)


def admin(kiva):
    """calvin (an admin) with a token, as a generated client gets one: GET /login."""
    from kiva_client.api.users import get_login

    res = get_login.sync_detailed(client=client(kiva, "calvin", SEED_PASSWORDS["calvin"]))
    assert res.status_code == 200 and isinstance(res.parsed, str), res.content
    return client(kiva, token=res.parsed)


def test_every_module_imports(kiva):
    """A body of two media types made modules that failed at import (NameError: Unset,
    openapi-python-client's issue #1451): POST /stuff, /register and /object."""
    names = [m.name for m in pkgutil.walk_packages(kiva.__path__, "kiva_client.")]
    assert "kiva_client.api.stuff.post_stuff" in names
    for name in names:
        importlib.import_module(name)


def test_operation_names_say_their_method(kiva):
    """One view serves PUT and PATCH (or GET and POST): each operation's function is named
    after its own method, not patch as put_stuff_sid_patch."""
    from kiva_client.api import stuff, users

    names = {m.name for p in (stuff, users) for m in pkgutil.iter_modules(p.__path__)}
    assert {"put_stuff_sid", "patch_stuff_sid", "get_login", "post_login"} <= names
    assert [n for n in names if n.endswith(("_put", "_patch", "_get", "_post"))] == []


def test_stuff_session(kiva):
    from kiva_client.api.stuff import delete_stuff_sid, get_stuff, get_stuff_sid, patch_stuff_sid, post_stuff
    from kiva_client.models import Error, PatchStuffSidBody, PostStuffBody, Stuff

    anyone = client(kiva)
    name = unique("gen")
    created = post_stuff.sync_detailed(client=anyone, body=PostStuffBody(stuff=name))
    assert created.status_code == 201 and created.parsed.sid > 0
    sid = created.parsed.sid
    taken = post_stuff.sync_detailed(client=anyone, body=PostStuffBody(stuff=name))
    assert taken.status_code == 409 and isinstance(taken.parsed, Error) and name in taken.parsed.error
    got = get_stuff_sid.sync_detailed(sid, client=anyone)
    assert got.status_code == 200 and got.parsed == Stuff(sid=sid, stuff=name)
    etag = got.headers["ETag"]
    rename = PatchStuffSidBody(stuff=name + "-2")
    assert patch_stuff_sid.sync_detailed(sid, client=anyone, body=rename, if_match=etag).status_code == 204
    stale = patch_stuff_sid.sync_detailed(sid, client=anyone, body=rename, if_match=etag)
    assert stale.status_code == 412 and isinstance(stale.parsed, Error)
    listed = get_stuff.sync_detailed(client=anyone, filter_=name + "%")
    assert listed.status_code == 200 and listed.parsed == [Stuff(sid=sid, stuff=name + "-2")]
    assert delete_stuff_sid.sync_detailed(sid, client=anyone).status_code == 204
    gone = get_stuff_sid.sync_detailed(sid, client=anyone)
    assert gone.status_code == 404 and gone.parsed == Error(error=f"no such sid: {sid}")


def test_users_and_tokens(kiva):
    from kiva_client.api.users import delete_users_uid, get_users_uid, get_whoami, post_login, post_users
    from kiva_client.models import Error, PostUsersBody, User, UserInfo

    calvin = admin(kiva)
    login, password = unique("gen"), unique("Gen-Pw")
    created = post_users.sync_detailed(client=calvin, body=PostUsersBody(user=User(login=login, password=password)))
    assert created.status_code == 201, created.content
    uid = created.parsed.uid
    # the new user's token, by POST /login this time, then who they are
    token = post_login.sync_detailed(client=client(kiva, login, password))
    assert token.status_code == 200 and isinstance(token.parsed, str)
    me = client(kiva, token=token.parsed)
    assert get_whoami.sync_detailed(client=me).parsed == login
    mine = get_users_uid.sync_detailed(uid, client=me)
    assert mine.status_code == 200 and isinstance(mine.parsed, UserInfo)
    assert (mine.parsed.uid, mine.parsed.login, mine.parsed.isadmin) == (uid, login, False)
    others = get_users_uid.sync_detailed(1, client=me)  # calvin's: admins only
    assert others.status_code == 403 and isinstance(others.parsed, Error)
    wrong = post_login.sync_detailed(client=client(kiva, login, "not-" + password))
    assert wrong.status_code == 401 and isinstance(wrong.parsed, Error)
    assert delete_users_uid.sync_detailed(uid, client=calvin).status_code == 204
    refused = get_whoami.sync_detailed(client=me)
    assert refused.status_code == 401 and isinstance(refused.parsed, Error)


def test_owners_and_things(kiva):
    from kiva_client.api.things import (
        delete_owners_oid,
        delete_things_tid,
        get_owners_oid_things,
        post_owners,
        post_things,
    )
    from kiva_client.models import Error, PostOwnersBody, PostThingsBody, Thing

    calvin = admin(kiva)
    oname = unique("gen")
    owner = post_owners.sync_detailed(client=calvin, body=PostOwnersBody(oname=oname, omail=f"{oname}@example.org"))
    assert owner.status_code == 201, owner.content
    oid = owner.parsed.oid
    thing = post_things.sync_detailed(client=calvin, body=PostThingsBody(tname=oname, oid=oid, tprice=12.5))
    assert thing.status_code == 201, thing.content
    tid = thing.parsed.tid
    things = get_owners_oid_things.sync_detailed(oid, client=calvin)
    assert things.status_code == 200 and things.parsed == [Thing(tid=tid, tname=oname, oid=oid, tprice=12.5)]
    busy = delete_owners_oid.sync_detailed(oid, client=calvin)  # still has a thing
    assert busy.status_code == 409 and isinstance(busy.parsed, Error)
    assert delete_things_tid.sync_detailed(tid, client=calvin).status_code == 204
    assert delete_owners_oid.sync_detailed(oid, client=calvin).status_code == 204
    nobody = post_things.sync_detailed(client=calvin, body=PostThingsBody(tname=oname, oid=oid, tprice=1.0))
    assert nobody.status_code == 404 and isinstance(nobody.parsed, Error)


def test_registration_and_owned_objects(kiva):
    from kiva_client.api.compute import get_add
    from kiva_client.api.owned import delete_object_oid, get_object_oid, patch_object_oid, post_object
    from kiva_client.api.users import delete_users_uid, get_login, post_register
    from kiva_client.models import Error, Owned, PatchObjectOidBody, PostObjectBody, PostRegisterBody

    login, password = unique("gen"), unique("Gen-Pw")
    registered = post_register.sync_detailed(client=client(kiva), body=PostRegisterBody(login=login, pword=password))
    assert registered.status_code == 201, registered.content
    uid = registered.parsed.uid
    again = post_register.sync_detailed(client=client(kiva), body=PostRegisterBody(login=login, pword=password))
    assert again.status_code == 409 and isinstance(again.parsed, Error)
    me = client(kiva, token=get_login.sync_detailed(client=client(kiva, login, password)).parsed)
    assert get_add.sync_detailed(client=me, i=2, j=3).parsed == 5
    name = unique("gen")
    created = post_object.sync_detailed(client=me, body=PostObjectBody(object_=name))
    assert created.status_code == 201, created.content
    oid = created.parsed.oid
    assert get_object_oid.sync_detailed(oid, client=me).parsed == Owned(object_=name, oid=oid, owner=uid)
    susie = client(kiva, "susie", SEED_PASSWORDS["susie"])  # not its owner
    refused = get_object_oid.sync_detailed(oid, client=susie)
    assert refused.status_code == 403 and isinstance(refused.parsed, Error)
    renamed = patch_object_oid.sync_detailed(oid, client=me, body=PatchObjectOidBody(object_=name + "-2"))
    assert renamed.status_code == 204
    assert get_object_oid.sync_detailed(oid, client=me).parsed == Owned(object_=name + "-2", oid=oid, owner=uid)
    assert delete_object_oid.sync_detailed(oid, client=me).status_code == 204
    assert delete_users_uid.sync_detailed(uid, client=admin(kiva)).status_code == 204
