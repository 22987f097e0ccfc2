"""No page repeats a heading: titles, headers, subheaders, markdown headings and chart titles are all distinct.

Every page is rendered with AppTest on the bundled Taobao sample, in a workspace holding a finished
experiment (3 strategies x 3 seeds on yeast_me2), so Train, Compare and Importance show their full content.
"""

import json
from collections import Counter

import pytest

PAGES = ("data", "imbalance", "strategy_lab", "train", "compare", "importance")


@pytest.fixture(scope="module")
def experiment_home(tmp_path_factory, yeast_grid):
    home = tmp_path_factory.mktemp("headings_workspace")
    yeast_grid.build(home, "headings: 3 strategies x 3 seeds")
    return home


def headings(at) -> list[str]:
    """Every heading the page shows: st.title/header/subheader, markdown headings and chart titles."""
    found = [element.value for kind in (at.title, at.header, at.subheader) for element in kind]
    found += [line.lstrip("#").strip() for m in at.markdown for line in m.value.splitlines() if line.startswith("#")]
    for chart in at.get("plotly_chart"):
        title = json.loads(chart.proto.spec)["layout"].get("title") or {}
        if title.get("text"):
            found.append(title["text"])
    return found


@pytest.mark.parametrize("page", PAGES)
def test_no_two_headings_on_a_page_are_the_same(app, open_page, experiment_home, monkeypatch, page):
    monkeypatch.setenv("RECEXP_HOME", str(experiment_home))
    at = open_page(app, page)
    shown = headings(at)
    assert len(shown) >= (3 if page in ("compare", "importance", "train") else 2), shown   # the page has content
    repeated = [text for text, count in Counter(h.strip().casefold() for h in shown).items() if count > 1]
    assert not repeated, f"{page} repeats {repeated}"
