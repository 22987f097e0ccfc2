"""A log larger than memory in a real Chromium (issue #22): the Data page does not load it, builds its
dataset on disk in a background process while the page refreshes the progress by itself, a reload finds the
finished build, and the Imbalance page shows the raw and the sampled class mix. The server runs with a 1 MB
memory setting, so a 12,000-event synthetic log is "large"."""

import re

import pytest
from playwright.sync_api import expect

from recexp.data.synthetic import generate_log
from tests.browser.conftest import serve


@pytest.fixture(scope="module")
def large_app(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("large_log_workspace")
    log = workspace / "data" / "big.csv"                 # the workspace's data folder is a data root
    log.parent.mkdir()
    generate_log(12_000, seed=0).to_csv(log, index=False)
    with serve(workspace, RECEXP_MEMORY_LIMIT="1MB") as url:
        yield url, log


def test_a_large_log_is_built_on_disk_in_the_background(large_app, page):
    url, log = large_app
    page.goto(url)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=60_000)
    page.get_by_text("File on the server").click()
    path = page.get_by_role("textbox", name="Path of a file or a folder of same-layout files on the server")
    path.fill(str(log))
    path.press("Enter")
    expect(page.get_by_text(re.compile("big.csv is too large to load here"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Validation report")).to_have_count(0)

    page.get_by_text("Sampling (large logs)").click()
    rate = page.get_by_role("spinbutton", name="Majority class kept (share)")
    rate.fill("0.50")
    rate.press("Enter")
    page.get_by_role("button", name="Build on disk").click()
    expect(page.get_by_text(re.compile(r"Building on disk: |waits for a free slot"))).to_be_visible(timeout=30_000)
    # nothing is clicked from here on: the page's own refresh shows the progress, then the result
    expect(page.get_by_text(re.compile(r"Built on disk in [\d.]+ s: [\d,]+ rows"))).to_be_visible(timeout=90_000)
    expect(page.get_by_text("Rows per part and class")).to_be_visible()
    page.get_by_role("button", name="Use this dataset").click()
    expect(page.get_by_text("Active: big.csv, task behavior, built on disk.")).to_be_visible(timeout=30_000)
    assert "sample.negative_rate=0.5" in page.url

    page.reload()                                         # the same state from the URL and the workspace
    expect(page.get_by_text("Active: big.csv, task behavior, built on disk.")).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"Built on disk in"))).to_be_visible()

    page.get_by_role("link", name="See how imbalanced it is").click()
    expect(page.get_by_role("heading", name="Imbalance", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("heading", name="Raw and sampled class mix")).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible(timeout=30_000)
    assert page.get_by_text("Traceback").count() == 0
