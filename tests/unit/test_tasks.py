"""Task builders and splits, on the bundled real samples and on tiny hand-made logs."""

from __future__ import annotations

import time as clock

import numpy as np
import pandas as pd
import pytest

from recexp.data.log import BehaviorLog, ValidationReport, frame_fingerprint
from recexp.data.samples import load_sample
from recexp.dataset import LABEL, TIME, USER, code_dtype
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.outofcore import build_on_disk
from recexp.params import Parametrized
from recexp.tasks import (TASKS, SplitSpec, Task, build_dataset, estimate_dataset, split_dataset,
                          split_methods)

# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def taobao():
    return load_sample("taobao")


@pytest.fixture(scope="module")
def taobao_behavior(taobao):
    return build_dataset(taobao, "behavior", sequence_length=4, max_vocab=10**6)


@pytest.fixture(scope="module")
def retailrocket():
    return load_sample("retailrocket")


def make_log(rows: list[tuple], categorical: bool = True) -> BehaviorLog:
    """A BehaviorLog from (user, item, category, behaviour, ISO time) tuples, as recexp.data.load shapes it."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "category_id", "behavior", "timestamp"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.as_unit("ns")
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    if categorical:
        for column in ("user_id", "item_id", "category_id", "behavior"):
            frame[column] = frame[column].astype("category")
    report = ValidationReport(rows_read=len(frame), rows_kept=len(frame))
    return BehaviorLog(frame=frame, mapping={}, report=report, source="hand-made",
                       fingerprint=frame_fingerprint(frame))


def sub_log(log: BehaviorLog, frame: pd.DataFrame) -> BehaviorLog:
    frame = frame.reset_index(drop=True)
    return BehaviorLog(frame=frame, mapping=log.mapping, report=log.report, source=log.source,
                       fingerprint=frame_fingerprint(frame))


@pytest.fixture(params=["memory", "disk"])
def build(request, tmp_path):
    """``build_dataset`` on the in-memory path, or the same dataset built out of core (recexp.outofcore, from the
    log written as Parquet, with a 256 MB memory limit): the leakage guarantees hold on both."""
    if request.param == "memory":
        return build_dataset
    count = iter(range(1000))

    def on_disk(log, task, split=None, **params):
        path = tmp_path / f"log{next(count)}.parquet"
        log.frame.to_parquet(path, index=False)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RECEXP_MEMORY_LIMIT", "256MB")
            built = build_on_disk(path, task, split, folder=tmp_path / f"dataset{next(count)}", **params)
        return built.to_dataset()

    return on_disk


def features(dataset) -> pd.DataFrame:
    return dataset.frame.loc[:, list(dataset.schema.feature_columns)]


# --- registry -------------------------------------------------------------------------------------


def test_registry_names_and_specs():
    assert list(TASKS) == ["behavior", "purchase", "table", "next_item"]
    for name, cls in TASKS.items():
        assert issubclass(cls, Task) and issubclass(cls, Parametrized) and cls is not Task
        assert cls.name == name and cls.description and cls.input_kinds
        assert set(cls.params) == set(cls.param_names()), name
        described = cls.describe_params()
        assert set(described) == set(cls.param_names())
        for param in cls.param_names():
            with pytest.raises(InvalidParameterError, match=param):
                cls(**{param: "not a value"}).validate_params()


def test_build_dataset_rejects_unknown_task_and_parameter(taobao):
    with pytest.raises(InvalidParameterError, match="no task called 'clicks'"):
        build_dataset(taobao, "clicks")
    with pytest.raises(InvalidParameterError, match="no parameter 'window'"):
        build_dataset(taobao, "purchase", window=3)
    with pytest.raises(InvalidParameterError, match="sequence_length"):
        build_dataset(taobao, "behavior", sequence_length=-1)
    with pytest.raises(InvalidParameterError, match="feature table"):
        build_dataset(taobao, "table")


# --- behaviour task -------------------------------------------------------------------------------


def test_behavior_task_on_taobao_matches_readme_class_mix(taobao):
    start = clock.perf_counter()
    dataset = build_dataset(taobao, "behavior")
    elapsed = clock.perf_counter() - start
    # data/README.md: pv 71,899 · cart 4,307 · fav 2,228 · buy 1,673 over all 80,107 lines; the truncated
    # last line (4 fields) is a pv and is dropped by the reader, so 71,898 views remain.
    assert dataset.class_counts() == {"view": 71_898, "cart": 4_307, "fav": 2_228, "buy": 1_673}
    assert len(dataset) == 80_106
    assert elapsed < 10, f"behaviour task took {elapsed:.1f} s on 80k events"
    schema = dataset.schema
    frame = dataset.frame
    assert schema.classes == ("view", "cart", "fav", "buy")
    assert all(frame[c].dtype == np.float32 for c in schema.numeric)
    assert not frame.loc[:, list(schema.numeric)].isna().any().any()
    for column in schema.categorical:
        assert frame[column].dtype == np.int16                  # codes up to the default max_vocab, 20,000
        assert frame[column].between(0, schema.cardinality[column]).all()
    assert set(schema.sequences) == {"hist_item", "hist_category", "hist_behavior"}
    for group, columns in schema.sequences.items():
        assert len(columns) == 10
        block = frame.loc[:, list(columns)].to_numpy()
        assert block.dtype == (np.int8 if group == "hist_behavior" else np.int16)
        assert block.min() >= 0 and block.max() <= schema.cardinality[group]
    assert frame[LABEL].dtype == np.int64
    assert frame[TIME].is_monotonic_increasing and str(frame[TIME].dt.tz) == "UTC"
    assert frame[USER].nunique() == 772
    assert dataset.fingerprint == taobao.fingerprint


def test_behavior_features_equal_brute_force_history(taobao, taobao_behavior):
    """Each feature recomputed with plain pandas from the events strictly before the sample's time."""
    log = taobao.frame
    frame = taobao_behavior.frame
    rng = np.random.default_rng(7)
    picks = rng.choice(len(log), size=120, replace=False)
    for row in picks:
        event = log.iloc[row]
        before = log[log["timestamp"] < event["timestamp"]]
        scopes = {
            "user": before["user_id"] == event["user_id"],
            "item": before["item_id"] == event["item_id"],
            "category": before["category_id"] == event["category_id"],
            "user_category": (before["user_id"] == event["user_id"]) & (before["category_id"] == event["category_id"]),
            "user_item": (before["user_id"] == event["user_id"]) & (before["item_id"] == event["item_id"]),
        }
        for scope, mask in scopes.items():
            counts = before.loc[mask, "behavior"].value_counts()
            for behavior in ("view", "cart", "fav", "buy"):
                assert frame.at[row, f"{scope}_{behavior}_count"] == counts.get(behavior, 0), (row, scope, behavior)
        mine = before[scopes["user"]]
        expected_gap = ((event["timestamp"] - (mine["timestamp"].iloc[-1] if len(mine) else log["timestamp"].iloc[0]))
                        / pd.Timedelta(hours=1))
        assert frame.at[row, "user_hours_since_prev"] == pytest.approx(expected_gap, rel=1e-5, abs=1e-3)
        assert frame.at[row, "item_popularity"] == pytest.approx(scopes["item"].sum() / max(len(before), 1), rel=1e-5)
        assert frame.at[row, "hour"] == event["timestamp"].hour
        assert frame.at[row, "weekday"] == event["timestamp"].weekday()
        history = mine["behavior"].astype(str).to_list()[::-1][:4]
        codes = [("view", "cart", "fav", "buy").index(b) + 1 for b in history] + [0] * (4 - len(history))
        assert [frame.at[row, f"hist_behavior_{j}"] for j in range(4)] == codes


