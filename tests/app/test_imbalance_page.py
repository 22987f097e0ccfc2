"""The Imbalance page on the bundled samples: numbers the analyst must see, and every chart drawn."""

import json

import pyarrow as pa


def test_default_dataset_shows_taobao_imbalance(open_page, app):
    at = open_page(app, "imbalance")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Classes"] == "4"
    assert metrics["Imbalance ratio"].startswith("43.")     # pv:buy about 43:1 (data/README.md)
    assert metrics["Minority class"] == "buy"
    # class bars, funnel, funnel by segment, Lorenz, class mix per category, feature violin
    assert len(at.get("plotly_chart")) == 6
    per_split = at.table[0].value
    assert list(per_split.columns) == ["train", "validation", "test"]
    assert list(per_split.index) == ["view", "cart", "fav", "buy"]
    assert int(per_split.to_numpy().sum()) == 80_106                     # every row in exactly one split


def test_funnel_options_and_tabs_rerender(open_page, app):
    at = open_page(app, "imbalance")
    at.radio(key="imb_funnel_unit").set_value("pair").run()
    at.selectbox(key="imb_funnel_by").set_value("day").run()
    at.selectbox(key="imb_feature").set_value(at.selectbox(key="imb_feature").options[-1]).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 6


def test_feature_table_says_funnel_needs_a_log(open_page, app):
    app.selectbox(key="data_sample").set_value("yeast_me2").run()
    app.button(key="data_use").click().run()
    at = open_page(app, "imbalance")
    assert {m.label: m.value for m in at.metric}["Imbalance ratio"].startswith("28.")
    assert any("needs a behaviour log" in str(i.value) for i in at.info)


def test_class_mix_chart_shows_source_category_ids(open_page, app):
    """The class mix per category is labelled with Taobao's category ids (4756105 ...), not the dataset's
    internal codes (20, 11, 22 ...)."""
    at = open_page(app, "imbalance")
    figures = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    mix = next(f for f in figures if f["layout"]["title"]["text"] == "Class mix in the largest categories")
    labels = list(dict.fromkeys(x for trace in mix["data"] for x in trace["x"]))
    assert labels[:3] == ["4756105", "3607361", "4145813"] and labels[-1] == "other"
    assert len(labels) == 11 and all(label.isdigit() and len(label) >= 5 for label in labels[:-1])


def test_funnel_shows_sequential_and_independent_counts(open_page, app):
    """The funnel's first trace is the sequential one (non-increasing), the second the independent counts,
    each named so; the real Taobao sample has buyers who did not view first, so the two differ."""
    at = open_page(app, "imbalance")
    figures = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    funnel = next(f for f in figures if f["layout"]["title"]["text"] == "Funnel over users")
    in_order, independent = funnel["data"]
    assert in_order["name"].startswith("in order") and independent["name"] == "each stage counted independently"
    assert in_order["x"] == sorted(in_order["x"], reverse=True) and in_order["x"][-1] < independent["x"][-1]
    assert in_order["x"][0] == independent["x"][0] == 770                  # Taobao: 770 users viewed
    assert any("Counted independently" in c.value for c in at.caption)


def test_long_tail_table_is_readable(open_page, app):
    """The long-tail table has words for columns and percentages for shares, not n_entities and a JSON
    string of 17-digit floats."""
    at = open_page(app, "imbalance")
    table = at.dataframe[0]
    assert list(table.value.columns) == ["with an event", "events", "Gini", "top 1% hold", "top 10% hold",
                                         "top 20% hold"]
    assert list(table.value.index) == ["items", "users"]
    shown = pa.ipc.open_stream(table.proto.arrow_data.styler.display_values).read_all().to_pandas()
    assert shown.loc["items", "events"] == "80,106" and shown.loc["users", "with an event"] == "772"
    for column in ("top 1% hold", "top 10% hold", "top 20% hold"):
        assert all(value.endswith("%") and len(value) <= 6 for value in shown[column])      # e.g. "29.8%"
    assert shown.loc["items", "top 10% hold"] == f"{table.value.loc['items', 'top 10% hold']:.1%}"


def test_down_sampled_dataset_shows_the_raw_and_the_sampled_class_mix(open_page, app):
    """Keeping 20% of the views on the Data page: the Imbalance page shows the sampled rows and the raw mix
    weighted back (views about 5x the sampled count; the other classes whole)."""
    app.number_input(key="data_negative_rate").set_value(0.2).run()
    app.button(key="data_use").click().run()
    assert not app.exception
    at = open_page(app, "imbalance")
    mix = at.table[1].value
    assert list(mix.columns) == ["raw (weighted)", "sampled"]
    sampled, raw = mix.loc["view", "sampled"], mix.loc["view", "raw (weighted)"]
    assert raw == 5 * sampled and 0.15 < sampled / 71_898 < 0.25
    assert mix.loc["buy", "sampled"] == mix.loc["buy", "raw (weighted)"] == 1_673
