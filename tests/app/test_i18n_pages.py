"""Every page in 简体中文 (``?lang=zh``) under AppTest: Chinese headings, no English UI text left, and the
language kept across page switches and chosen from the sidebar without leaving the page."""

from __future__ import annotations

import re
import string

import pytest
from babel.messages.pofile import read_po
from streamlit.testing.v1 import AppTest

from recexp.i18n import catalog_path
from recexp.ui.i18n import SWITCH_KEY

from tests.app.conftest import APP, LAB_PREVIEW_ROWS

CJK = re.compile(r"[\u4e00-\u9fff]")
PAGES = ["data", "imbalance", "strategy_lab", "train", "compare", "importance", "tune"]
#: The heading each page shows in Chinese.
TITLES = {"data": "数据", "imbalance": "不平衡", "strategy_lab": "策略实验室", "train": "训练", "compare": "比较",
          "importance": "重要性", "tune": "调参"}


@pytest.fixture(scope="module")
def english_texts() -> set[str]:
    """Catalog messages a page shows as they are (no placeholder) whose Chinese differs from the English."""
    with catalog_path("zh").open("rb") as po:
        catalog = read_po(po, locale="zh_CN")
    texts = set()
    for message in catalog:
        if not message.id or isinstance(message.id, tuple):
            continue
        has_field = any(name is not None for _, name, _, _ in string.Formatter().parse(message.id))
        if not has_field and message.string != message.id and re.search("[A-Za-z]{3,}", message.id):
            texts.add(message.id)
    return texts


def _elements(node):
    children = getattr(node, "children", None)
    for child in (children.values() if isinstance(children, dict) else children or []):
        yield child
        yield from _elements(child)


def shown_texts(at: AppTest) -> list[str]:
    """Every text a person reads on the page and in the sidebar: bodies, labels, help texts, placeholders."""
    texts = []
    for element in _elements(at._tree):
        proto = getattr(element, "proto", None)
        if proto is None or not hasattr(proto, "ListFields"):
            continue
        for field, value in proto.ListFields():
            if field.name in ("body", "label", "help", "placeholder") and isinstance(value, str) and value:
                texts.append(value)
    return texts


@pytest.fixture(scope="module")
def finished_home(tmp_path_factory, yeast_grid):
    """A workspace with one finished experiment (3 strategies x 3 seeds), for Compare and Importance."""
    home = tmp_path_factory.mktemp("i18n_workspace")
    yeast_grid.build(home, "i18n: 3 strategies x 3 seeds")
    return home


def open_in(language: str, page: str) -> AppTest:
    """A session opened with ``?lang=language`` (a link, or a reload), then moved to ``page``."""
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.query_params["lang"] = language
    at.run()
    assert not at.exception, at.exception
    if page != "data":
        at.switch_page(f"pages/{page}.py")
        at.run()
        assert not at.exception, at.exception
    if page == "strategy_lab":
        at.number_input(key="lab_rows").set_value(LAB_PREVIEW_ROWS).run()
        assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_in_chinese(page, english_texts, finished_home, tmp_path, monkeypatch):
    if page in ("compare", "importance"):
        monkeypatch.setenv("RECEXP_HOME", str(finished_home))
    if page == "tune":                                     # an empty workspace: no study yet
        monkeypatch.setenv("RECEXP_HOME", str(tmp_path))
        monkeypatch.delenv("RECEXP_OPTUNA_STORAGE", raising=False)
    at = open_in("zh", page)
    assert at.title[0].value == TITLES[page]
    assert at.query_params["lang"] == "zh"
    headings = [h.value for h in [*at.title, *at.subheader]]
    assert all(CJK.search(h) for h in headings), headings
    left_in_english = sorted({text for text in shown_texts(at) if text in english_texts})
    assert not left_in_english, left_in_english
    assert sum(bool(CJK.search(t)) for t in shown_texts(at)) >= 5


def test_the_check_sees_english_where_the_page_is_english(english_texts):
    at = open_in("en", "data")
    assert at.title[0].value == "Data" and "lang" not in at.query_params          # English: no parameter
    assert {"Data", "Preview", "Validation report", "Rows read", "Language"} <= set(shown_texts(at)) & english_texts
    at.switch_page("pages/imbalance.py")
    at.run()
    assert {"Imbalance", "Imbalance ratio", "Log scale"} <= set(shown_texts(at)) & english_texts


def test_switching_the_language_keeps_the_page_and_the_url():
    # Under AppTest only a session's first run goes through app.py (later runs run the page alone), so the
    # switch is used on the page that run shows and the URL it writes is checked in Chromium
    # (tests/browser/test_language_browser.py, which also switches on another page and reloads).
    at = open_in("en", "data")
    assert at.segmented_control(key=SWITCH_KEY).value == "en" and at.title[0].value == "Data"
    at.segmented_control(key=SWITCH_KEY).set_value("zh").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "数据" and [s.value for s in at.subheader][:2] == ["预览", "校验报告"]
    at.switch_page("pages/imbalance.py")
    at.run()
    assert at.title[0].value == "不平衡"
    assert [m.label for m in at.metric][:2] == ["类别数", "不平衡比"]
    at.switch_page("pages/train.py")
    at.run()
    assert at.title[0].value == "训练"


def test_an_unknown_language_in_the_link_means_english():
    at = open_in("fr", "data")
    assert at.title[0].value == "Data" and "lang" not in at.query_params