def test_behavior_event_never_counts_itself_nor_same_second_events(build):
    log = make_log([
        ("u1", "i1", "c1", "view", "2024-01-01 10:00:00"),
        ("u1", "i1", "c1", "cart", "2024-01-01 10:05:00"),
        ("u1", "i2", "c1", "view", "2024-01-01 10:05:00"),   # same second as the cart
        ("u1", "i1", "c1", "buy", "2024-01-01 11:00:00"),
        ("u2", "i1", "c1", "view", "2024-01-01 12:00:00"),
    ])
    frame = build(log, "behavior", sequence_length=3).frame
    assert frame.loc[0, ["user_view_count", "user_cart_count", "item_view_count"]].tolist() == [0, 0, 0]
    # the cart and the view at 10:05 see only the 10:00 view, not each other
    for row in (1, 2):
        assert frame.loc[row, ["user_view_count", "user_cart_count", "user_buy_count"]].tolist() == [1, 0, 0]
        assert frame.loc[row, "user_hours_since_prev"] == pytest.approx(5 / 60)
    assert frame.loc[3, ["user_view_count", "user_cart_count", "user_buy_count"]].tolist() == [2, 1, 0]
    assert frame.loc[3, ["user_item_view_count", "user_item_cart_count"]].tolist() == [1, 1]
    assert frame.loc[3, "user_item_hours_since_prev"] == pytest.approx(55 / 60)
    assert frame.loc[4, ["user_view_count", "item_view_count", "item_cart_count", "item_buy_count"]].tolist() == [0, 1, 1, 1]
    # classes in funnel order although the categorical's own order is alphabetical
    assert frame[LABEL].tolist() == [0, 1, 0, 2, 0]
    # the buy's sequence, most recent first: the two 10:05 events (later log row first), then the 10:00 view
    assert [frame.loc[3, f"hist_behavior_{j}"] for j in range(3)] == [1, 2, 1]
    assert [frame.loc[1, f"hist_behavior_{j}"] for j in range(3)] == [1, 0, 0]


