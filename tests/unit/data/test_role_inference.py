"""Column roles from names and from values; explicit mappings override per role."""

import pandas as pd
import pytest

from recexp.data import infer_mapping, load
from recexp.data.mapping import epoch_unit
from recexp.errors import InvalidDataError, InvalidParameterError, LogMappingError

ROLES = ["user", "item", "category", "behavior", "timestamp"]


@pytest.fixture(scope="module")
def taobao_raw(taobao_csv):
    return pd.read_csv(taobao_csv, header=None, names=[f"c{i}" for i in range(5)]).dropna()


@pytest.mark.parametrize("names", [
    ["user_id", "item_id", "category_id", "behavior_type", "timestamp"],
    ["UserID", "ItemID", "CategoryID", "Behavior", "Time"],
    ["uid", "sku", "cate", "btag", "ts"],
    ["visitor_id", "product_id", "cat", "action", "datetime"],
    ["customer_id", "item", "category", "event_type", "date"],
])
def test_roles_from_names(taobao_raw, names):
    frame = taobao_raw.head(500).set_axis(names, axis=1)
    assert infer_mapping(frame) == dict(zip(ROLES, names))


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 4, 0, 3, 1], [3, 1, 4, 0, 2]])
def test_roles_from_values_in_any_column_order(taobao_raw, order):
    """Headerless Taobao columns in shuffled order: item -> category nesting, user runs, epoch magnitude."""
    shuffled = taobao_raw.iloc[:, order].set_axis([f"c{i}" for i in range(5)], axis=1)
    mapping = infer_mapping(shuffled)
    original = {role: f"c{i}" for role, i in zip(ROLES, range(5))}
    assert {role: order[int(column[1:])] for role, column in mapping.items()} == \
        {role: int(column[1:]) for role, column in original.items()}


def test_user_and_item_without_category_told_apart_by_runs(retailrocket_csv):
    frame = pd.read_csv(retailrocket_csv).drop(columns=["transactionid"])
    anonymous = frame.set_axis(["a", "b", "c", "d"], axis=1)   # timestamp, visitorid, event, itemid
    assert infer_mapping(anonymous) == {"timestamp": "a", "behavior": "c", "user": "b", "item": "d"}


def test_low_information_columns_are_not_taken_for_category(retailrocket_csv):
    # transactionid is almost always empty: it must not become the category.
    assert "category" not in infer_mapping(pd.read_csv(retailrocket_csv))


def test_epoch_units_by_magnitude():
    import numpy as np

    seconds = np.array([1_511_578_835.0, 1_512_000_000.0])
    assert epoch_unit(seconds) == "s"
    assert epoch_unit(seconds * 1e3) == "ms"
    assert epoch_unit(seconds * 1e6) == "us"
    assert epoch_unit(seconds * 1e9) == "ns"
    assert epoch_unit(np.array([1.0, 50_000.0])) is None         # small ids, not times
    assert epoch_unit(np.array([7e8, 4e9])) is None                # spread of 100 years: ids, not a log


def test_mapping_override_per_role(taobao_csv):
    swapped = load(taobao_csv, mapping={"user": "c1", "item": "c0"})
    assert swapped.mapping["user"] == "c1" and swapped.mapping["item"] == "c0"
    assert swapped.frame["user_id"].nunique() == 52_829 and swapped.frame["item_id"].nunique() == 772
    # the other roles are still inferred from what is left
    assert swapped.mapping["timestamp"] == "c4" and swapped.mapping["behavior"] == "c3"


def test_mapping_override_can_drop_the_optional_category(taobao_csv):
    log = load(taobao_csv, mapping={"category": None, "item": "c1"})
    assert "category_id" not in log.frame.columns and "c2" in log.report.unused_columns


def test_mapping_override_errors(taobao_csv):
    with pytest.raises(InvalidParameterError, match="unknown role 'product'"):
        load(taobao_csv, mapping={"product": "c1"})
    with pytest.raises(InvalidDataError, match="Columns: c0, c1, c2, c3, c4"):
        load(taobao_csv, mapping={"user": "user_id"})
    with pytest.raises(InvalidDataError, match="same column"):
        load(taobao_csv, mapping={"user": "c0", "item": "c0"})


@pytest.mark.parametrize("name, header, label", [
    ("criteo_sample/criteo_sample.csv", None, "label"),            # a header row: the column named label
    ("criteo_sample/criteo_1k_raw.tsv", False, "c0"),               # no header: the first column, 0/1
    ("imbalanced_benchmarks/keel_page-blocks0.csv", None, "Class"),
    ("imbalanced_benchmarks/yeast_me2.csv", None, "TARGET"),
])
def test_feature_tables_read_as_logs_are_recognised(data_dir, tmp_path, name, header, label):
    """A table opened as a log says it looks like a feature table, names the label column and how to switch."""
    copy = tmp_path / (data_dir / name).name                     # not the bundled path: no registered settings
    copy.write_bytes((data_dir / name).read_bytes())
    with pytest.raises(LogMappingError, match="looks like a feature table") as caught:
        load(copy, header=header)
    assert caught.value.label_column == label and "timestamp" in caught.value.missing
    assert f"--kind table --label {label}" in str(caught.value)
    assert load(copy, kind="table", header=header, label_column=label).label_column == label


def test_a_log_without_times_is_not_taken_for_a_table(retailrocket_csv, tmp_path):
    """No time column and no label-like column: the error lists the columns and points to the mapping panel."""
    path = tmp_path / "no_times.csv"
    pd.read_csv(retailrocket_csv).drop(columns=["timestamp"]).to_csv(path, index=False)
    with pytest.raises(LogMappingError, match="required role.s. timestamp") as caught:
        load(path)
    assert caught.value.label_column is None and caught.value.missing == ["timestamp"]
    assert caught.value.mapping == {"user": "visitorid", "item": "itemid", "behavior": "event"}
    assert "Column mapping panel" in str(caught.value) and "--map timestamp=COLUMN" in str(caught.value)
