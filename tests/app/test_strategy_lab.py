"""The Strategy Lab page under AppTest: every strategy's parameter spec renders its widgets, previews
change with the parameters, and infeasible parameters give a sentence while the page keeps working."""

from __future__ import annotations

from recexp.params import Bool, Choice, Float, Int, Mapping, Optional, Text, Union
from recexp.strategies import STRATEGIES, strategies_for
from recexp.ui.params import widget_key



def _metric(at, label: str) -> int:
    return int(next(m.value for m in at.metric if m.label == label).replace(",", ""))


def _expected_widgets(at, spec, key: str, classes) -> None:
    """Assert the widget(s) a spec must render exist under ``key``."""
    if isinstance(spec, Bool):
        assert at.checkbox(key=key)
    elif isinstance(spec, Int):
        assert at.number_input(key=key)
    elif isinstance(spec, Float):
        closed = spec.low is not None and spec.high is not None and not (spec.low_open or spec.high_open)
        assert (at.slider(key=key) if closed else at.number_input(key=key))
    elif isinstance(spec, Choice):
        assert at.selectbox(key=key).options == [spec.options[o] for o in spec.options]
    elif isinstance(spec, Optional):
        assert at.toggle(key=f"{key}_set")
    elif isinstance(spec, Union):
        assert at.radio(key=f"{key}_kind")
    elif isinstance(spec, Mapping):
        for name in classes:
            assert at.number_input(key=f"{key}_{name}")
    elif isinstance(spec, Text):
        assert at.text_input(key=key)
    else:
        raise AssertionError(spec)


def test_page_opens_on_the_baseline_with_locked_splits(lab):
    assert lab.title[0].value == "Strategy Lab"
    assert _metric(lab, "Training rows before") == _metric(lab, "Training rows after") > 0
    table = lab.table[0].value
    assert {"before", "after", "added", "removed", "validation (locked)", "test (locked)"} <= set(table.columns)
    assert list(table.index) == ["view", "cart", "fav", "buy"]
    assert (table["before"] == table["after"]).all()
    assert len(lab.get("plotly_chart")) == 3
    assert not lab.error


def test_every_parameter_spec_renders_a_widget(lab):
    """One session walks through every strategy, every Union alternative and every Optional's inner value."""
    classes = ["view", "cart", "fav", "buy"]
    walked: set[int] = set()                # a spec object shared by several strategies is walked once
    for name, cls in strategies_for("behavior").items():       # the lab offers the active task's strategies
        lab.selectbox(key="lab_strategy").set_value(name)
        lab.run()
        assert not lab.exception, (name, lab.exception)
        for param, spec in cls.params.items():
            key = widget_key("lab", cls, param)
            _expected_widgets(lab, spec, key, classes)
            if id(spec) in walked:
                continue
            walked.add(id(spec))
            if isinstance(spec, Union):
                for index, alternative in enumerate(spec.alternatives):
                    lab.radio(key=f"{key}_kind").set_value(index)
                    lab.run()
                    assert not lab.exception, (name, param, index, lab.exception)
                    _expected_widgets(lab, alternative, f"{key}_{index}", classes)
                lab.radio(key=f"{key}_kind").set_value(0)
            if isinstance(spec, Optional):
                lab.toggle(key=f"{key}_set").set_value(True)
                lab.run()
                assert not lab.exception, (name, param, lab.exception)
                _expected_widgets(lab, spec.inner, f"{key}_value", classes)
                lab.toggle(key=f"{key}_set").set_value(False)
        lab.run()
        assert not lab.exception, (name, lab.exception)
        # defaults either preview, explain in a sentence why they cannot, or (slow ones) wait for a click
        assert (lab.metric or (lab.error and lab.error[0].value.endswith("."))
                or any(b.key == "lab_run_preview" for b in lab.button)), name


def test_changing_a_parameter_changes_the_after_counts(lab):
    lab.selectbox(key="lab_strategy").set_value("smote")
    lab.run()
    before = lab.table[0].value
    assert set(before["after"]) == {before["before"].max()}          # 'auto': every class up to the majority
    key = widget_key("lab", STRATEGIES["smote"], "sampling_strategy")
    lab.radio(key=f"{key}_kind").set_value(2)                          # per class
    lab.run()
    buy = int(before.loc["buy", "before"])
    lab.number_input(key=f"{key}_2_buy").set_value(buy + 40)
    lab.run()
    assert not lab.exception, lab.exception
    after = lab.table[0].value
    assert after.loc["buy", "after"] == buy + 40 and after.loc["buy", "added"] == 40
    assert (after.loc[["view", "cart", "fav"], "after"] == after.loc[["view", "cart", "fav"], "before"]).all()
    assert _metric(lab, "Training rows after") == _metric(lab, "Training rows before") + 40


def test_infeasible_parameters_give_a_sentence_and_the_page_keeps_working(lab):
    lab.selectbox(key="lab_strategy").set_value("smote")
    lab.run()
    lab.number_input(key=widget_key("lab", STRATEGIES["smote"], "k_neighbors")).set_value(400)
    lab.run()
    assert not lab.exception, lab.exception
    message = lab.error[0].value
    assert "k_neighbors=400" in message and "Lower k_neighbors to at most" in message
    assert not lab.metric
    lab.number_input(key=widget_key("lab", STRATEGIES["smote"], "k_neighbors")).set_value(3)
    lab.run()
    assert not lab.exception and not lab.error
    assert _metric(lab, "Training rows after") > _metric(lab, "Training rows before")


def test_a_small_feature_table_opens_in_the_lab_and_the_lab_keeps_working_after_it(app, open_page):
    """The Criteo sample's training split (144 rows) is smaller than the default preview size; the page
    previews all of it, runs SMOTE on it, and still opens when the analyst goes back to the Taobao log."""
    app.selectbox(key="data_sample").set_value("criteo").run()
    app.button(key="data_use").click().run()
    at = open_page(app, "strategy_lab")
    assert at.number_input(key="lab_rows").value == 144
    at.selectbox(key="lab_strategy").set_value("smote").run()
    assert not at.exception, at.exception
    after = next(m for m in at.metric if m.label == "Training rows after")
    assert int(str(after.value).replace(",", "")) > 144
    at.number_input(key="lab_rows").set_value(20).run()                     # below the old floor of 200
    assert not at.exception, at.exception
    at.switch_page("pages/data.py").run()
    at.selectbox(key="data_sample").set_value("taobao").run()
    at.button(key="data_use").click().run()
    open_page(at, "strategy_lab")


def test_the_knn_backend_is_a_parameter_widget_and_its_search_is_reported(lab):
    lab.selectbox(key="lab_strategy").set_value("edited_nearest_neighbours")
    lab.run()
    key = widget_key("lab", STRATEGIES["edited_nearest_neighbours"], "knn_backend")
    assert lab.selectbox(key=key).value == "auto"
    lab.selectbox(key=key).set_value("kdtree")
    lab.run()
    assert not lab.exception, lab.exception
    assert any(note.value.startswith("Nearest neighbours: ") and "with kdtree" in note.value for note in lab.info)