def test_behavior_features_do_not_see_the_future(taobao, taobao_behavior, build):
    """Removing or scrambling every event at or after a cutoff leaves earlier samples' features unchanged."""
    cutoff = taobao.frame["timestamp"].iloc[len(taobao.frame) // 2]
    before = taobao.frame["timestamp"] < cutoff
    n_before = int(before.sum())
    expected = features(taobao_behavior).iloc[:n_before]

    truncated = build(sub_log(taobao, taobao.frame[before]), "behavior", sequence_length=4, max_vocab=10**6)
    pd.testing.assert_frame_equal(features(truncated), expected)

    scrambled = taobao.frame.copy()
    rng = np.random.default_rng(0)
    late = np.flatnonzero(~before.to_numpy())
    for column in ("item_id", "category_id", "behavior"):
        values = scrambled[column].to_numpy().copy()
        values[late] = values[rng.permutation(late)]
        scrambled[column] = pd.Categorical(values, categories=scrambled[column].cat.categories)
    rebuilt = build(sub_log(taobao, scrambled), "behavior", sequence_length=4, max_vocab=10**6)
    pd.testing.assert_frame_equal(features(rebuilt).iloc[:n_before], expected)
    assert not features(rebuilt).iloc[n_before:].equals(features(taobao_behavior).iloc[n_before:])


def test_behavior_task_needs_two_behaviours():
    log = make_log([("u1", "i1", "c1", "view", "2024-01-01 10:00:00"),
                    ("u2", "i2", "c1", "view", "2024-01-01 11:00:00")])
    with pytest.raises(InvalidDataError, match="single behaviour 'view'; behaviour classification needs at least two"):
        build_dataset(log, "behavior")
    with pytest.raises(InvalidDataError, match="single behaviour 'view'; behaviour classification needs at least two"):
        TASKS["behavior"]().class_counts(log)


@pytest.mark.parametrize("sample, task, params", [
    ("taobao", "behavior", {}), ("retailrocket", "behavior", {"sequence_length": 0}),
    ("taobao", "purchase", {"n_windows": 2}), ("criteo", "table", {}),
])
def test_class_counts_without_building_equal_the_built_datasets(sample, task, params):
    """inspect counts classes with Task.class_counts (the behaviour task without building features): the
    counts, and their order, are the dataset's."""
    source = load_sample(sample)
    builder = TASKS[task](**params)
    counts = builder.class_counts(source)
    assert counts == build_dataset(source, task, **params).class_counts()
    assert list(counts) == list(build_dataset(source, task, **params).schema.classes)
    if task == "behavior":
        with pytest.raises(InvalidParameterError, match="needs a log"):
            builder.class_counts(load_sample("criteo"))


def test_behavior_task_on_retailrocket_and_plain_columns(retailrocket):
    dataset = build_dataset(retailrocket, "behavior", sequence_length=2)
    assert dataset.class_counts() == {"view": 2_695, "cart": 62, "buy": 14}
    assert "category" not in dataset.schema.categorical                   # RetailRocket events have none
    assert set(dataset.schema.sequences) == {"hist_item", "hist_behavior"}
    assert not any(c.startswith("category_") for c in dataset.schema.numeric)
    assert build_dataset(retailrocket, "behavior", sequence_length=0).schema.sequences == {}
    plain = make_log([("a", "x", "c", "view", "2024-01-01 10:00"), ("a", "y", "c", "buy", "2024-01-01 11:00")],
                     categorical=False)
    assert build_dataset(plain, "behavior").class_counts() == {"view": 1, "buy": 1}


def test_vocabulary_cap_sends_rare_ids_to_zero(taobao):
    dataset = build_dataset(taobao, "behavior", sequence_length=2, max_vocab=50)
    schema, frame = dataset.schema, dataset.frame
    assert schema.cardinality["item"] == 50 and schema.cardinality["hist_item"] == 50
    kept = frame.loc[frame["item"] > 0, "item"]
    assert kept.nunique() == 50
    # the kept items are the 50 most frequent ones
    top = taobao.frame["item_id"].astype(str).value_counts()
    kept_counts = taobao.frame.loc[frame["item"] > 0, "item_id"].astype(str).value_counts()
    assert len(kept_counts) == 50 and kept_counts.min() >= top.iloc[49] > top.iloc[50:].max() - 1
    assert (frame["item"] == 0).mean() > 0.5


def _with_hot_item(log: BehaviorLog, late: np.ndarray) -> BehaviorLog:
    """``log`` with every event where ``late`` is true about one new item: frequent only in that period."""
    frame = log.frame.copy()
    frame["item_id"] = pd.Categorical(np.where(late, "hot-item", frame["item_id"].astype(str)))
    return sub_log(log, frame)


def test_behavior_vocabularies_come_from_the_events_before_the_test_cut(taobao, build):
    """With a binding cap, an item frequent only in the test period gets no code of its own and displaces
    no training item: the rows before the cut are the same with or without it."""
    spec = SplitSpec(method="temporal", test_size=0.2)
    params = dict(sequence_length=3, max_vocab=50)
    base = build(taobao, "behavior", split=spec, **params)
    split = split_dataset(base, spec)
    late = (taobao.frame["timestamp"] >= base.frame[TIME].iloc[split.test].min()).to_numpy()
    assert late.sum() == len(split.test)                     # the cut the vocabulary used is the split's
    before = taobao.frame.loc[~late, "item_id"].astype(str).value_counts()
    kept = taobao.frame.loc[(base.frame["item"] > 0).to_numpy(), "item_id"].astype(str).unique()
    assert len(kept) == 50 and sorted(before.loc[kept], reverse=True) == list(before.iloc[:50])

    hot = _with_hot_item(taobao, late)
    rebuilt = build(hot, "behavior", split=spec, **params)
    assert (rebuilt.frame.loc[late, "item"] == 0).all()     # the most frequent item of the log, yet no code
    pd.testing.assert_frame_equal(features(rebuilt)[~late], features(base)[~late])
    assert rebuilt.schema.cardinality == base.schema.cardinality
    whole_log = build(hot, "behavior", **params)     # vocabularies over the whole log: it takes a code
    assert (whole_log.frame.loc[late, "item"] > 0).all()
    assert not features(whole_log)[~late].equals(features(base)[~late])


def test_purchase_vocabularies_come_from_the_events_before_the_test_cut(taobao, build):
    spec = SplitSpec(method="temporal", test_size=0.2)
    params = dict(label_window_days=1, feature_window_days=2, n_windows=3, sequence_length=3, max_vocab=20)
    base = build(taobao, "purchase", split=spec, **params)
    split = split_dataset(base, spec)
    late = (taobao.frame["timestamp"] >= base.frame[TIME].iloc[split.test].min()).to_numpy().copy()
    late[-1] = False                                         # keep the last event: it fixes the anchors
    hot = _with_hot_item(taobao, late)
    pd.testing.assert_frame_equal(features(build(hot, "purchase", split=spec, **params)), features(base))
    # over the whole span the hot item would take one of the 20 codes from a training item
    assert not features(build(hot, "purchase", **params)).equals(
        features(build(taobao, "purchase", **params)))


# --- purchase task --------------------------------------------------------------------------------

PURCHASE_ROWS = [
    ("u1", "i1", "c1", "view", "2024-01-01 10:00:00"),
    ("u2", "i3", "c2", "view", "2024-01-01 08:00:00"),
    ("u1", "i1", "c1", "cart", "2024-01-02 10:00:00"),
    ("u1", "i2", "c1", "view", "2024-01-02 12:00:00"),
    ("u1", "i1", "c1", "buy", "2024-01-03 09:00:00"),
    ("u2", "i3", "c2", "buy", "2024-01-03 20:00:00"),
    ("u1", "i2", "c1", "buy", "2024-01-04 05:00:00"),
    ("u3", "i4", "c3", "buy", "2024-01-04 12:00:00"),
    ("u3", "i5", "c3", "view", "2024-01-04 23:59:59"),
]


def test_purchase_labels_and_features_on_a_hand_made_log(build):
    log = make_log(PURCHASE_ROWS)
    dataset = build(log, "purchase", label_window_days=1, feature_window_days=2, n_windows=2,
                            sequence_length=3)
    # last event 01-04 23:59:59 -> windows end 01-05 00:00; anchors 01-03 and 01-04 00:00 (UTC)
    users = dataset.frame[USER].astype(str)
    anchors = dataset.frame[TIME].dt.strftime("%m-%d %H:%M")
    items = _items(dataset, log)
    got = {(u, a, i): int(y) for u, a, i, y in zip(users, anchors, items, dataset.y)}
    assert got == {
        ("u1", "01-03 00:00", "i1"): 1, ("u1", "01-03 00:00", "i2"): 0,
        ("u2", "01-03 00:00", "i3"): 1,                     # u2 bought without a cart
        ("u1", "01-04 00:00", "i1"): 0, ("u1", "01-04 00:00", "i2"): 1,
        ("u2", "01-04 00:00", "i3"): 0,                     # u3 had no behaviour before its buy
    }
    assert dataset.schema.classes == ("no_buy", "buy") and dataset.class_counts() == {"no_buy": 3, "buy": 3}

    def sample(user, anchor, item):
        return dataset.frame[(users == user) & (anchors == anchor) & (items == item)].iloc[0]

    f = sample("u1", "01-03 00:00", "i1")
    assert [f.user_item_view_count, f.user_item_cart_count, f.user_item_buy_count] == [1, 1, 0]
    assert [f.user_view_count, f.user_cart_count, f.user_buy_count] == [2, 1, 0]
    assert [f.category_view_count, f.category_cart_count, f.user_category_view_count] == [2, 1, 2]
    assert f.user_item_hours_since_prev == pytest.approx(14.0)      # 01-02 10:00 -> 01-03 00:00
    assert f.user_hours_since_prev == pytest.approx(12.0)           # 01-02 12:00 -> 01-03 00:00
    assert [f[f"hist_behavior_{j}"] for j in range(3)] == [1, 2, 1]  # view i2, cart i1, view i1 (view=1, cart=2)
    later = sample("u1", "01-04 00:00", "i1")                       # window 01-02 .. 01-04: the 01-01 view is out
    assert [later.user_item_view_count, later.user_item_cart_count, later.user_item_buy_count] == [0, 1, 1]
    assert [later[f"hist_behavior_{j}"] for j in range(3)] == [3, 1, 2]   # buy i1, view i2, cart i1
    assert sample("u2", "01-04 00:00", "i3").user_item_buy_count == 1


def _items(dataset, log) -> pd.Series:
    """Raw item id of each purchase sample, decoded through the first-appearance vocabulary."""
    first_seen = pd.unique(log.frame["item_id"].astype(str))
    return dataset.frame["item"].map(lambda code: first_seen[code - 1]).astype(str)


def test_purchase_features_do_not_see_the_label_window(taobao, build):
    params = dict(label_window_days=1, feature_window_days=2, n_windows=3, sequence_length=3, max_vocab=10**6)
    base = build(taobao, "purchase", **params)
    last_anchor = base.frame[TIME].max()
    log = taobao.frame
    in_label = (log["timestamp"] >= last_anchor).to_numpy().copy()
    in_label[-1] = False                                    # keep the last event: it fixes the anchors
    rng = np.random.default_rng(1)
    scrambled = log.copy()
    values = scrambled["behavior"].to_numpy().copy()
    rows = np.flatnonzero(in_label)
    values[rows] = rng.choice(["buy", "cart", "view"], size=len(rows))
    scrambled["behavior"] = pd.Categorical(values, categories=log["behavior"].cat.categories)
    changed = build(sub_log(taobao, scrambled), "purchase", **params)
    pd.testing.assert_frame_equal(features(changed), features(base))
    assert not np.array_equal(changed.y, base.y)

    dropped = build(sub_log(taobao, log[~in_label]), "purchase", **params)
    pd.testing.assert_frame_equal(features(dropped), features(base))
    at_last = (base.frame[TIME] == last_anchor).to_numpy()
    assert dropped.y[at_last].sum() == 0 and base.y[at_last].sum() > 0
    np.testing.assert_array_equal(dropped.y[~at_last], base.y[~at_last])


def test_purchase_task_on_taobao(taobao):
    dataset = build_dataset(taobao, "purchase")
    anchors = dataset.frame[TIME].drop_duplicates()
    assert len(anchors) == 5 and (anchors.diff().dropna() == pd.Timedelta(days=1)).all()
    counts = dataset.class_counts()
    assert counts["buy"] > 50 and counts["no_buy"] > 100 * counts["buy"] / 2
    assert not dataset.frame.loc[:, list(dataset.schema.numeric)].isna().any().any()
    # no pair appears twice at one anchor
    assert not dataset.frame.duplicated([USER, TIME, "item"]).loc[dataset.frame["item"] > 0].any()


def test_purchase_task_errors(retailrocket, taobao):
    no_buy = make_log([("u1", "i1", "c1", "view", "2024-01-01"), ("u1", "i1", "c1", "cart", "2024-01-03")])
    with pytest.raises(InvalidDataError, match="no 'buy' events"):
        build_dataset(no_buy, "purchase")
    early_buy = make_log([("u1", "i1", "c1", "buy", "2024-01-01"), ("u1", "i1", "c1", "view", "2024-01-10")])
    with pytest.raises(InvalidDataError, match="label windows leave no buy events"):
        build_dataset(early_buy, "purchase", n_windows=2)
    with pytest.raises(InvalidParameterError, match="n_windows"):
        build_dataset(taobao, "purchase", n_windows=20)
    with pytest.raises(InvalidDataError, match="No candidate pair converts"):
        build_dataset(retailrocket, "purchase", label_window_days=7, n_windows=3)


# --- feature tables -------------------------------------------------------------------------------


def test_table_task_on_criteo():
    table = load_sample("criteo")
    dataset = build_dataset(table, "table")
    assert dataset.schema.classes == ("0", "1") and dataset.class_counts() == {"0": 151, "1": 49}
    frame, schema = dataset.frame, dataset.schema
    assert len(schema.numeric) == 13 and len(schema.categorical) == 26
    assert all(frame[c].dtype == np.float32 for c in schema.numeric)
    assert frame.loc[:, list(schema.numeric)].isna().any().any()           # Criteo's missing values stay NaN
    raw = table.frame
    for column in schema.categorical:
        assert frame[column].dtype == np.int16                  # the default max_vocab, 10,000
        assert ((frame[column] == 0) == raw[column].isna()).all()           # 0 = missing, all values kept
        assert schema.cardinality[column] == raw[column].nunique()
    capped = build_dataset(table, "table", max_vocab=3)
    assert max(capped.schema.cardinality.values()) == 3
    top = raw["C1"].value_counts()
    assert (capped.frame["C1"] == 1).sum() == top.iloc[0]


def test_table_task_on_string_labels():
    dataset = build_dataset(load_sample("page_blocks0"), "table")
    assert dataset.schema.classes == ("negative", "positive")
    assert dataset.class_counts() == {"negative": 4_912, "positive": 559}


# --- splits ---------------------------------------------------------------------------------------


def test_split_is_a_pure_function_of_its_inputs(taobao_behavior):
    spec = SplitSpec(method="stratified", test_size=0.2, valid_size=0.1, seed=3)
    first, second = split_dataset(taobao_behavior, spec), split_dataset(taobao_behavior, spec)
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(first, part), getattr(second, part))
    np.random.seed(123)                                     # global state plays no part
    np.testing.assert_array_equal(split_dataset(taobao_behavior, spec).test, first.test)
    other = split_dataset(taobao_behavior, SplitSpec(method="stratified", seed=4))
    assert not np.array_equal(other.test, first.test)
    # the test part does not move when only the validation share changes
    wider = split_dataset(taobao_behavior, SplitSpec(method="stratified", valid_size=0.3, seed=3))
    np.testing.assert_array_equal(wider.test, first.test)


