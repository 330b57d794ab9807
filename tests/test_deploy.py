"""Tokens across server processes: behind Apache, mod_wsgi spreads requests over
several daemon processes, which must all accept a token made by any of them, so
they share the secret (kiva.env). Concurrent requests reach more than one process.
"""

import datetime
import hashlib
import os

import pytest
from conftest import EXTERNAL


def token(login: str, secret: str, realm: str = "kiva") -> str:
    """A FlaskSimpleAuth token "realm:login:limit:signature", signed as the server does."""
    limit = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=10)
    data = f"{realm}:{login}:{limit:%Y%m%d%H%M%S}"
    return f"{data}:{hashlib.blake2s(f'{data}:{secret}'.encode()).digest()[:16].hex()}"


@pytest.mark.skipif(not EXTERNAL or "APP_SECRET" not in os.environ, reason="a live server and its secret")
def test_token_on_every_process():
    import concurrent.futures

    import requests

    url = os.environ["FLASK_TESTER_APP"] + "/version"
    headers = {"Authorization": f"Bearer {token('calvin', os.environ['APP_SECRET'])}"}

    def whoami(_):
        with requests.Session() as session:
            res = session.get(url, headers=headers, timeout=30)
            return res.status_code, res.json().get("user")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(whoami, range(32)))
    assert answers == [(200, "calvin")] * 32
