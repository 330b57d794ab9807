"""What the outside security review broke into (issue #10), each as a test.

Each test sends what the attacker sent and checks the status and the body. The
throttle tests pick client addresses through X-Forwarded-For (make check trusts
127.0.0.1 as a proxy): `api.from_address(...)` is another client machine.
"""

import contextlib
import os
import threading
import uuid

import pytest
import race
from helpers import (
    EXTERNAL,
    SEED_PASSWORDS,
    Raw,
    app_config,
    app_database,
    basic,
    bearer,
    new_address,
    register,
    unique,
)

from model import PASSWORD_MAX

LIMIT = 5  # failed password checks of one login within the window (app.conf)
REFUSAL = {"error": "too many failed logins, retry later"}
in_process_only = pytest.mark.skipif(EXTERNAL, reason="changes the app's configuration: in-process only")


def fail(api, login: str, times: int, password: str = "wrong-password"):  # noqa: S107
    for _ in range(times):
        res = api.get("/whoami", 401, login=None, headers=basic(login, password))
        assert res.json == {"error": f"invalid user/password for {login}"}


# 2. one kind of credentials per request: junk Basic + USER/PASS guesses are refused
def test_two_kinds_of_credentials_refused(api):
    login, password, uid = register(api, "victim", "right-password")
    for path in ["/object", "/login"]:  # routes taking a POST: another method is a 405 first
        for guess in ["wrong-password", password]:
            res = api.post(path, 400, login=None, headers=basic("junk", "junk"), data={"USER": login, "PASS": guess})
            assert res.json == {"error": "one kind of credentials per request: Authorization header or USER/PASS"}
    res = api.post("/login", 400, login=None, headers=bearer("kiva:x:1:2"), json={"USER": login, "PASS": password})
    assert "one kind of credentials" in res.json["error"]
    # nothing was counted: five wrong guesses later, the sixth is throttled, not the first
    fail(api, login, LIMIT)
    assert api.get("/whoami", 429, login=None, headers=basic(login, "wrong-password")).json == REFUSAL
    api.delete(f"/users/{uid}", 204, login="calvin")


# 2. every failed check counts, by parameters as by Basic, on /login too
def test_every_failure_counts(api):
    login, password, uid = register(api, "victim", "right-password")
    for _ in range(LIMIT):
        api.post("/login", 401, login=None, data={"USER": login, "PASS": "wrong-password"})
    res = api.post("/login", 429, login=None, data={"USER": login, "PASS": password})
    assert res.json == REFUSAL and int(res.headers["Retry-After"]) >= 1
    api.delete(f"/users/{uid}", 204, login="calvin")


# 2. no free lock-out: a throttled login still works from an address that has not failed
def test_victim_logs_in_from_a_clean_address(api):
    login, password, uid = register(api, "victim", "right-password")
    attacker, victim = api.from_address(new_address()), api.from_address(new_address())
    fail(attacker, login, LIMIT)
    assert attacker.get("/whoami", 429, login=None, headers=basic(login, password)).json == REFUSAL
    assert victim.get("/whoami", 200, login=None, headers=basic(login, password)).json == login
    # the victim's success does not give the attacker new tries
    assert attacker.get("/whoami", 429, login=None, headers=basic(login, "guess")).json == REFUSAL
    # a wrong password from the clean address makes it a failed one too
    victim.get("/whoami", 401, login=None, headers=basic(login, "typo-password"))
    assert victim.get("/whoami", 429, login=None, headers=basic(login, password)).json == REFUSAL
    api.delete(f"/users/{uid}", 204, login="calvin")


# 2 and 8. what cannot be a login or a password is refused before counting and hashing
def test_impossible_credentials_not_counted(api):
    login, password, uid = register(api, "victim", "right-password")
    for user, pw in [(login, "x" * 73), (login, "é" * 73), ("x" * 201, "password"), ("bad\nlogin", "password")]:
        res = api.get("/whoami", 401, login=None, headers=basic(user, pw))
        assert res.json == {"error": "invalid user/password"}
    for _ in range(LIMIT + 2):
        api.get("/whoami", 401, login=None, data={"USER": login, "PASS": "y" * 100})
    assert api.get("/whoami", 200, login=None, headers=basic(login, password)).json == login
    api.delete(f"/users/{uid}", 204, login="calvin")


# 2 and 4. password spraying, random logins: the address is throttled, whatever the logins
@in_process_only
def test_address_throttled_whatever_the_logins(api):
    with app_config(KIVA_THROTTLE_ADDRESS_FAILURES=3):
        for _ in range(3):
            login = unique("random")
            api.get("/whoami", 401, login=None, headers=basic(login, "password"))
        res = api.get("/whoami", 429, login=None, headers=basic("hobbes", SEED_PASSWORDS["hobbes"]))
        assert res.json == REFUSAL and int(res.headers["Retry-After"]) >= 1
        other = api.from_address(new_address())
        assert other.get("/whoami", 200, login=None, headers=basic("hobbes", SEED_PASSWORDS["hobbes"])).json == "hobbes"


