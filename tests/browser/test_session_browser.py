"""A reload in a real Chromium: the uploaded log, its task and its split stay active after a reload, on
another page, and in a new browser (a link sent to a colleague); a link to an unknown dataset says so."""

import re
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``; a rerun that closes the list mid-way is retried."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    for _ in range(3):
        page.get_by_role("combobox", name=label, exact=True).click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=10_000)
            return
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    raise AssertionError(f"could not choose {option!r} in {label!r}")


def _params(page) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(urlparse(page.url).query).items()}


def test_an_upload_survives_a_reload_and_opens_from_a_link(app_url, page, retailrocket_csv, new_page):
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("80,106").first).to_be_visible(timeout=60_000)
    expect(page).to_have_url(re.compile(r"dataset=taobao"), timeout=30_000)

    page.get_by_text("Upload a file").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(retailrocket_csv))
    expect(page.get_by_text("2,771").first).to_be_visible(timeout=60_000)
    _choose(page, "Split", "stratified")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Use this dataset").click()
    active = page.get_by_text(re.compile(r"Active: events_sample\.csv, task behavior: [\d,]+ train"))
    expect(active).to_be_visible(timeout=60_000)
    counts = re.search(r"([\d,]+) train / ([\d,]+) validation / ([\d,]+) test", active.inner_text()).groups()
    expect(page).to_have_url(re.compile(r"dataset=[0-9a-f]{16}"), timeout=30_000)
    params = _params(page)
    assert params["task"] == "behavior" and params["split"] == "stratified"
    assert "events_sample" not in page.url                               # the link names no file

    page.reload()
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar.get_by_text(re.compile(r"Dataset: events_sample\.csv"))).to_be_visible(timeout=60_000)
    assert _params(page) == params
    expect(page.get_by_text(re.compile(r"Every page works on events_sample\.csv \(task behavior, stratified"))) \
        .to_be_visible(timeout=60_000)

    page.goto(f"{app_url}/train?" + "&".join(f"{k}={v}" for k, v in params.items()))
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible(timeout=60_000)
    shown = page.get_by_text(re.compile(r"Data: events_sample\.csv, task behavior"))
    expect(shown).to_be_visible(timeout=60_000)
    assert f"{counts[0]} train / {counts[1]} validation / {counts[2]} test" in shown.inner_text()
    page.get_by_role("link", name="Imbalance").click()                    # Streamlit clears the URL's parameters...
    expect(page.get_by_role("heading", name="Imbalance", exact=True)).to_be_visible(timeout=60_000)
    expect(page).to_have_url(re.compile(r"/imbalance\?.*dataset=" + params["dataset"]), timeout=30_000)  # ...back

    colleague = new_page()                                            # another browser, same link
    colleague.goto(page.url)
    expect(colleague.locator('[data-testid="stSidebar"]').get_by_text(re.compile(r"Dataset: events_sample\.csv")))\
        .to_be_visible(timeout=60_000)
    expect(colleague.get_by_text("Minority class")).to_be_visible(timeout=60_000)

    colleague.goto(f"{app_url}/?dataset=0123456789abcdef")
    expect(colleague.get_by_text(re.compile(r"The link's dataset could not be opened"))).to_be_visible(timeout=60_000)
    expect(colleague).to_have_url(re.compile(r"dataset=taobao"), timeout=30_000)
    assert page.get_by_text("Traceback").count() == 0 and colleague.get_by_text("Traceback").count() == 0
