"""Imbalance statistics: known values on tiny inputs, cross-checks with pandas on the bundled samples."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from recexp.data.log import BehaviorLog, ValidationReport
from recexp.data.samples import load_sample
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.imbalance import (
    class_balance, class_mix_by_category, feature_distributions, funnel, gini, long_tail, lorenz_curve,
)
from recexp.tasks import build_dataset


@pytest.fixture(scope="module")
def taobao():
    return load_sample("taobao")


@pytest.fixture(scope="module")
def behavior(taobao):
    return build_dataset(taobao, "behavior", sequence_length=0)


def make_log(rows: list[tuple]) -> BehaviorLog:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "category_id", "behavior", "timestamp"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.as_unit("ns")
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    for column in ("user_id", "item_id", "category_id"):
        frame[column] = frame[column].astype("category")
    present = [b for b in ("view", "cart", "fav", "buy") if b in set(frame["behavior"])]
    frame["behavior"] = pd.Categorical(frame["behavior"], categories=present + sorted(set(frame["behavior"]) - set(present)))
    return BehaviorLog(frame=frame, mapping={}, report=ValidationReport(len(frame), len(frame)), source="hand-made")


# --- class balance --------------------------------------------------------------------------------


def test_class_balance_of_taobao(taobao, behavior):
    from_log = class_balance(taobao)
    from_dataset = class_balance(behavior)
    assert from_log == from_dataset
    # data/README.md's mix (pv 71,899 over all lines; the truncated last line is a pv the reader drops)
    assert from_log["class_counts"] == {"view": 71_898, "cart": 4_307, "fav": 2_228, "buy": 1_673}
    assert from_log["imbalance_ratio"] == pytest.approx(71_898 / 1_673)
    assert from_log["majority"] == "view" and from_log["minority"] == "buy"
    assert sum(from_log["shares"].values()) == pytest.approx(1.0)
    shares = np.array(list(from_log["shares"].values()))
    assert from_log["normalised_entropy"] == pytest.approx(-(shares * np.log(shares)).sum() / np.log(4))
    assert 0.25 < from_log["normalised_entropy"] < 0.4
    json.dumps(from_log, allow_nan=False)


def test_class_balance_known_values():
    uniform = class_balance(["a", "b", "c", "a", "b", "c"])
    assert uniform["normalised_entropy"] == pytest.approx(1.0) and uniform["imbalance_ratio"] == 1.0
    skewed = class_balance(np.array([0, 0, 0, 1]))
    assert skewed["class_counts"] == {"0": 3, "1": 1} and skewed["imbalance_ratio"] == 3.0
    assert skewed["normalised_entropy"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2))
    single = class_balance(pd.Series(["x", "x"]))
    assert single["imbalance_ratio"] is None and single["normalised_entropy"] is None
    with pytest.raises(InvalidDataError, match="missing"):
        class_balance(pd.Series(["a", None]))


def test_class_balance_of_other_sources(behavior):
    assert class_balance(load_sample("criteo"))["class_counts"] == {"0": 151, "1": 49}
    retail = class_balance(load_sample("retailrocket"))
    assert retail["class_counts"] == {"view": 2_695, "cart": 62, "buy": 14}
    assert retail["imbalance_ratio"] == pytest.approx(2_695 / 14)
    only_views = behavior.subset(np.flatnonzero(behavior.y == 0)[:100])
    balance = class_balance(only_views)
    assert balance["empty_classes"] == ["cart", "fav", "buy"] and balance["imbalance_ratio"] is None
    assert balance["normalised_entropy"] == 0.0


# --- long tail ------------------------------------------------------------------------------------


def test_gini_known_values():
    # standard definition: mean absolute difference / (2 * mean)
    assert gini([1, 1, 1, 1]) == 0.0
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert gini([1, 2, 3, 4]) == pytest.approx(0.25)
    assert gini([0, 0, 0]) == 0.0
    values = np.random.default_rng(0).pareto(1.5, 300)
    brute = np.abs(values[:, None] - values[None, :]).sum() / (2 * len(values) ** 2 * values.mean())
    assert gini(values) == pytest.approx(brute)
    with pytest.raises(InvalidDataError):
        gini([1, -1])
    with pytest.raises(InvalidDataError):
        gini([])


def test_lorenz_curve_points():
    curve = lorenz_curve([0, 0, 0, 1])
    assert curve["population_share"].tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert curve["value_share"].tolist() == [0, 0, 0, 0, 1]
    long = lorenz_curve(np.arange(10_000), max_points=50)
    assert len(long) <= 50 and long.iloc[0].tolist() == [0, 0] and long.iloc[-1].tolist() == [1, 1]
    assert long["value_share"].is_monotonic_increasing
    with pytest.raises(InvalidParameterError):
        lorenz_curve([1, 2], max_points=1)


def test_long_tail_of_taobao(taobao, behavior):
    items = long_tail(taobao, "item")
    users = long_tail(taobao, "user")
    assert items.n_entities == 52_829 and users.n_entities == 772        # data/README.md
    assert items.n_events == users.n_events == 80_106
    per_user = taobao.frame["user_id"].astype(str).value_counts().to_numpy()
    assert users.gini == pytest.approx(gini(per_user))
    assert users.top_shares["top 10%"] == pytest.approx(np.sort(per_user)[::-1][:78].sum() / per_user.sum())
    assert 0 < items.gini < 1 and items.top_shares["top 1%"] < items.top_shares["top 20%"] <= 1
    buys = long_tail(taobao, "item", behavior="buy")
    assert buys.n_events == 1_673 and buys.behavior == "buy"
    assert long_tail(behavior, "user").gini == pytest.approx(users.gini)
    with pytest.raises(InvalidParameterError, match="no behaviour 'click'"):
        long_tail(taobao, "item", behavior="click")
    with pytest.raises(InvalidParameterError):
        long_tail(behavior, "item")


# --- class mix per category -----------------------------------------------------------------------


def test_class_mix_by_category_matches_crosstab(taobao, behavior):
    mix = class_mix_by_category(taobao, top=3)
    frame = taobao.frame.assign(category=taobao.frame["category_id"].astype(str),
                                behavior=taobao.frame["behavior"].astype(str))
    sizes = frame["category"].value_counts()
    top = list(sizes.index[:3])
    assert list(dict.fromkeys(mix["category"])) == top + ["other"]
    cross = pd.crosstab(frame["category"], frame["behavior"])
    for category in top:
        part = mix[mix["category"] == category].set_index("class")
        assert part["count"].to_dict() == {b: int(cross.at[category, b]) for b in ("view", "cart", "fav", "buy")}
        assert part["share"].sum() == pytest.approx(1.0)
    other = mix[mix["category"] == "other"]
    assert other["count"].sum() == len(frame) - sizes.iloc[:3].sum()
    from_dataset = class_mix_by_category(behavior, top=3, other=False)
    assert from_dataset["count"].sum() == sizes.iloc[:3].sum()
    # the dataset's internal codes are shown as the source's category ids (code 20 was category 4756105)
    assert list(dict.fromkeys(from_dataset["category"])) == top
    assert from_dataset.equals(class_mix_by_category(taobao, top=3, other=False))


@pytest.mark.parametrize("task", ["behavior", "purchase"])
def test_dataset_codes_decode_to_the_logs_ids(taobao, task):
    """Every item and category code of a task's dataset decodes to the source id of its row; the codes
    beyond the vocabulary cap decode to 'rare/missing'."""
    dataset = build_dataset(taobao, task, max_vocab=50, **({"n_windows": 1} if task == "purchase" else {}))
    schema = dataset.schema
    assert len(schema.vocabulary["item"]) == schema.cardinality["item"] == 50
    decoded = schema.decode("category", dataset.frame["category"].to_numpy())
    assert (decoded == "rare/missing").sum() == (dataset.frame["category"] == 0).sum() > 0
    known = set(taobao.frame["category_id"].astype(str))
    assert set(decoded) - {"rare/missing"} <= known
    if task == "behavior":                          # one row per event, in time order, as in the log
        ids = taobao.frame["category_id"].astype(str).to_numpy()
        kept = decoded != "rare/missing"
        assert (decoded[kept] == ids[kept]).all()
        first_items = schema.decode("hist_item_0", dataset.frame["hist_item_0"].to_numpy())
        assert set(first_items) - {"rare/missing"} <= set(taobao.frame["item_id"].astype(str))
        assert set(schema.decode("hist_behavior_0", dataset.frame["hist_behavior_0"].to_numpy())) <= \
            {"rare/missing", "view", "cart", "fav", "buy"}


def test_table_codes_decode_to_the_source_values(criteo_csv):
    from recexp.data import load

    table = load(criteo_csv, kind="table")
    dataset = build_dataset(table, "table")
    decoded = dataset.schema.decode("C1", dataset.frame["C1"].to_numpy())
    source = table.frame["C1"].astype(str).to_numpy()
    present = table.frame["C1"].notna().to_numpy()
    assert (decoded[present] == source[present]).all() and (decoded[~present] == "rare/missing").all()


# --- feature distributions ------------------------------------------------------------------------


def test_feature_distributions_per_class(behavior):
    stats = feature_distributions(behavior, ["user_cart_count", "hour"])
    assert len(stats) == 2 * 4
    labels = np.asarray(behavior.schema.classes)[behavior.y]
    expected = behavior.frame.groupby(labels)["user_cart_count"].median()
    for row in stats[stats["feature"] == "user_cart_count"].itertuples(index=False):
        assert row.q50 == pytest.approx(expected[row[1]])
    counts = stats[stats["feature"] == "hour"].set_index("class")["count"].to_dict()
    assert counts == behavior.class_counts()
    assert (stats["q05"] <= stats["q50"]).all() and (stats["q50"] <= stats["q95"]).all()
    with pytest.raises(InvalidParameterError, match="not numeric features"):
        feature_distributions(behavior, ["label"])


# --- funnel ---------------------------------------------------------------------------------------

FUNNEL_ROWS = [
    ("u1", "i1", "c1", "view", "2024-01-01 09:00"),
    ("u1", "i1", "c1", "cart", "2024-01-01 09:05"),
    ("u1", "i1", "c1", "buy", "2024-01-01 09:30"),
    ("u2", "i2", "c1", "view", "2024-01-02 10:00"),
    ("u2", "i3", "c2", "buy", "2024-01-02 10:10"),      # a direct buy of another item
    ("u3", "i2", "c1", "view", "2024-01-02 11:00"),
    ("u4", "i4", "c2", "fav", "2024-01-02 12:00"),      # a favourite without a view
]


def _table(stats: pd.DataFrame, column: str) -> dict:
    return {(r.group, r.stage): getattr(r, column) for r in stats.itertuples(index=False)}


def test_funnel_hand_checked():
    log = make_log(FUNNEL_ROWS)
    users = funnel(log)
    assert _table(users, "units") == {("all", "view"): 3, ("all", "cart/fav"): 2, ("all", "buy"): 2}
    assert _table(users, "units_in_order") == {("all", "view"): 3, ("all", "cart/fav"): 1, ("all", "buy"): 1}
    assert users["conversion"].tolist() == pytest.approx([1, 1 / 3, 1 / 3])       # of the sequential funnel
    assert users["step_conversion"].tolist() == pytest.approx([1, 1 / 3, 1])

    pairs = funnel(log, unit="pair")
    assert _table(pairs, "units") == {("all", "view"): 3, ("all", "cart/fav"): 2, ("all", "buy"): 2}
    assert _table(pairs, "units_in_order") == {("all", "view"): 3, ("all", "cart/fav"): 1, ("all", "buy"): 1}

    by_category = funnel(log, by="category")
    assert _table(by_category, "units") == {
        ("c1", "view"): 3, ("c1", "cart/fav"): 1, ("c1", "buy"): 1,
        ("c2", "view"): 0, ("c2", "cart/fav"): 1, ("c2", "buy"): 1}
    assert math.isnan(by_category.set_index(["group", "stage"]).at[("c2", "buy"), "conversion"])

    by_day = funnel(log, by="day")
    assert _table(by_day, "units") == {
        ("2024-01-01", "view"): 1, ("2024-01-01", "cart/fav"): 1, ("2024-01-01", "buy"): 1,
        ("2024-01-02", "view"): 2, ("2024-01-02", "cart/fav"): 1, ("2024-01-02", "buy"): 1}

    by_segment = funnel(log, by="segment", n_segments=2)      # events per user: u1 3, u2 2, u3 1, u4 1
    groups = list(dict.fromkeys(by_segment["group"]))
    assert groups == ["1 event/user", "2-3 events/user"]
    assert _table(by_segment, "units") == {
        (groups[0], "view"): 1, (groups[0], "cart/fav"): 1, (groups[0], "buy"): 0,
        (groups[1], "view"): 2, (groups[1], "cart/fav"): 1, (groups[1], "buy"): 2}


def test_sequential_funnel_needs_the_stages_in_order():
    log = make_log([
        ("u1", "i1", "c1", "buy", "2024-01-01 08:00"),      # bought, then viewed and carted: in order up to cart
        ("u1", "i1", "c1", "view", "2024-01-01 09:00"),
        ("u1", "i1", "c1", "cart", "2024-01-01 09:00"),     # the same second as the view counts as after it
        ("u2", "i2", "c1", "view", "2024-01-01 10:00"),     # in order through buy
        ("u2", "i2", "c1", "fav", "2024-01-01 10:05"),
        ("u2", "i2", "c1", "buy", "2024-01-01 10:10"),
        ("u3", "i3", "c1", "cart", "2024-01-01 07:00"),     # carted before the view, bought after it
        ("u3", "i3", "c1", "view", "2024-01-01 07:30"),
        ("u3", "i3", "c1", "buy", "2024-01-01 08:00"),
    ])
    stats = funnel(log)
    assert _table(stats, "units") == {("all", "view"): 3, ("all", "cart/fav"): 3, ("all", "buy"): 3}
    assert _table(stats, "units_in_order") == {("all", "view"): 3, ("all", "cart/fav"): 2, ("all", "buy"): 1}


def _in_order_with_pandas(frame: pd.DataFrame, stages: list[tuple[str, ...]], unit: list[str]) -> list[int]:
    """Units that did the stages in order, the slow way: earliest time per stage, each at or after the last."""
    reached = None
    counts = []
    for members in stages:
        events = frame[frame["behavior"].isin(members)]
        if reached is not None:
            events = events.merge(reached, on=unit)
            events = events[events["timestamp"] >= events["after"]]
        reached = events.groupby(unit, observed=True)["timestamp"].min().rename("after").reset_index()
        counts.append(len(reached))
    return counts


@pytest.mark.parametrize("unit", ["user", "pair"])
def test_sequential_funnel_on_taobao_equals_pandas(taobao, unit):
    stats = funnel(taobao, unit=unit)
    frame = taobao.frame.assign(behavior=taobao.frame["behavior"].astype(str))
    keys = ["user_id"] if unit == "user" else ["user_id", "item_id"]
    expected = _in_order_with_pandas(frame, [("view",), ("cart", "fav"), ("buy",)], keys)
    assert stats["units_in_order"].tolist() == expected
    assert expected[0] > expected[1] > expected[2] > 0                 # non-increasing, on real data
    assert (stats["units_in_order"] <= stats["units"]).all()
    buyers = frame.loc[frame["behavior"] == "buy", keys].drop_duplicates()
    assert stats["units"].iloc[2] == len(buyers)                       # the independent count, all buyers
    assert stats["units"].iloc[2] > stats["units_in_order"].iloc[2]     # some buyers did not view, cart first


def test_activity_segments_have_distinct_labels_and_ranges():
    retail = funnel(load_sample("retailrocket"), by="segment", n_segments=4)
    groups = list(dict.fromkeys(retail["group"]))
    # 1,052 of 1,498 visitors have one event: the first two quartiles were both labelled "1-1 events/user"
    assert groups[0] == "1 event/user" and len(groups) == len(set(groups)) < 4
    bounds = [tuple(int(v) for v in g.split(" ")[0].replace(",", "").split("-")) for g in groups]
    bounds = [(b[0], b[-1]) for b in bounds]
    assert all(high < next_low for (_, high), (next_low, _) in zip(bounds, bounds[1:]))   # ranges do not overlap
    frame = load_sample("retailrocket").frame
    viewers = frame.loc[frame["behavior"].astype(str) == "view", "user_id"].nunique()
    assert retail.loc[retail["stage_index"] == 0, "units"].sum() == viewers          # each visitor in one segment


def test_funnel_on_the_bundled_logs(taobao):
    stats = funnel(taobao).set_index("stage")["units"]
    frame = taobao.frame.assign(behavior=taobao.frame["behavior"].astype(str))
    users_with = frame.groupby("behavior")["user_id"].nunique()
    assert stats["view"] == users_with["view"]
    assert stats["buy"] == users_with["buy"]
    assert stats["cart/fav"] == frame.loc[frame["behavior"].isin(["cart", "fav"]), "user_id"].nunique()
    days = funnel(taobao, by="day")
    assert days["group"].nunique() == frame["timestamp"].dt.date.nunique()
    retail = funnel(load_sample("retailrocket"), unit="pair")
    assert retail["stage"].tolist() == ["view", "cart", "buy"]
    assert retail["units"].iloc[0] > retail["units"].iloc[1] > 0


def test_funnel_errors(taobao):
    with pytest.raises(InvalidParameterError, match="unit"):
        funnel(taobao, unit="session")
    with pytest.raises(InvalidParameterError, match="by"):
        funnel(taobao, by="week")
    odd = make_log([("u1", "i1", "c1", "view", "2024-01-01"), ("u1", "i1", "c1", "share", "2024-01-02")])
    with pytest.raises(InvalidDataError, match="fewer than two funnel stages"):
        funnel(odd)