def test_stratified_split_keeps_class_shares(taobao_behavior):
    split = split_dataset(taobao_behavior, SplitSpec(method="stratified", test_size=0.25, valid_size=0.2))
    y = taobao_behavior.y
    everything = np.concatenate([split.train, split.valid, split.test])
    assert len(everything) == len(y) == len(np.unique(everything))
    overall = np.bincount(y) / len(y)
    for part, share in (("test", 0.25), ("valid", 0.75 * 0.2)):
        rows = getattr(split, part)
        assert len(rows) / len(y) == pytest.approx(share, abs=0.002)
        np.testing.assert_allclose(np.bincount(y[rows], minlength=4) / len(rows), overall, atol=0.002)


def test_grouped_split_has_disjoint_users(taobao_behavior):
    split = split_dataset(taobao_behavior, SplitSpec(method="stratified", group_by_user=True, seed=1))
    users = taobao_behavior.frame[USER].astype(str).to_numpy()
    train, valid, test = (set(users[getattr(split, p)]) for p in ("train", "valid", "test"))
    assert not (train & test) and not (train & valid) and not (valid & test)
    assert len(split.test) / len(users) == pytest.approx(0.2, abs=0.03)
    assert (np.bincount(taobao_behavior.y[split.test], minlength=4) > 0).all()


