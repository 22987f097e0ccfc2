"""The language switch in a real Chromium: English <-> 简体中文 from the sidebar on any page, kept in the URL
(``?lang=zh``) across a reload, a page switch and a link opened in another browser; a screenshot of every
page in each language lands in ``$RECEXP_SCREENSHOT_DIR`` (default: a temporary folder) for the CI to keep."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

#: Page path -> its heading in each language.
HEADINGS = {"": ("Data", "数据"), "imbalance": ("Imbalance", "不平衡"), "strategy_lab": ("Strategy Lab", "策略实验室"),
            "train": ("Train", "训练"), "compare": ("Compare", "比较"), "importance": ("Importance", "重要性")}


def _lang(page) -> str | None:
    return parse_qs(urlparse(page.url).query).get("lang", [None])[-1]


def _heading(page, name: str):
    return page.get_by_role("heading", name=name, exact=True)


def test_the_switch_translates_the_page_it_is_on_and_the_url_keeps_it(app_url, page, new_page):
    page.goto(f"{app_url}/imbalance")
    expect(_heading(page, "Imbalance")).to_be_visible(timeout=60_000)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("简体中文", exact=True).click()
    expect(_heading(page, "不平衡")).to_be_visible(timeout=60_000)       # the same page, now in Chinese
    expect(page.get_by_text("不平衡比", exact=True)).to_be_visible(timeout=30_000)
    expect(page).to_have_url(re.compile(r"/imbalance\?.*lang=zh"), timeout=30_000)
    expect(sidebar.get_by_text("语言", exact=True)).to_be_visible()

    page.reload()
    expect(_heading(page, "不平衡")).to_be_visible(timeout=60_000)
    assert _lang(page) == "zh"

    sidebar.get_by_role("link", name="训练").click()                  # Streamlit clears the URL's parameters...
    expect(_heading(page, "训练")).to_be_visible(timeout=60_000)
    expect(page).to_have_url(re.compile(r"/train\?.*lang=zh"), timeout=30_000)   # ...and the app writes it back
    expect(page.get_by_text("English", exact=True)).to_be_visible()

    colleague = new_page()                                              # a link sent to someone else
    colleague.goto(f"{app_url}/compare?lang=zh")
    expect(_heading(colleague, "比较")).to_be_visible(timeout=60_000)
    # the sidebar's switch, not page content: earlier browser tests share this server's workspace and its runs
    expect(colleague.locator('[data-testid="stSidebar"]').get_by_text("语言", exact=True)).to_be_visible(timeout=30_000)

    sidebar.get_by_text("English", exact=True).click()
    expect(_heading(page, "Train")).to_be_visible(timeout=60_000)
    expect(page).not_to_have_url(re.compile(r"lang="), timeout=30_000)     # English, the default: no parameter
    expect(page).to_have_url(re.compile(r"/train\?.*dataset=taobao"))


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    folder = Path(os.environ.get("RECEXP_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_screenshot_of_every_page_in_each_language(app_url, page, screenshot_dir, language):
    column = 0 if language == "en" else 1
    for path, names in HEADINGS.items():
        page.goto(f"{app_url}/{path}?lang={language}")
        expect(_heading(page, names[column])).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1500)                                     # let charts draw
        target = screenshot_dir / f"{path or 'data'}-{language}.png"
        page.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size > 10_000