# 2. X-Forwarded-For is believed from a trusted proxy only
@in_process_only
def test_forwarded_for_ignored_without_a_trusted_proxy(api):
    login, password, uid = register(api, "victim", "right-password")
    with app_config(KIVA_TRUSTED_PROXIES=[]):
        fail(api, login, LIMIT)
        # another X-Forwarded-For is the same connection: still the failed address
        other = api.from_address(new_address())
        assert other.get("/whoami", 429, login=None, headers=basic(login, password)).json == REFUSAL
    api.delete(f"/users/{uid}", 204, login="calvin")


# 3. a token dies with its password; one's own password change needs the current one
def test_token_dies_with_the_password(api):
    login, password, uid = register(api, "owner", "first-password")
    token = api.get("/login", 200, login=None, headers=basic(login, password)).json
    me = bearer(token)
    res = api.patch(f"/users/{uid}", 400, login=None, headers=me, data={"password": "stolen-password"})
    assert res.json == {"error": "changing one's password needs the current one: current"}
    res = api.patch(f"/users/{uid}", 403, login=None, headers=me, data={"password": "stolen", "current": "guess"})
    assert res.json == {"error": "the current password does not match"}
    # a current password no password can be (too long): the same refusal, not a 401
    impossible = "x" * (PASSWORD_MAX + 1)
    res = api.patch(f"/users/{uid}", 403, login=None, headers=me, data={"password": "stolen", "current": impossible})
    assert res.json == {"error": "the current password does not match"}
    api.get("/whoami", 401, login=None, headers=basic(login, "stolen-password"))
    api.patch(f"/users/{uid}", 204, login=None, headers=me, data={"password": "second-password", "current": password})
    for path in ["/whoami", "/qui-suis-je", f"/users/{uid}"]:
        assert api.get(path, 401, login=None, headers=me).json == {"error": "invalid token"}
    # a new token, right after the change, works
    token = api.get("/login", 200, login=None, headers=basic(login, "second-password")).json
    assert api.get("/qui-suis-je", 200, login=None, headers=bearer(token)).json == login
    # an admin changes it without the current one: that token dies too
    api.patch(f"/users/{uid}", 204, login="calvin", data={"password": "third-password"})
    assert api.get("/qui-suis-je", 401, login=None, headers=bearer(token)).json == {"error": "invalid token"}
    api.delete(f"/users/{uid}", 204, login="calvin")


# 3. guessing `current` with a stolen token is throttled like any password check
def test_current_password_guesses_throttled(api):
    login, password, uid = register(api, "owner", "first-password")
    me = bearer(api.get("/login", 200, login=None, headers=basic(login, password)).json)
    for _ in range(LIMIT):
        api.patch(f"/users/{uid}", 403, login=None, headers=me, data={"password": "stolen-pw", "current": "guess"})
    res = api.patch(f"/users/{uid}", 429, login=None, headers=me, data={"password": "stolen-pw", "current": password})
    assert res.json == REFUSAL
    api.delete(f"/users/{uid}", 204, login="calvin")


@contextlib.contextmanager
def busy_password_checks(hashes: bool = False):
    """Every bcrypt slot of the in-process app taken (the logins', or with `hashes` those
    of new passwords), until the block ends."""
    from app import app

    checks = app.extensions["kiva_password_checks"]
    release, taken = threading.Event(), threading.Semaphore(0)
    slots = app.config["KIVA_HASH_SLOTS" if hashes else "KIVA_PASSWORD_SLOTS"]
    semaphore = checks.hash_slots if hashes else checks.slots

    def holding():
        taken.release()
        return release.wait(30)

    def hold():
        checks.bounded(holding, slots=semaphore)

    holders = [threading.Thread(target=hold) for _ in range(slots)]
    for holder in holders:
        holder.start()
    for _ in range(slots):
        assert taken.acquire(timeout=10)
    try:
        yield
    finally:
        release.set()
        for holder in holders:
            holder.join()


# 4. bounded password checks: beyond the slots, a fast 503; other routes unaffected
# (issue 20, point 2: new passwords are hashed in slots of their own, test_hashing.py)
@in_process_only
def test_password_checks_bounded(api):
    with busy_password_checks():
        res = api.get("/whoami", 503, login=None, headers=basic("hobbes", "not-memoised-password"))
        assert res.json == {"error": "too many password checks at once, retry later"}
        assert res.headers["Retry-After"] == "1"
        # a taken login costs no hash: 409 at once, slots or not
        res = api.post("/register", 409, login=None, data={"login": "calvin", "pword": "password"})
        assert res.json == {"error": "login already taken: calvin"}
        assert api.get("/version", 200, login=None).json["user"] is None
        token = bearer(forge_token_for("hobbes"))
        assert api.get("/whoami", 200, login=None, headers=token).json == "hobbes"


