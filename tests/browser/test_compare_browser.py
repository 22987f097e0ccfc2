"""The Compare page and the HTML report in a real Chromium."""

import re

import pytest

from recexp.compare import compare, sample_losses

pytestmark = pytest.mark.browser

EXPERIMENT = "browser: 3 strategies x 3 seeds"


@pytest.fixture(scope="module")
def served_store(app_url, tmp_path_factory, yeast_grid):
    """The experiment, written into the workspace the served app reads (the newest experiment there)."""
    homes = sorted(tmp_path_factory.getbasetemp().glob("browser_workspace*"))
    assert homes, "the app_url fixture's workspace was not found"
    return yeast_grid.build(homes[-1], EXPERIMENT)


def test_compare_page_in_the_browser(app_url, page, served_store):
    from playwright.sync_api import expect

    page.goto(f"{app_url}/compare")
    expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"9 runs · 3 strategies"))).to_be_visible(timeout=120_000)
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=30_000)
    # the verdict on the primary score, one sentence per strategy, from the seed-level test
    expect(page.get_by_role("heading", name="Verdict on PR-AUC of 1")).to_be_visible()
    expect(page.get_by_text(re.compile(r"\(Holm-adjusted p = [\d.e-]+, 3 seeds\)"))).to_have_count(2)
    # the grid draws on a canvas; its header cells stay in the DOM for accessibility
    expect(page.locator('[data-testid="stDataFrame"] th', has_text="Δ random_over").first).to_be_attached()
    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(10, timeout=60_000)
    for i in range(10):
        charts.nth(i).scroll_into_view_if_needed()
        expect(charts.nth(i).locator(".main-svg").first).to_be_attached(timeout=30_000)
    expect(page.get_by_text(re.compile(r"captures [\d.]+ '1' rows per 1,000 rows scored")).first).to_be_visible()
    assert page.get_by_text("Traceback").count() == 0


def test_html_report_opens_offline_with_its_charts(page, served_store, tmp_path_factory):
    store = served_store
    comparison = compare(store, experiment=EXPERIMENT, n_bootstrap=200)
    path = tmp_path_factory.mktemp("report") / "comparison.html"
    comparison.to_html(path, epoch_metrics=store.epoch_metrics(list(comparison.per_run["run_id"])),
                       sample_losses=sample_losses(store, comparison))
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=re.compile("browser: 3 strategies"))).to_be_visible(timeout=30_000)
    graphs = page.locator(".plotly-graph-div")
    expect(graphs).to_have_count(10, timeout=30_000)
    for i in range(10):
        expect(graphs.nth(i).locator(".main-svg").first).to_be_attached(timeout=30_000)
    assert page.locator(".plotly-graph-div .bars, .plotly-graph-div .hm, .plotly-graph-div .scatterlayer").count() > 0
    assert [url for url in requests if not url.startswith("file://")] == []      # nothing fetched from the network
    expect(page.get_by_text("In business terms")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("Verdicts on PR-AUC of 1"))).to_be_visible()