def test_temporal_split_puts_the_future_in_test(taobao_behavior, taobao):
    split = split_dataset(taobao_behavior, SplitSpec(method="temporal", test_size=0.2, valid_size=0.1))
    times = taobao_behavior.frame[TIME]
    assert times.iloc[split.test].min() > times.iloc[split.train].max()
    assert times.iloc[split.test].min() > times.iloc[split.valid].max()
    assert times.iloc[split.valid].min() > times.iloc[split.train].max()
    assert len(split.test) / len(times) == pytest.approx(0.2, abs=0.001)
    assert (np.bincount(taobao_behavior.y[split.train], minlength=4) > 0).all()
    # purchase samples share their anchor time: a cut never splits an anchor
    purchase = build_dataset(taobao, "purchase")
    cut = split_dataset(purchase, SplitSpec(method="temporal"))
    anchors = purchase.frame[TIME]
    assert anchors.iloc[cut.test].nunique() == 1 and anchors.iloc[cut.test].min() > anchors.iloc[cut.train].max()


def test_every_split_method_offered_for_a_task_splits_its_data():
    assert split_methods("behavior") == split_methods("purchase") == ("temporal", "stratified")
    assert split_methods("table") == ("stratified",)                       # a table has no event times
    assert split_methods("next_item") == ("leave_last_out", "temporal")
    table = build_dataset(load_sample("criteo"), "table")
    for method in split_methods("table"):
        assert len(split_dataset(table, SplitSpec(method=method)).test) > 0


