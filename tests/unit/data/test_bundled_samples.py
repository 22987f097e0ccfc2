"""Every bundled real sample loads with the right mapping, counts and reported defects (data/README.md)."""

import csv

import numpy as np
import pandas as pd
import pytest

from recexp.data import BehaviorLog, FeatureTable, load
from recexp.data.samples import DEFAULT_SAMPLE, SAMPLES, get_sample, load_sample, sample_source
from recexp.errors import InvalidParameterError


@pytest.fixture(scope="module")
def taobao():
    return load_sample("taobao")


def test_taobao_counts_mapping_and_defects(taobao):
    report = taobao.report
    assert isinstance(taobao, BehaviorLog)
    assert taobao.mapping == {"user": "c0", "item": "c1", "category": "c2", "behavior": "c3", "timestamp": "c4"}
    assert report.rows_read == 80_107
    assert report.rows_kept == len(taobao.frame) == 80_106
    assert report.dropped == {"truncated row (4 of 5 fields)": 1}
    # data/README.md's pv 71,899 counts the truncated last line too; it is dropped here.
    assert report.behavior_values == {"pv": 71_898, "cart": 4_307, "fav": 2_228, "buy": 1_673}
    assert taobao.frame["behavior"].value_counts().to_dict() == {"view": 71_898, "cart": 4_307, "fav": 2_228,
                                                                "buy": 1_673}
    assert report.duplicates == 0
    assert "no header row" in report.read_as


def test_taobao_out_of_window_timestamps_are_reported_not_dropped(taobao):
    assert taobao.report.timestamp_outliers == 34
    assert any("outside the stated window" in w and ": 34 " in w for w in taobao.report.warnings)
    assert taobao.frame["timestamp"].min() < pd.Timestamp("2017-11-24T16:00:00Z")   # kept
    assert taobao.report.time_range[0].startswith("2017-11-20")


def test_taobao_without_stated_window_still_warns_about_far_outliers(taobao_csv):
    log = load(taobao_csv)
    assert 0 < log.report.timestamp_outliers < 34   # only the far ones (11-20 .. 11-23) without the window
    assert any("far outside the main activity window" in w for w in log.report.warnings)


def test_taobao_frame_contract(taobao):
    frame = taobao.frame
    assert list(frame.columns) == ["user_id", "item_id", "category_id", "behavior", "timestamp"]
    for column in ("user_id", "item_id", "category_id", "behavior"):
        assert isinstance(frame[column].dtype, pd.CategoricalDtype), column
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["user_id"].nunique() == 772
    assert frame["item_id"].nunique() == 52_829
    assert taobao.behaviors == ["view", "cart", "fav", "buy"]
    assert len(taobao.fingerprint) == 16 and taobao.fingerprint == load_sample("taobao").fingerprint


def test_sort_is_stable_and_keeps_file_order_within_equal_times(taobao_csv):
    raw = pd.read_csv(taobao_csv, header=None, names=["u", "i", "c", "b", "t"]).dropna()  # pandas pads the cut line
    expected = raw.sort_values("t", kind="stable")
    log = load(taobao_csv)
    assert log.frame["user_id"].astype("int64").tolist() == expected["u"].tolist()
    assert log.frame["item_id"].astype("int64").tolist() == expected["i"].tolist()


def test_retailrocket_millisecond_timestamps_and_unused_column(retailrocket_csv):
    log = load(retailrocket_csv)
    assert log.mapping == {"user": "visitorid", "item": "itemid", "behavior": "event", "timestamp": "timestamp"}
    assert log.report.rows_kept == 2_771 and not log.report.dropped
    assert log.report.behavior_values == {"view": 2_695, "addtocart": 62, "transaction": 14}
    assert log.frame["behavior"].value_counts().to_dict() == {"view": 2_695, "cart": 62, "buy": 14}
    assert log.report.unused_columns == ["transactionid"]
    assert (log.frame["timestamp"].dt.year == 2015).all()
    assert log.report.time_range[0].startswith("2015-05-03") and log.report.time_range[1].startswith("2015-09-18")
    assert "epoch ms" in log.report.read_as
    assert log.report.duplicates == 1
    assert log.report.nulls["transactionid"] == 2_771 - 14   # only transactions carry one


def _empty_cells(path, delimiter=","):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    return rows[0], rows[1:]


def test_criteo_table_types_and_missing_values(criteo_csv):
    table = load(criteo_csv, kind="table", label_column="label")
    assert isinstance(table, FeatureTable)
    assert table.numeric == [f"I{i}" for i in range(1, 14)]
    assert table.categorical == [f"C{i}" for i in range(1, 27)]
    assert table.frame["label"].value_counts().to_dict() == {0: 151, 1: 49}
    header, rows = _empty_cells(criteo_csv)
    for j, name in enumerate(header):
        empty = sum(1 for r in rows if r[j] == "")
        assert int(table.frame[name].isna().sum()) == empty == table.report.nulls[name], name
    assert table.frame["I1"].dtype == np.float64
    assert isinstance(table.frame["C1"].dtype, pd.CategoricalDtype)


def test_criteo_raw_ragged_headerless_tsv_is_padded(data_dir):
    table = load(data_dir / "criteo_sample" / "criteo_1k_raw.tsv", kind="table", header=False, label_column="c0")
    assert list(table.frame.columns) == [f"c{i}" for i in range(40)]
    assert table.report.rows_kept == 1_000 and not table.report.dropped
    assert table.frame["c0"].value_counts().to_dict() == {0: 795, 1: 205}
    assert table.numeric == [f"c{i}" for i in range(1, 14)]
    assert table.categorical == [f"c{i}" for i in range(14, 40)]
    assert any("498 rows" in w and "fewer fields" in w for w in table.report.warnings)
    # rows with 37 fields miss the last three categorical columns
    assert table.frame["c39"].isna().sum() >= 498


def test_yeast_index_column_left_out(data_dir):
    table = load_sample("yeast_me2")
    assert table.report.unused_columns == ["unnamed_0"]
    assert table.numeric == [str(i) for i in range(8)]
    assert table.frame["TARGET"].value_counts().to_dict() == {-1: 1_433, 1: 51}


def test_keel_page_blocks_malformed_row_dropped_and_reported():
    table = load_sample("page_blocks0")
    assert table.report.rows_read == 5_472 and table.report.rows_kept == 5_471
    (reason, count), = table.report.dropped.items()
    assert count == 1 and "dangling decimal point" in reason
    assert any("18.,500" in w for w in table.report.warnings)
    assert table.frame["Class"].value_counts().to_dict() == {"negative": 4_912, "positive": 559}
    assert len(table.numeric) == 10


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_matches_its_registered_class_mix(name):
    sample = SAMPLES[name]
    loaded = load_sample(name)
    assert loaded.kind == sample.kind
    if loaded.kind == "log":
        assert loaded.report.behavior_values == sample.class_mix
    else:
        counts = loaded.frame[loaded.label_column].astype(str).value_counts().to_dict()
        assert counts == sample.class_mix
    assert sample.description and sample.path.exists()


def test_sample_registry_helpers():
    assert DEFAULT_SAMPLE == "taobao"
    source = sample_source("criteo_raw")
    assert source.kind == "table" and source.label_column == "c0" and source.header is False
    assert source.load().report.rows_kept == 1_000
    assert sample_source("taobao").load().report.timestamp_outliers == 34   # the stated window travels along
    with pytest.raises(InvalidParameterError, match="taobao"):
        get_sample("no-such-sample")