def forge_token_for(login: str) -> str:
    from helpers import forge_token

    return forge_token(login)


# 5. cross-site writes refused; the same requests without browser headers pass
@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}])
def test_cross_site_writes_refused(api, headers):
    name = unique("Csrf")
    res = api.post("/stuff", 403, login=None, headers=headers, data={"stuff": name})
    assert res.json == {"error": "cross-site request refused"}
    user = {"login": unique("evil"), "password": "evil-password", "isAdmin": True}
    admin = basic("calvin", SEED_PASSWORDS["calvin"])
    import json

    res = api.post("/users", 403, login=None, headers={**admin, **headers}, data={"user": json.dumps(user)})
    assert res.json == {"error": "cross-site request refused"}
    assert api.get("/users", 200, login="calvin", data={"filter": user["login"]}).json == []
    assert api.get("/stuff", 200, login=None, data={"filter": name}).json == []
    # reads are not refused, and neither are same-origin writes
    assert api.get("/stuff/1", 200, login=None, headers=headers).json["sid"] == 1
    host = os.environ.get("FLASK_TESTER_APP", "http://localhost").split("/")[2] if EXTERNAL else "localhost"
    sid = api.post("/stuff", 201, login=None, headers={"Origin": f"http://{host}"}, data={"stuff": name}).json["sid"]
    api.delete(f"/stuff/{sid}", 204, login=None, headers={"Sec-Fetch-Site": "same-origin"})


# 6. deeply nested JSON: a 400, on any route
def test_deeply_nested_json(raw):
    body = "[" * 100_000 + "]" * 100_000
    for method, path in [("POST", "/stuff"), ("GET", "/version"), ("POST", "/users"), ("PATCH", "/stuff/1")]:
        res = raw.request(method, path, data=body, headers={"Content-Type": "application/json"})
        assert res.status_code == 400, (method, path, res.status_code)
        assert res.json_body == {"error": "JSON body nested too deep"}
    res = raw.request("POST", "/users", data={"user": "[" * 100_000}, headers=basic("calvin", "hobbes"))
    assert res.status_code == 400 and "error" in res.json_body


# 7. no password nor token in any error message: tests/test_rules.py, test_secret_parameters_never_echoed


# 8. statement_timeout and lock_timeout (server.conf): real timeouts through the app, JSON
# answers, never a 500; the row held by the test's own transaction (tests/race.py)
@in_process_only
def test_database_timeouts_answered(api):
    from app import app

    if app.config["ANODB"]["db"] != "psycopg":
        pytest.skip("statement_timeout and lock_timeout are PostgreSQL's (server.conf)")
    name = unique("Busy")
    sid = api.post("/stuff", 201, login=None, data={"stuff": name}).json["sid"]
    driver, conn = race.database()
    try:
        race.queries(driver).upd_stuff_sid(conn, sid=sid, stuff=unique("Busy"), version=None)  # uncommitted
        base = app.config["ANODB"]["conn"]
        with app_database(base + " options='-c lock_timeout=100'"):
            res = api.put(f"/stuff/{sid}", 503, login=None, data={"stuff": unique("Busy")})
            assert res.json == {"error": "the data is busy, please retry"} and res.headers["Retry-After"] == "1"
        with app_database(base + " options='-c lock_timeout=0 -c statement_timeout=100'"):
            res = api.put(f"/stuff/{sid}", 400, login=None, data={"stuff": unique("Busy")})
            assert res.json == {"error": "this request ran too long: use a more selective filter"}
    finally:
        conn.rollback()
        conn.close()
    assert api.get(f"/stuff/{sid}", 200, login=None).json == {"sid": sid, "stuff": name}
    api.delete(f"/stuff/{sid}", 204, login=None)


#
# issue 20, point 3: guessing bounded per login, whatever the number of addresses
#


# IPv6 clients count by /64: anyone with a /64 has 2^64 addresses
def test_ipv6_counted_by_64(api):
    login, password, uid = register(api, "victim", "right-password")
    prefix = f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    for i in range(1, LIMIT + 1):  # one failure from each of 5 addresses of one /64
        fail(api.from_address(f"{prefix}::{i:x}"), login, 1)
    res = api.from_address(f"{prefix}::6").get("/whoami", 429, login=None, headers=basic(login, password))
    assert res.json == REFUSAL and int(res.headers["Retry-After"]) >= 1
    # an IPv4 client, or another /64, is another client
    assert api.get("/whoami", 200, login=None, headers=basic(login, password)).json == login
    other = api.from_address(f"2001:db8:ffff:{uuid.uuid4().hex[:4]}::1")
    assert other.get("/whoami", 200, login=None, headers=basic(login, password)).json == login
    api.delete(f"/users/{uid}", 204, login="calvin")


