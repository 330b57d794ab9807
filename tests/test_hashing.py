"""The bcrypt work of password checks and hashes (issue 20, points 2 and 9).

- A stored hash cheaper than the configured cost is rehashed at the next successful
  password check: after one login of its owner, a known login answers a wrong password
  as late as an unknown login does (no enumeration by timing).
"""

import os
import tempfile

import pytest
from helpers import EXTERNAL, basic, other_app, register

in_process_only = pytest.mark.skipif(EXTERNAL, reason="re-creates the app with another configuration: in-process only")

# the cost of the re-created app: a check then takes a few tens of ms against about 1 ms at
# the test configuration's cost 4, well above a request's own time in-process
HIGHER_COST = 10


@pytest.fixture
def costlier_config():
    """A configuration file: the test one with a higher bcrypt cost, and throttling out of
    the way (the test sends many wrong passwords on purpose)."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="kiva-test-cost-", delete=False) as conf:
        base = os.path.abspath(os.environ["APP_CONFIG"])
        conf.write(  # __file__: the test configuration finds its files (queries.sql…) beside it
            f"__file__ = {base!r}\nexec(open(__file__).read())\n"
            f'FSA_PASSWORD_OPTS = {{"rounds": {HIGHER_COST}}}\n'
            "KIVA_THROTTLE_FAILURES = 10**6\nKIVA_THROTTLE_ADDRESS_FAILURES = 10**6\n"
            "KIVA_THROTTLE_LOGIN_BUDGET = 10**6\n"
        )
    yield conf.name
    os.unlink(conf.name)


@in_process_only
def test_cheap_hash_rehashed_at_login(api, costlier_config):
    login, password, uid = register(api, "cheap", "right-password")  # cost 4, the test configuration's
    timings = other_app(
        f"""
        import base64, statistics, time, uuid
        def basic(user, pw):
            return {{"Authorization": "Basic " + base64.b64encode(f"{{user}}:{{pw}}".encode()).decode()}}
        def wrong(user):
            start = time.perf_counter()
            res = client.get("/whoami", headers={{**basic(user, "wrong-password"), "X-Forwarded-For": "10.9.9.9"}})
            assert res.status_code == 401, res.status_code
            return time.perf_counter() - start
        def medians():
            known, unknown = [], []
            for _ in range(7):
                known.append(wrong({login!r}))
                unknown.append(wrong("nobody-" + uuid.uuid4().hex[:10]))
            return statistics.median(known), statistics.median(unknown)
        before = medians()
        out(client.get("/whoami", headers=basic({login!r}, {password!r})))
        after = medians()
        results.append([before, after])
        """,
        APP_CONFIG=costlier_config,
    )
    assert timings[0] == [200, login]
    (known_before, unknown_before), (known_after, unknown_after) = timings[1]
    # a cost-4 hash against the unknown login's cost-10 one: 64 times less work
    assert known_before < unknown_before / 2, timings
    # one login later, the stored hash has the configured cost: the gap is closed
    assert known_after > unknown_after / 2, timings
    # and the password still works, from the suite's app too (its cost is 4: no rehash back)
    assert api.get("/whoami", 200, login=None, headers=basic(login, password)).json == login
    api.delete(f"/users/{uid}", 204, login="calvin")
