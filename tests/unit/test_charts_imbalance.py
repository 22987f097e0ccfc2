"""Imbalance figures: they carry the numbers of the statistics they are built from."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from recexp.charts.imbalance import (
    class_balance_chart, class_mix_chart, feature_box_chart, feature_violin_chart, funnel_chart,
    funnel_groups_chart, lorenz_chart,
)
from recexp.data.samples import load_sample
from recexp.errors import InvalidParameterError
from recexp.imbalance import (
    class_balance, class_mix_by_category, feature_distributions, funnel, long_tail,
)
from recexp.tasks import build_dataset


@pytest.fixture(scope="module")
def taobao():
    return load_sample("taobao")


@pytest.fixture(scope="module")
def behavior(taobao):
    return build_dataset(taobao, "behavior", sequence_length=0)


def test_class_balance_chart(taobao, behavior):
    balance = class_balance(taobao)
    figure = class_balance_chart(balance, log_y=True)
    bar = figure.data[0]
    assert isinstance(bar, go.Bar) and list(bar.x) == ["view", "cart", "fav", "buy"]
    assert list(bar.y) == [71_898, 4_307, 2_228, 1_673]
    assert list(bar.text) == ["89.8%", "5.4%", "2.8%", "2.1%"]
    assert "43.0:1" in figure.layout.title.text and figure.layout.yaxis.type == "log" and figure.layout.yaxis.dtick == 1
    assert list(class_balance_chart(behavior).data[0].y) == list(bar.y)
    figure.to_json()


def test_lorenz_chart(taobao):
    tails = [long_tail(taobao, "item"), long_tail(taobao, "user")]
    figure = lorenz_chart(tails)
    assert len(figure.data) == 3                                   # equality line + one curve per tail
    assert figure.data[1].name == f"items: Gini {tails[0].gini:.3f}"
    assert figure.data[2].name == f"users: Gini {tails[1].gini:.3f}"
    assert list(figure.data[2].y) == tails[1].lorenz["value_share"].tolist()
    assert len(lorenz_chart(tails[0]).data) == 2


def test_funnel_charts(taobao):
    overall = funnel(taobao)
    figure = funnel_chart(overall)
    assert isinstance(figure.data[0], go.Funnel) and isinstance(figure.data[1], go.Funnel)
    assert list(figure.data[0].x) == overall["units_in_order"].tolist()       # the sequential funnel
    assert figure.data[0].name == "in order: did every earlier stage first"
    assert "percent initial" in figure.data[0].textinfo
    assert list(figure.data[1].x) == overall["units"].tolist()                # independent counts, labelled so
    assert figure.data[1].name == "each stage counted independently" and figure.data[1].textinfo == "value"
    assert list(figure.data[0].y) == ["view", "cart/fav", "buy"]
    with pytest.raises(InvalidParameterError, match="no group 'Q9'"):
        funnel_chart(overall, group="Q9")

    segments = funnel(taobao, by="segment", n_segments=4)
    lines = funnel_groups_chart(segments)
    assert [t.name for t in lines.data] == ["cart/fav", "buy"]
    buy = segments[segments["stage"] == "buy"]["conversion"].tolist()
    assert list(lines.data[1].y) == pytest.approx(buy)
    days = funnel(taobao, by="day")
    heatmap = funnel_groups_chart(days, kind="heatmap", measure="step_conversion")
    z = np.array(heatmap.data[0].z, dtype=float)
    assert z.shape == (days["group"].nunique(), 2)
    assert list(heatmap.data[0].y) == list(dict.fromkeys(days["group"]))
    with pytest.raises(InvalidParameterError, match="kind"):
        funnel_groups_chart(days, kind="pie")
    with pytest.raises(InvalidParameterError):
        funnel_chart(overall.drop(columns="units"))


def test_class_mix_chart(taobao):
    mix = class_mix_by_category(taobao, top=5)
    figure = class_mix_chart(mix)
    assert [t.name for t in figure.data] == ["view", "cart", "fav", "buy"]
    assert figure.layout.barmode == "stack"
    totals = np.sum([np.array(t.y, dtype=float) for t in figure.data], axis=0)
    np.testing.assert_allclose(totals, 1.0)
    counts = class_mix_chart(mix, normalise=False)
    assert sum(sum(t.y) for t in counts.data) == len(taobao.frame)


def test_feature_distribution_charts(behavior):
    stats = feature_distributions(behavior, ["user_cart_count"])
    box = feature_box_chart(stats, "user_cart_count")
    assert [t.name for t in box.data] == list(behavior.schema.classes)
    for trace, row in zip(box.data, stats.to_dict("records")):
        assert (trace.q1[0], trace.median[0], trace.q3[0]) == (row["q25"], row["q50"], row["q75"])
    with pytest.raises(InvalidParameterError, match="No distribution"):
        feature_box_chart(stats, "hour")

    violin = feature_violin_chart(behavior, "hour", max_rows_per_class=300, seed=1)
    assert [len(t.y) for t in violin.data] == [300, 300, 300, 300]
    assert violin.layout.title.text == f"hour per class (1,200 of {len(behavior):,} rows shown, at most 300 per class)"
    assert feature_violin_chart(behavior, "hour", max_rows_per_class=len(behavior)).layout.title.text == "hour per class"
    again = feature_violin_chart(behavior, "hour", max_rows_per_class=300, seed=1)
    assert list(again.data[3].y) == list(violin.data[3].y)
    with pytest.raises(InvalidParameterError, match="not a numeric feature"):
        feature_violin_chart(behavior, "item")
