"""The main flow in a real Chromium: the bundled sample opens by itself, an uploaded log becomes the
active dataset, and the Imbalance page draws its charts."""

import re

from playwright.sync_api import expect


def test_sample_opens_then_upload_and_see_imbalance(app_url, page, retailrocket_csv):
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("80,106").first).to_be_visible(timeout=60_000)          # Taobao rows kept

    page.goto(f"{app_url}/imbalance")
    expect(page.get_by_text("43.0 : 1")).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible(timeout=30_000)

    page.goto(app_url)
    page.get_by_text("Upload a file").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(retailrocket_csv))
    expect(page.get_by_text("2,771").first).to_be_visible(timeout=60_000)            # RetailRocket rows kept
    page.get_by_role("button", name="Use this dataset").click()
    expect(page.get_by_text(re.compile(r"Active: .*events_sample\.csv"))).to_be_visible(timeout=60_000)
    sidebar = page.locator('[data-testid="stSidebar"]')         # updated by the same click, not the next one
    expect(sidebar).to_contain_text("Dataset: events_sample.csv", timeout=10_000)
    expect(sidebar).not_to_contain_text("UserBehavior_sample.csv")

    page.get_by_role("link", name="See how imbalanced it is").click()
    expect(page.get_by_role("heading", name="Imbalance", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Minority class")).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible(timeout=30_000)
    assert page.get_by_text("Traceback").count() == 0