def test_split_errors(taobao_behavior):
    table = build_dataset(load_sample("criteo"), "table")
    with pytest.raises(InvalidParameterError, match="method='temporal' needs event times"):
        split_dataset(table, SplitSpec(method="temporal"))
    with pytest.raises(InvalidParameterError, match="group_by_user=True needs user ids"):
        split_dataset(table, SplitSpec(method="stratified", group_by_user=True))
    table_split = split_dataset(table, SplitSpec(method="stratified"))
    assert len(table_split.test) == round(0.2 * 151) + round(0.2 * 49)
    with pytest.raises(InvalidParameterError, match="test_size"):
        split_dataset(taobao_behavior, SplitSpec(test_size=1.5))
    with pytest.raises(InvalidParameterError, match="method"):
        split_dataset(taobao_behavior, SplitSpec(method="random"))
    tiny = taobao_behavior.subset(np.r_[np.flatnonzero(taobao_behavior.y == 0)[:50],
                                        np.flatnonzero(taobao_behavior.y == 3)[:1]])
    with pytest.raises(InvalidDataError, match="'buy' have a single row"):
        split_dataset(tiny, SplitSpec(method="stratified"))
    # a class whose rows all come late cannot be learned under a temporal split
    late_buy = taobao_behavior.subset(np.r_[np.flatnonzero(taobao_behavior.y == 0)[:500],
                                            np.flatnonzero(taobao_behavior.y == 3)[-5:]])
    late_buy.frame = late_buy.frame.sort_values(TIME, kind="stable").reset_index(drop=True)
    with pytest.raises(InvalidDataError, match="'buy' would have no training rows"):
        split_dataset(late_buy, SplitSpec(method="temporal", test_size=0.3))


def test_datasets_feed_the_models(taobao):
    """The schema contract the models rely on: vocabulary sizes for every code column, equal lengths."""
    from recexp.models.base import input_spec, to_tensors

    for dataset in (build_dataset(taobao, "purchase", sequence_length=3),
                    build_dataset(load_sample("criteo"), "table")):
        spec = input_spec(dataset.schema)
        tensors = to_tensors(dataset)
        assert spec.n_classes == 2 and len(tensors) == len(dataset)
        assert tensors.inputs.numeric.shape == (len(dataset), len(dataset.schema.numeric))


def test_class_counts_of_chosen_rows_match_the_subset(taobao_csv):
    from recexp.data import load
    from recexp.tasks import build_dataset, split_dataset

    dataset = build_dataset(load(taobao_csv), "behavior")
    split = split_dataset(dataset)
    for rows in (split.train, split.valid, split.test):
        assert dataset.class_counts(rows) == dataset.subset(rows).class_counts()
    assert sum(dataset.class_counts(split.test).values()) == len(split.test)


@pytest.mark.parametrize("n_codes,dtype", [(4, np.int8), (127, np.int8), (128, np.int16), (20_000, np.int16),
                                           (32_767, np.int16), (32_768, np.int32), (2**31, np.int64)])
def test_code_columns_take_the_narrowest_type_of_their_vocabulary_cap(n_codes, dtype):
    assert code_dtype(n_codes) == dtype


