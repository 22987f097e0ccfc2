"""The loader's fast paths give the same answers as plain pandas on the bundled real logs.

Ids encoded by direct addressing or Arrow dictionaries, duplicates counted within runs of equal
timestamps, column types taken from the sniffed sample, the value-based fingerprint.
"""

import numpy as np
import pandas as pd
import pytest

from recexp.data import BEHAVIOR_SYNONYMS, frame_fingerprint, load

TAOBAO_COLUMNS = ["user_id", "item_id", "category_id", "behavior", "timestamp"]


@pytest.fixture(scope="module")
def taobao_reference(taobao_csv):
    """The Taobao sample read by plain pandas: the truncated last line dropped, sorted by time (stable)."""
    frame = pd.read_csv(taobao_csv, header=None, names=TAOBAO_COLUMNS).dropna()
    frame["behavior"] = frame["behavior"].map(BEHAVIOR_SYNONYMS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="s", utc=True)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True).astype(
        {c: "int64" for c in TAOBAO_COLUMNS[:3]})


def _values(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with categoricals decoded, for a comparison of values only."""
    return frame.astype({c: frame[c].cat.categories.dtype for c in frame.columns
                         if isinstance(frame[c].dtype, pd.CategoricalDtype)})


def _epoch_seconds(times: pd.Series) -> pd.Series:
    return (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def _write(tmp_path, frame: pd.DataFrame, name: str = "log.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_taobao_frame_equals_plain_pandas(taobao_csv, taobao_reference):
    log = load(taobao_csv)
    frame = log.frame
    pd.testing.assert_frame_equal(_values(frame).astype({"behavior": "str"}),
                                  taobao_reference.astype({"behavior": "str"}), check_dtype=False)
    for column in ("user_id", "item_id", "category_id"):        # categories: exactly the values, sorted
        categories = frame[column].cat.categories
        assert categories.is_monotonic_increasing and categories.is_unique
        assert categories.equals(pd.Index(np.unique(taobao_reference[column])))


def test_duplicates_counted_as_pandas_does(taobao_reference, tmp_path):
    rows = taobao_reference.head(20_000).copy()
    rows["timestamp"] = _epoch_seconds(rows["timestamp"])
    repeats = rows.sample(300, random_state=0)                  # exact repeats (at any position)
    same_time = rows.sample(200, random_state=1)                # same time, another item: not duplicates
    same_time["item_id"] += 1
    source = pd.concat([rows, repeats, same_time, repeats.head(50)]).sample(frac=1, random_state=2)
    log = load(_write(tmp_path, source))
    expected = int(source.duplicated().sum())
    assert expected >= 350
    assert log.report.duplicates == expected == int(log.frame.duplicated().sum())
    assert any(f"{expected:,}" in w and "duplicate" in w for w in log.report.warnings)


def test_duplicates_with_millisecond_times(retailrocket_csv):
    log = load(retailrocket_csv)
    assert log.report.duplicates == int(log.frame.duplicated().sum()) == 1


@pytest.mark.parametrize("transform", ["wide", "text"])
def test_ids_outside_the_direct_addressing_range(taobao_reference, tmp_path, transform):
    rows = taobao_reference.head(5_000).copy()
    rows["timestamp"] = _epoch_seconds(rows["timestamp"])
    if transform == "wide":                  # ids spread over ~1e18: sorted unique + inverse instead
        rows["item_id"] = rows["item_id"] * 10**11 + 7
    else:
        rows["item_id"] = "sku-" + rows["item_id"].astype(str)
    rows.loc[rows.index[::10], "category_id"] = np.nan         # a missing optional id stays missing
    log = load(_write(tmp_path, rows))
    items = log.frame["item_id"]
    assert items.cat.categories.is_monotonic_increasing
    assert list(items.astype(items.cat.categories.dtype)) == list(rows["item_id"])
    assert log.frame["category_id"].isna().sum() == rows["category_id"].isna().sum() == 500
    assert log.report.rows_kept == 5_000


def test_a_type_broken_after_the_sniffed_sample(taobao_reference, tmp_path):
    rows = taobao_reference.copy()
    rows["timestamp"] = _epoch_seconds(rows["timestamp"])
    rows["item_id"] = rows["item_id"].astype(object)
    rows.loc[rows.index[-5], "item_id"] = "x-1"          # far past the first MB the types are taken from
    path = _write(tmp_path, rows)
    assert path.stat().st_size > 2 << 20
    log = load(path)
    assert log.report.rows_kept == len(rows)
    assert "x-1" in log.frame["item_id"].cat.categories
    assert log.frame["item_id"].cat.categories.is_monotonic_increasing


def test_fingerprint_is_value_based(taobao_csv):
    log = load(taobao_csv)
    frame = log.frame
    assert frame_fingerprint(frame) == log.fingerprint
    reordered = frame.assign(
        behavior=frame["behavior"].cat.reorder_categories(frame["behavior"].cat.categories[::-1]),
        item_id=frame["item_id"].cat.reorder_categories(frame["item_id"].cat.categories[::-1]))
    assert frame_fingerprint(reordered) == log.fingerprint
    changed = frame.copy()
    changed.loc[changed.index[123], "behavior"] = "buy" if frame["behavior"].iloc[123] != "buy" else "view"
    assert frame_fingerprint(changed) != log.fingerprint
    later = frame.assign(timestamp=frame["timestamp"] + pd.Timedelta(seconds=1))
    assert frame_fingerprint(later) != log.fingerprint
    unused = frame.assign(user_id=frame["user_id"].cat.add_categories([-1]))
    assert frame_fingerprint(unused) != log.fingerprint         # categories are part of the dtype


def test_quoted_header_alone_and_quoted_values_with_line_breaks(taobao_reference, tmp_path):
    rows = taobao_reference.head(2_000).copy()
    rows["timestamp"] = _epoch_seconds(rows["timestamp"])
    plain = tmp_path / "plain.csv"
    rows.to_csv(plain, index=False, quoting=0)
    header = plain.read_text().split("\n", 1)
    quoted_header = tmp_path / "quoted_header.csv"
    quoted_header.write_text(",".join(f'"{n}"' for n in header[0].split(",")) + "\n" + header[1])
    rows["note"] = ["two\nlines" if i % 100 == 0 else "" for i in range(len(rows))]
    multiline = _write(tmp_path, rows, "multiline.csv")
    for path in (quoted_header, multiline):
        log = load(path)
        assert log.report.rows_kept == 2_000 and not log.report.dropped, path.name
    assert load(multiline).report.unused_columns == ["note"]
