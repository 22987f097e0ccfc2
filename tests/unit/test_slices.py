"""Slices of a log task's test rows (recexp.slices), on the bundled Taobao sample: learned from training rows only."""

import math
from dataclasses import replace

import numpy as np
import pytest

from recexp.data.samples import load_sample
from recexp.dataset import ITEM, TIME, USER
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.slices import OTHER, Slicer, slice_test_rows
from recexp.tasks import SplitSpec, build_dataset, split_dataset

SPEC = SplitSpec(method="temporal", test_size=0.2)


@pytest.fixture(scope="module")
def taobao_log():
    return load_sample("taobao")


def _prepared(log, task="behavior"):
    dataset = build_dataset(log, task, split=SPEC)
    return dataset, split_dataset(dataset, SPEC)


def _definitions(slicer: Slicer) -> dict:
    return {"items": slicer.item_counts_.sort_index().to_dict(), "users": slicer.user_counts_.sort_index().to_dict(),
            "popularity": slicer.popularity_ranges_, "activity": slicer.activity_ranges_,
            "categories": slicer.categories_}


def _rewrite(log, rows: np.ndarray):
    """The log with the events at ``rows`` all turned to one item of one category (a hot item appears)."""
    frame = log.frame.copy()
    hot_item, hot_category = frame["item_id"].iloc[rows[0]], frame["category_id"].iloc[rows[0]]
    frame.loc[frame.index[rows], "item_id"] = hot_item
    frame.loc[frame.index[rows], "category_id"] = hot_category
    return replace(log, frame=frame)


def test_a_test_period_change_moves_no_slice_boundary(taobao_log):
    dataset, split = _prepared(taobao_log)
    base = Slicer().fit(dataset, split.train)
    times = taobao_log.frame["timestamp"]
    cut = dataset.frame[TIME].iloc[split.test].min()
    late = np.flatnonzero((times >= cut).to_numpy())
    assert len(late) > 1000
    changed_log = _rewrite(taobao_log, late)                  # one item now has every test-period event
    changed, changed_split = _prepared(changed_log)
    np.testing.assert_array_equal(changed_split.train, split.train)
    assert _definitions(Slicer().fit(changed, changed_split.train)) == _definitions(base)
    # the test rows are labelled by the (unchanged) training counts: the hot item is as popular as it was
    labels = slice_test_rows(changed, changed_split)
    hot = changed.frame[ITEM].iloc[changed_split.test]
    assert labels["popularity"].nunique() == 1 and labels["item"].nunique() == 1
    assert (labels["item"] == ("known" if hot.iloc[0] in base.item_counts_.index else "new")).all()

    # the same change in the training period does move them (so the check above can fail)
    early = np.flatnonzero((times < cut).to_numpy())[:3000]         # training rows (validation is later)
    moved, moved_split = _prepared(_rewrite(taobao_log, early))
    assert _definitions(Slicer().fit(moved, moved_split.train))["popularity"] != base.popularity_ranges_


@pytest.mark.parametrize("task", ["behavior", "purchase"])
def test_slice_labels_follow_their_definitions_from_the_training_rows(taobao_log, task):
    dataset, split = _prepared(taobao_log, task)
    labels = slice_test_rows(dataset, split, top_categories=4)
    frame = dataset.frame
    train, test = frame.iloc[split.train], frame.iloc[split.test]
    assert list(labels.index) == list(split.test)
    train_users, train_items = set(train[USER]), set(train[ITEM])
    np.testing.assert_array_equal(labels["user"] == "new", ~test[USER].isin(train_users).to_numpy())
    np.testing.assert_array_equal(labels["item"] == "new", ~test[ITEM].isin(train_items).to_numpy())
    assert (labels["item"] == "new").any() and (labels["item"] == "known").any()

    # popularity decile: ceil(10 x share of training items with at most as many training rows)
    counts = train[ITEM].value_counts()
    counts = counts[counts > 0]
    share = counts.rank(method="max", pct=True)
    expected = test[ITEM].map(lambda item: f"D{math.ceil(round(10 * share[item], 9))} " if item in share.index
                              else "unseen").to_numpy()
    got = labels["popularity"].astype(str).to_numpy()
    assert all(g.startswith(e) for g, e in zip(got, expected))
    for label in labels["popularity"].cat.categories[1:]:               # the row ranges in the labels hold
        items = test[ITEM][(labels["popularity"] == label).to_numpy()]
        span = label.split("(")[1].split(" row")[0].split("-")
        assert counts[items].between(int(span[0]), int(span[-1])).all()

    # top categories by training rows; the rest "other"
    top = train["category"][train["category"] > 0].value_counts().index[:4]
    names = dataset.schema.decode("category", np.asarray(top))
    assert list(labels["category"].cat.categories) == [*names, OTHER]
    decoded = dataset.schema.decode("category", test["category"].to_numpy())
    expected_category = np.where(test["category"].isin(top), decoded, OTHER)
    np.testing.assert_array_equal(labels["category"].astype(str).to_numpy(), expected_category)

    # activity: thirds of the training users by their training rows; users without any: "none"
    per_user = train[USER].value_counts()
    per_user = per_user[per_user > 0]
    segments = ("light", "medium", "heavy")
    third = per_user.rank(method="max", pct=True).map(lambda f: segments[math.ceil(round(3 * f, 9)) - 1])
    expected_activity = test[USER].map(lambda u: third.get(u, "none")).to_numpy()
    np.testing.assert_array_equal(labels["activity"].astype(str).str.split(" ").str[0].to_numpy(), expected_activity)


def test_slices_need_users_and_items(data_dir):
    from recexp.spec import RunSpec, prepare_data

    dataset, split = prepare_data(RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified"}))
    with pytest.raises(InvalidDataError, match="log tasks"):
        slice_test_rows(dataset, split)


def test_bad_slicer_settings_are_sentences(taobao_log):
    dataset, split = _prepared(taobao_log)
    with pytest.raises(InvalidParameterError, match="top_categories"):
        Slicer(top_categories=0).fit(dataset, split.train)
    with pytest.raises(InvalidParameterError, match="n_deciles"):
        Slicer(n_deciles=1).fit(dataset, split.train)
