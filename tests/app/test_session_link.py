"""The active dataset, task and split live in the page's URL: a reload (a new session with the same query
parameters), a bookmark or a colleague's link opens the same state, and a link that cannot be opened says
why and falls back to the bundled sample."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP


def _reload(at: AppTest, page: str) -> AppTest:
    """A new session (a browser reload or a new tab) on ``page`` with ``at``'s URL query parameters."""
    fresh = AppTest.from_file(str(APP), default_timeout=180)
    fresh.query_params = dict(at.query_params)
    fresh.run()
    assert not fresh.exception, fresh.exception
    fresh.switch_page(f"pages/{page}.py").run()
    assert not fresh.exception, fresh.exception
    return fresh


def _split_counts(text: str) -> tuple[str, str, str]:
    return re.search(r"([\d,]+) train / ([\d,]+) validation / ([\d,]+) test", text).groups()


def test_the_url_names_the_default_dataset_on_every_page(app, open_page):
    defaults = {"dataset": "taobao", "task": "behavior", "split": "temporal"}
    assert app.query_params == defaults
    for page in ("imbalance", "strategy_lab", "train"):
        assert open_page(app, page).query_params == defaults      # Streamlit clears them on a page switch


def test_a_reload_reopens_the_uploaded_log_with_its_task_and_split(app, open_page, retailrocket_csv):
    app.segmented_control(key="data_origin").set_value("Upload a file").run()
    app.file_uploader(key="data_upload").set_value(("events.csv", retailrocket_csv.read_bytes(), "text/csv")).run()
    app.selectbox(key="data_split_method").set_value("stratified")
    app.slider(key="data_test_size").set_value(0.3)
    app.number_input(key="data_seed").set_value(2)
    app.button(key="data_use").click().run()
    assert not app.exception, app.exception
    active = next(s.value for s in app.success if s.value.startswith("Active: events.csv"))
    params = app.query_params
    assert re.fullmatch(r"[0-9a-f]{16}", params["dataset"])
    assert params == {"dataset": params["dataset"], "task": "behavior", "split": "stratified",
                      "split.test_size": "0.3", "split.seed": "2"}

    train = _reload(app, "train")
    assert train.query_params == params
    shown = next(c.value for c in train.caption if c.value.startswith("Data: **events.csv**, task **behavior**"))
    assert _split_counts(shown) == _split_counts(active)           # the same split, not only the same file
    assert not any("could not be opened" in w.value for w in train.warning)

    data = _reload(app, "data")                     # the Data page says which dataset is active, not the sample
    assert any(i.value.startswith("Every page works on **events.csv** (task behavior, stratified split)")
               for i in data.info)

    lab = _reload(app, "strategy_lab")
    before = int(next(m.value for m in lab.metric if m.label == "Training rows before").replace(",", ""))
    assert before == int(_split_counts(active)[0].replace(",", ""))


def test_a_task_chosen_on_the_train_page_goes_into_the_url(app, open_page):
    at = open_page(app, "train")
    at.selectbox(key="train_task").set_value("purchase").run()
    assert not at.exception, at.exception
    assert at.query_params["task"] == "purchase"
    reloaded = _reload(at, "train")
    assert reloaded.selectbox(key="train_task").value == "purchase"


def test_a_link_that_cannot_be_opened_says_why_and_opens_the_sample():
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.query_params = {"dataset": "0123456789abcdef", "task": "table"}
    at.run()
    assert not at.exception, at.exception
    warning = at.warning[0].value
    assert "The link's dataset could not be opened" in warning and "Open the file on the Data page" in warning
    assert at.query_params == {"dataset": "taobao", "task": "behavior", "split": "temporal"}
    assert {m.label: m.value for m in at.metric}["Rows kept"] == "80,106"
