"""Real-browser fixtures: the dashboard served by `streamlit run`, and a page in Debian's Chromium.

Tests here skip only where /usr/bin/chromium is absent (`.ci/run` installs it). No browser is ever
downloaded: Playwright drives the system Chromium through `executable_path`.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(items):
    skip = pytest.mark.skip(reason="needs Debian's Chromium at /usr/bin/chromium")
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(workspace: Path, **env: str):
    """The dashboard served by ``streamlit run`` on a free port with ``workspace`` as RECEXP_HOME and ``env``
    added to this process's environment; yields its URL and stops it after."""
    port = _free_port()
    env = {**os.environ, "RECEXP_HOME": str(workspace), "PYTHONPATH": str(ROOT), **env}
    log = open(workspace / "streamlit.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        raise RuntimeError(f"streamlit did not start; see {workspace / 'streamlit.log'}")
    try:
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """Start the dashboard once per session on a free port with its own workspace; yield its URL."""
    with serve(tmp_path_factory.mktemp("browser_workspace")) as url:
        yield url


@pytest.fixture
def new_page():
    """``new_page()``: a Chromium page (1400x1000) in a browser context of its own, as another browser
    would open it (a reload test's colleague opening a link)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        contexts = []

        def open_page():
            contexts.append(browser.new_context(viewport={"width": 1400, "height": 1000}))
            return contexts[-1].new_page()

        yield open_page
        for context in contexts:
            context.close()
        browser.close()


@pytest.fixture
def page(new_page):
    """A fresh Chromium page (1400x1000)."""
    return new_page()


@pytest.fixture
def lab_on_300_rows(app_url, page):
    """The Strategy Lab open in ``page`` with its preview on a stratified sample of at most 300 training rows."""
    import re

    from playwright.sync_api import expect

    page.goto(f"{app_url}/strategy_lab")
    expect(page.get_by_role("heading", name="Strategy Lab", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Training rows after")).to_be_visible(timeout=60_000)
    rows = page.get_by_role("spinbutton", name="Preview on at most this many training rows")
    rows.fill("300")
    rows.press("Enter")
    expect(page.get_by_text(re.compile(r"Preview on a stratified sample of \d+ of"))).to_be_visible(timeout=60_000)
    return page
