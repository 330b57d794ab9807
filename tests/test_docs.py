"""GET /docs: the documentation page and its files, served by Kiva; then the page in a real browser.

The browser test drives Debian's headless Chromium with selenium against a live server
(make test-ext, and under Apache's /api prefix in make test-apache): the page loads
offline (no request leaves the server), shows every operation of /openapi.json, and
"Try it out" → "Execute" on GET /version shows the server's 200 answer.
"""

import os
import re
import shutil
import tempfile
import urllib.parse

import pytest
from helpers import EXTERNAL

CHROMIUM = os.environ.get("KIVA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KIVA_CHROMEDRIVER", "/usr/bin/chromedriver")


def test_docs_page_points_to_its_files_and_the_document(api):
    res = api.get("/docs", 200, login=None)
    assert res.headers["Content-Type"] == "text/html; charset=utf-8"
    # a Content-Security-Policy: scripts from here only (none inline, no eval), never framed
    policy = {d.split()[0]: d.split()[1:] for d in res.headers["Content-Security-Policy"].split("; ")}
    assert policy["default-src"] == ["'none'"] and policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and res.headers["X-Frame-Options"] == "DENY"
    page = res.data.decode()
    prefix = urllib.parse.urlparse(os.environ["FLASK_TESTER_APP"]).path.rstrip("/") if EXTERNAL else ""
    assert f'data-url="{prefix}/openapi.json"' in page
    files = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(files) == 5 and all(f.startswith(prefix + "/docs/") for f in files), files
    assert "http" not in page  # nothing from elsewhere: no CDN
    assert "<script>" not in page  # no inline script
    for path in files:
        asset = api.get(path.removeprefix(prefix), 200, login=None)
        kind = {"css": "text/css", "js": "text/javascript", "png": "image/png"}[path.rsplit(".", 1)[1]]
        assert asset.headers["Content-Type"].split(";")[0] == kind
        assert len(asset.data) > 100


def test_docs_unknown_file_is_a_json_404(api):
    res = api.get("/docs/secret.txt", 404, login=None)
    assert res.json == {"error": "no such file: secret.txt"}
    res = api.get("/docs/app.py", 404, login=None)  # only the page's files, nothing of the project
    assert res.json == {"error": "no such file: app.py"}


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), "Debian's chromium and chromium-driver"
    profile = tempfile.mkdtemp(prefix="kiva-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [
        "--headless",
        "--no-sandbox",  # as root in CI
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        f"--user-data-dir={profile}",
    ]:
        options.add_argument(flag)
    # the console's messages: a resource refused by the Content-Security-Policy shows there
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(not EXTERNAL, reason="a browser needs a live server")
def test_docs_in_a_real_browser(api, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    base = os.environ["FLASK_TESTER_APP"].rstrip("/")
    document = api.get("/openapi.json", 200, login=None).json
    expected = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    wait = WebDriverWait(browser, 30)
    browser.get(base + "/docs")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    # every operation of the document is on the page (Swagger UI shows each tag open)
    shown = set()
    for block in browser.find_elements(By.CSS_SELECTOR, ".opblock"):
        method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.strip()
        path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
        shown.add((method, path))
    assert shown == expected
    # GET /version: "Try it out", "Execute", and the server's answer on the page
    version = browser.find_element(By.ID, "operations-service-get_version")
    version.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait.until(lambda _: version.find_elements(By.CSS_SELECTOR, ".try-out__btn"))[0].click()
    wait.until(lambda _: version.find_elements(By.CSS_SELECTOR, ".execute"))[0].click()
    answer = ".live-responses-table .response"  # the server's answer, below the request
    status = wait.until(lambda _: version.find_elements(By.CSS_SELECTOR, f"{answer} .response-col_status"))
    assert status[0].text.strip() == "200"
    body = version.find_element(By.CSS_SELECTOR, f"{answer} .response-col_description pre").text
    assert '"app": "kiva"' in body and '"version"' in body
    # the request went to this server, under its prefix, and nowhere else
    url = version.find_element(By.CSS_SELECTOR, ".request-url pre").text
    assert url == base + "/version"
    browser.execute_script("arguments[0].scrollIntoView()", version)
    shot = os.environ.get("KIVA_DOCS_SCREENSHOT") or str(tmp_path / "docs.png")
    assert browser.save_screenshot(shot)
    # the page works under its Content-Security-Policy: nothing was refused
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []
