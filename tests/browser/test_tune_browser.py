"""The Tune page in a real Chromium: a small study on the bundled yeast_me2 sample, its trials appearing in the live
table as the job runner's worker finishes them, and the best configuration sent to the Train grid."""

import re

import pytest

from tests.browser.test_train_browser import _choose, _set_number

pytestmark = pytest.mark.browser


def test_a_study_from_the_page_and_its_best_in_the_train_grid(app_url, page):
    from playwright.sync_api import expect

    page.goto(f"{app_url}/tune?dataset=yeast_me2&task=table&split=stratified")
    expect(page.get_by_role("heading", name="Tune", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Start")).to_be_enabled(timeout=60_000)
    _choose(page, "Model", re.compile(r"^logreg"))
    _set_number(page, "Trials", 2)
    _set_number(page, "Epochs per trial (at most)", 1)
    _set_number(page, "Processes sharing the study", 1)
    name = page.get_by_label("Study name (an existing one is continued)")
    name.fill("browser-study")
    name.press("Enter")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Start").click()

    # the live fragment polls the study every 2 s while its worker process runs or waits for a slot
    expect(page.get_by_text(re.compile(r"Worker processes: 1 running|0 of 2 trials ended|1 of 2 trials ended"))
           .first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("2 of 2 trials ended")).to_be_visible(timeout=240_000)
    expect(page.get_by_text(re.compile(r"^2 trials: 2 complete"))).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name=re.compile("Continue this study: 2 more trials"))).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Send the best 3 to the Train grid").click()
    expect(page.get_by_text("The best configurations are in the Train page's grid.")).to_be_visible(timeout=30_000)

    page.get_by_role("link", name="Train").first.click()
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible(timeout=60_000)
    picker = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Strategies to compare")
    expect(picker.get_by_text(re.compile(r"^SMOTE \(smote\)"))).to_be_visible(timeout=60_000)
    assert page.get_by_text("Traceback").count() == 0
