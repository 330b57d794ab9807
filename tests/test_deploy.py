"""Tokens across server processes: behind Apache, mod_wsgi spreads requests over
several daemon processes, which must all accept a token made by any of them, so
they share the secret (kiva.env). Concurrent requests reach more than one process.
"""

import os

import pytest
from conftest import EXTERNAL, forge_token


@pytest.mark.skipif(not EXTERNAL or "APP_SECRET" not in os.environ, reason="a live server and its secret")
def test_token_on_every_process():
    import concurrent.futures

    import requests

    url = os.environ["FLASK_TESTER_APP"] + "/version"
    # issued now (the server's lifetime, 60 min): a token issued before calvin's password
    # was set would be refused
    headers = {"Authorization": f"Bearer {forge_token('calvin')}"}

    def whoami(_):
        with requests.Session() as session:
            res = session.get(url, headers=headers, timeout=30)
            return res.status_code, res.json().get("user")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(whoami, range(32)))
    assert answers == [(200, "calvin")] * 32
