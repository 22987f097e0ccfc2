"""Strategy Lab in a real Chromium: pick SMOTE, change a parameter, see the after-counts change; a generator
waits for "Run preview", then shows its quality report."""

import re

from playwright.sync_api import expect


def _rows_after(page) -> int:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Training rows after")
    return int(metric.locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))


def _choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_pick_smote_change_a_parameter_and_see_the_counts_change(app_url, page):
    page.goto(f"{app_url}/strategy_lab")
    expect(page.get_by_role("heading", name="Strategy Lab", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Training rows after")).to_be_visible(timeout=60_000)

    sample = re.compile(r"Preview on a stratified sample of ([\d,]+) of the [\d,]+ training rows")
    caption = page.get_by_text(sample)
    expect(caption).to_be_visible(timeout=60_000)
    first = caption.inner_text()
    rows = page.get_by_role("spinbutton", name="Preview on at most this many training rows")
    rows.fill("300")
    rows.press("Enter")
    expect(caption).not_to_have_text(first, timeout=60_000)
    preview_rows = int(sample.search(caption.inner_text()).group(1).replace(",", ""))
    assert preview_rows < 1000
    assert _rows_after(page) == preview_rows                                 # the baseline changes nothing

    _choose(page, "Strategy", "SMOTE (smote) · balancing")
    expect(page.get_by_role("spinbutton", name="K neighbors")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("copied from each new row's seed row")).to_be_visible(timeout=60_000)  # item ids
    after = page.locator('[data-testid="stMetric"]').filter(has_text="Training rows after")
    expect(after.locator('[data-testid="stMetricValue"]')).not_to_have_text(f"{preview_rows:,}", timeout=60_000)
    every_class_filled = _rows_after(page)
    assert every_class_filled > preview_rows
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible(timeout=30_000)

    _choose(page, "Sampling strategy (preset)", "minority: the smallest class only")
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Training rows after")
           .locator('[data-testid="stMetricValue"]')).not_to_have_text(f"{every_class_filled:,}", timeout=60_000)
    only_smallest = _rows_after(page)
    assert preview_rows < only_smallest < every_class_filled

    k = page.get_by_role("spinbutton", name="K neighbors")
    k.fill("400")
    k.press("Enter")
    expect(page.get_by_text(re.compile(r"k_neighbors=400 needs at least 401 rows"))).to_be_visible(timeout=60_000)
    expect(page.get_by_role("combobox", name="Strategy", exact=True)).to_be_visible()   # the page keeps working
    assert page.get_by_text("Traceback").count() == 0


def test_pick_a_generator_and_see_its_quality_report(lab_on_300_rows):
    page = lab_on_300_rows
    strategy = page.get_by_role("combobox", name="Strategy", exact=True)
    strategy.click()
    strategy.press_sequentially("vae")                       # the long list is virtualised: search it first
    page.get_by_role("option", name="Conditional VAE (vae) · synthesis", exact=True).click()
    epochs = page.get_by_role("spinbutton", name="Epochs")
    expect(epochs).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"for 10 epochs takes about"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Training rows after")).to_have_count(0, timeout=60_000)   # nothing fitted yet
    epochs.fill("3")
    epochs.press("Enter")
    expect(page.get_by_text(re.compile(r"for 3 epochs takes about"))).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Run preview").click()
    expect(page.get_by_role("heading", name="Synthesis report", exact=True)).to_be_visible(timeout=120_000)
    expect(page.get_by_text(re.compile(r"The checkpoint of epoch [123] is the one kept"))).to_be_visible(timeout=120_000)
    for label in ("Quality score", "Detection AUC"):
        metric = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True))
        assert 0.0 <= float(metric.locator('[data-testid="stMetricValue"]').inner_text()) <= 1.0, label
    # class counts, column histogram, heat map, training curves, projection, distributions
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(6, timeout=60_000)
    assert page.get_by_text("Traceback").count() == 0
