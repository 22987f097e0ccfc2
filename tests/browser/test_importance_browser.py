"""The Importance page in a real Chromium: a finished run, a method picked, its distributions and end rows."""

import re
from dataclasses import replace

import pytest

from recexp.spec import RunSpec, prepare_data
from recexp.jobs import execute
from recexp.runs import SQLiteRunStore

pytestmark = pytest.mark.browser

BASE = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
               model="logreg", strategy="random_over",
               train={"epochs": 2, "learning_rate": 0.05, "batch_size": 256, "device": "cpu"})


@pytest.fixture(scope="module")
def served_run(app_url, tmp_path_factory):
    """A finished over-sampled run, written into the served app's workspace (its newest finished run)."""
    homes = sorted(tmp_path_factory.getbasetemp().glob("browser_workspace*"))
    assert homes, "the app_url fixture's workspace was not found"
    store = SQLiteRunStore(homes[-1])
    data = prepare_data(BASE)
    spec = replace(BASE, fingerprint=data[0].fingerprint)
    run = store.create_run(store.create_experiment("browser: importance").id, spec.to_dict(),
                           name="importance source", status="running")
    execute(spec, store, run.id, data=data)
    return run.id


def test_importance_page_in_the_browser(app_url, page, served_run):
    from playwright.sync_api import expect

    page.goto(f"{app_url}/importance")
    expect(page.get_by_role("heading", name="Importance", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_text(f"importance source · {served_run[:6]}").first).to_be_visible(timeout=60_000)

    page.locator('[data-testid="stSelectbox"]').filter(has_text="Method").first.click()
    page.get_by_role("option", name="Forgetting events").click()
    expect(page.get_by_text(re.compile(r"^Forgetting events\.")).first).to_be_visible(timeout=60_000)

    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts.first.locator(".main-svg").first).to_be_attached(timeout=120_000)
    expect(page.locator(".gtitle", has_text="Values per class, real vs synthetic rows").first).to_be_attached()
    expect(page.locator('[data-testid="stPlotlyChart"] .boxlayer .trace').first).to_be_attached()
    # the top / bottom table: the grid draws on a canvas, its header cells stay in the DOM
    table = page.locator('[data-testid="stDataFrame"]').filter(has=page.locator("th", has_text="mean_loss"))
    expect(table.first).to_be_attached(timeout=60_000)
    expect(table.first.locator("th", has_text="source_row").first).to_be_attached()
    expect(page.get_by_role("heading", name="Rows at both ends")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Prune the synthetic rows"))).to_be_visible(timeout=60_000)
    assert page.get_by_text("Traceback").count() == 0
