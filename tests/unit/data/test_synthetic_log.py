"""The synthetic log generator: seeded, exact size, long tails, nested categories, sessions, a funnel."""

import numpy as np
import pandas as pd
import pytest

from recexp.data import load
from recexp.data.synthetic import SYNTHETIC_COLUMNS, generate_log, write_log
from recexp.errors import InvalidParameterError


@pytest.fixture(scope="module")
def log():
    return generate_log(60_000, n_users=600, n_items=4_000, n_categories=200, seed=11)


def test_seeded_and_exact_size(log):
    assert len(log) == 60_000 and tuple(log.columns) == SYNTHETIC_COLUMNS
    assert log.attrs["synthetic"] is True
    pd.testing.assert_frame_equal(log, generate_log(60_000, n_users=600, n_items=4_000, n_categories=200, seed=11))
    assert not log.equals(generate_log(60_000, n_users=600, n_items=4_000, n_categories=200, seed=12))
    for n in (1, 7, 999):
        assert len(generate_log(n, seed=0)) == n


def test_sorted_in_time_within_the_requested_days(log):
    assert log["timestamp"].is_monotonic_increasing
    start = pd.Timestamp("2017-11-25", tz="UTC").timestamp()
    assert log["timestamp"].min() >= start
    assert log["timestamp"].max() < start + 10 * 86400    # 9 days plus the tail of the last sessions


def test_funnel_views_dominate_and_buys_follow_carts(log):
    shares = log["behavior_type"].value_counts(normalize=True)
    assert shares["view"] > 0.8
    assert shares["view"] > 10 * shares["cart"] and shares["cart"] > shares["buy"]
    assert shares["fav"] > 0.005 and shares["buy"] > 0.005
    carts = log[log["behavior_type"] == "cart"].groupby(["user_id", "item_id"])["timestamp"].min()
    buys = log[log["behavior_type"] == "buy"].set_index(["user_id", "item_id"])["timestamp"]
    joined = buys.to_frame("buy").join(carts.rename("cart"))
    assert (joined["cart"] <= joined["buy"]).mean() > 0.7   # most purchases follow a cart of the same item


def test_items_nested_in_categories_and_long_tails(log):
    assert log.groupby("item_id")["category_id"].nunique().max() == 1
    item_counts = np.sort(log["item_id"].value_counts().to_numpy())[::-1]
    top = item_counts[: len(item_counts) // 10].sum() / item_counts.sum()
    assert top > 0.4                                          # top 10% of items: most of the events
    user_counts = log["user_id"].value_counts()
    assert user_counts.max() > 10 * user_counts.median()


def test_sessions_are_bursts_of_activity(log):
    gaps = log.groupby("user_id")["timestamp"].diff().dropna()
    assert gaps.median() < 600           # within-session gaps are seconds to minutes...
    assert gaps.quantile(0.95) > 3_600   # ...and sessions are hours to days apart


def test_written_files_are_labelled_and_load_back(tmp_path, log):
    csv_path = write_log(log, tmp_path, format="csv")
    parquet_path = write_log(log, tmp_path, format="parquet", name="synthetic_small")
    assert csv_path.name == "synthetic_60000rows.csv" and parquet_path.name == "synthetic_small.parquet"
    from_csv, from_parquet = load(csv_path), load(parquet_path)
    assert from_csv.mapping == {"user": "user_id", "item": "item_id", "category": "category_id",
                                "behavior": "behavior_type", "timestamp": "timestamp"}
    assert from_csv.report.rows_kept == 60_000
    assert from_csv.fingerprint == from_parquet.fingerprint
    assert from_csv.report.behavior_values == log["behavior_type"].value_counts().to_dict()


def test_bad_parameters():
    with pytest.raises(InvalidParameterError, match="n_rows"):
        generate_log(0)
    with pytest.raises(InvalidParameterError, match="n_categories"):
        generate_log(100, n_items=5, n_categories=10)
    with pytest.raises(InvalidParameterError, match="format"):
        write_log(generate_log(10), "/tmp", format="xlsx")