def test_a_vocabulary_cap_above_int16_keeps_every_code(taobao):
    narrow = build_dataset(taobao, "behavior", sequence_length=2)
    wide = build_dataset(taobao, "behavior", sequence_length=2, max_vocab=100_000)
    assert narrow.frame["item"].dtype == np.int16 and wide.frame["item"].dtype == np.int32
    assert wide.frame["item"].max() == wide.schema.cardinality["item"] == 52_829          # beyond int16
    assert wide.frame["hist_item_0"].max() > np.iinfo(np.int16).max
    # the sample's 2,847 categories fit both caps: the same codes in either type
    columns = ["category", "hist_category_0", "hist_category_1", "hist_behavior_0"]
    np.testing.assert_array_equal(wide.frame[columns].to_numpy(np.int64), narrow.frame[columns].to_numpy(np.int64))


@pytest.mark.parametrize("sample, task, params, tolerance", [
    ("retailrocket", "behavior", {}, 0.0),             # 2,771 events: built whole, exact
    ("taobao", "behavior", {}, 0.05),                  # 80k events: every 2nd user's history, scaled
    ("taobao", "purchase", {"n_windows": 3}, 0.25),     # rows follow users' pairs: looser
    ("criteo", "table", {}, 0.05),
])
def test_dataset_size_is_estimated_before_building(sample, task, params, tolerance):
    source = load_sample(sample)
    estimate = estimate_dataset(source, task, **params)
    built = build_dataset(source, task, **params)
    assert estimate.exact == (len(source.frame) <= 50_000)
    assert estimate.rows == pytest.approx(len(built), rel=tolerance)
    assert estimate.dataset_bytes == pytest.approx(built.frame.memory_usage(index=False).sum(), rel=tolerance)
    assert estimate.peak_bytes > estimate.dataset_bytes
