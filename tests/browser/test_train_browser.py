"""The Train page in a real Chromium: launch a run and watch it finish."""

import re

import pytest

pytestmark = pytest.mark.browser


def _choose(page, label: str, option: re.Pattern) -> None:
    """Pick ``option`` in the selectbox labelled ``label``; a rerun that closes the list mid-way is retried."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    for _ in range(3):
        box.click()
        try:
            page.get_by_role("option", name=option).click(timeout=10_000)
            return
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    raise AssertionError(f"could not choose {option.pattern!r} in {label!r}")


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")


def test_launch_a_run_and_see_it_finish(app_url, page):
    from playwright.sync_api import expect

    page.goto(f"{app_url}/train")
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name=re.compile("Launch"))).to_be_enabled(timeout=60_000)

    _choose(page, "Model", re.compile(r"^logreg"))
    _set_number(page, "Seeds per strategy", 1)
    _set_number(page, "Epochs (at most)", 1)
    page.wait_for_timeout(500)
    page.get_by_role("button", name=re.compile("Launch")).click()

    # the live fragment polls the run store every second until the run ends
    expect(page.get_by_text(re.compile(r"1 (queued|running|finished)")).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("1 finished")).to_be_visible(timeout=180_000)
    expect(page.get_by_text(re.compile(r"Device used: cpu"))).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible(timeout=30_000)
    assert page.get_by_text("failed").count() == 0