@in_process_only
def test_ipv6_spraying_counted_by_64(api):
    prefix = f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    with app_config(KIVA_THROTTLE_ADDRESS_FAILURES=3):
        for i in range(3):
            fail(api.from_address(f"{prefix}::{i + 1:x}"), unique("random"), 1)
        res = api.from_address(f"{prefix}:ffff::1").get("/whoami", 429, login=None, headers=basic("hobbes", "susie"))
        assert res.json == REFUSAL


BUDGET = 8  # failed checks of one login from clients that never logged in, per day (test value)


def device_client(login: str, password: str):
    """A client (its own cookie jar, its own address) that logged in once: a device of the owner."""
    device = Raw()
    res = device.request("GET", "/login", headers=basic(login, password))
    assert res.status_code == 200 and "kiva_device=" in res.headers["Set-Cookie"], res.headers
    assert "HttpOnly" in res.headers["Set-Cookie"] and "SameSite=Strict" in res.headers["Set-Cookie"]
    return device, res.json_body


# the guesses against one login are capped, from any number of addresses; its owner keeps
# access with a device that logged in before (device cookie) or a token obtained before
@in_process_only
def test_guesses_per_login_capped_whatever_the_addresses(api):
    login, password, uid = register(api, "victim", "right-password")
    device, token = device_client(login, password)
    with app_config(KIVA_THROTTLE_LOGIN_BUDGET=BUDGET):
        guesses = refused = 0
        for _ in range(BUDGET):  # fresh addresses, 4 guesses each: never the per-address limit
            attacker = Raw()
            for _ in range(LIMIT - 1):
                res = attacker.request("GET", "/whoami", headers=basic(login, unique("guess")))
                guesses += res.status_code == 401
                refused += res.status_code == 429
        assert (guesses, refused) == (BUDGET, BUDGET * (LIMIT - 1) - BUDGET)
        # a fresh address with the right password: refused too (the attacker cannot tell),
        # for about a day (the budget's window)
        res = Raw().request("GET", "/whoami", headers=basic(login, password))
        assert res.status_code == 429 and res.json_body == REFUSAL
        assert 86400 - 600 <= int(res.headers["Retry-After"]) <= 86400
        # the owner: their device still logs in, and so does a token obtained before
        res = device.request("GET", "/whoami", headers=basic(login, password))
        assert res.status_code == 200 and res.json_body == login
        assert api.get("/whoami", 200, login=None, headers=bearer(token)).json == login
        # a device cookie of another login, or a forged one, is no device of this login
        other, _ = device_client("hobbes", SEED_PASSWORDS["hobbes"])
        assert other.request("GET", "/whoami", headers=basic(login, password)).status_code == 429
        forged = Raw()
        forged.client.set_cookie("kiva_device", f"{login}.forged.signature")
        assert forged.request("GET", "/whoami", headers=basic(login, password)).status_code == 429
    api.delete(f"/users/{uid}", 204, login="calvin")


# a device cookie gives its own few guesses, not the budget, and dies with the password
@in_process_only
def test_device_cookie_bounded_and_revoked(api):
    login, password, uid = register(api, "victim", "right-password")
    device, _ = device_client(login, password)
    with app_config(KIVA_THROTTLE_LOGIN_BUDGET=1, KIVA_THROTTLE_FAILURES=100):
        assert Raw().request("GET", "/whoami", headers=basic(login, "guess-1")).status_code == 401
        assert Raw().request("GET", "/whoami", headers=basic(login, "guess-2")).status_code == 429  # budget spent
        for i in range(LIMIT):  # the device's own failures: its own limit (a stolen cookie)
            res = device.request(
                "GET", "/whoami", headers={**basic(login, f"typo-{i}"), "X-Forwarded-For": new_address()}
            )
            assert res.status_code == 401, i
        res = device.request("GET", "/whoami", headers={**basic(login, password), "X-Forwarded-For": new_address()})
        assert res.status_code == 429 and res.json_body == REFUSAL
    # a password change: the device cookies of the login die (a thief's device with them)
    device, _ = device_client(login, password)
    api.patch(f"/users/{uid}", 204, login="calvin", data={"password": "new-password"})
    with app_config(KIVA_THROTTLE_LOGIN_BUDGET=1):
        res = device.request(
            "GET", "/whoami", headers={**basic(login, "new-password"), "X-Forwarded-For": new_address()}
        )
        assert res.status_code == 429, res.json_body  # the budget is spent: no device any more
    api.delete(f"/users/{uid}", 204, login="calvin")
