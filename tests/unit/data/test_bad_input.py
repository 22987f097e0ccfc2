"""Bad input raises InvalidDataError with a sentence saying what is wrong and what to do; never a raw traceback."""

import numpy as np
import pytest

from recexp.data import load
from recexp.errors import InvalidDataError, InvalidParameterError


@pytest.fixture(scope="module")
def taobao_lines(taobao_csv):
    return taobao_csv.read_text().splitlines()[:300]


def _bytes(lines):
    return ("\n".join(lines) + "\n").encode()


def test_empty_file():
    with pytest.raises(InvalidDataError, match="is empty"):
        load(("events.csv", b""))
    with pytest.raises(InvalidDataError, match="is empty"):
        load(("events.csv", b"\n  \n\n"))


def test_header_without_rows():
    with pytest.raises(InvalidDataError, match="no data rows"):
        load(("events.csv", b"user_id,item_id,behavior,timestamp\n"))


def test_binary_garbage():
    garbage = np.random.default_rng(7).integers(0, 256, 4_096, dtype=np.uint8).tobytes()
    with pytest.raises(InvalidDataError, match="does not look like a data file.*Export the data as CSV"):
        load(("events.csv", garbage))


def test_damaged_gzip(taobao_csv):
    import gzip

    packed = gzip.compress(taobao_csv.read_bytes())[:200]
    with pytest.raises(InvalidDataError, match="gzip"):
        load(("events.csv.gz", packed))


def test_wrong_delimiter_everything_in_one_column(taobao_lines):
    with pytest.raises(InvalidDataError, match="single column.*Save it with one of those delimiters"):
        load(("events.csv", _bytes(line.replace(",", "#") for line in taobao_lines)))


def test_missing_required_role_names_found_roles_and_how_to_map(taobao_lines):
    without_behavior = [",".join(line.split(",")[:3] + line.split(",")[4:]) for line in taobao_lines]
    with pytest.raises(InvalidDataError) as caught:
        load(("events.csv", _bytes(without_behavior)))
    message = str(caught.value)
    assert "required role(s) behavior" in message
    assert "user=c0" in message and "timestamp=c3" in message
    assert "--map behavior=COLUMN" in message


def test_single_behaviour_value(taobao_lines):
    only_views = [line.replace(",cart,", ",pv,").replace(",fav,", ",pv,").replace(",buy,", ",pv,")
                  for line in taobao_lines]
    with pytest.raises(InvalidDataError, match="single value \\('pv'\\).*no classes to learn"):
        load(("events.csv", _bytes(only_views)))


def test_timestamps_that_do_not_parse():
    text = "user_id,item_id,behavior,timestamp\n" + "\n".join(
        f"{i},{i * 7},{'pv' if i % 3 else 'buy'},last tuesday {i}" for i in range(50))
    with pytest.raises(InvalidDataError, match="timestamp column 'timestamp' does not parse.*'last tuesday 0'"):
        load(("events.csv", text.encode()))


def test_numbers_that_are_not_epoch_times():
    text = "user_id,item_id,behavior,timestamp\n" + "\n".join(
        f"{i},{i * 7},{'pv' if i % 3 else 'buy'},{i}" for i in range(1, 50))
    with pytest.raises(InvalidDataError, match="not epoch times"):
        load(("events.csv", text.encode()))


def test_file_over_max_bytes_suggests_server_path(taobao_csv):
    with pytest.raises(InvalidDataError, match="over the 2 MB limit.*path on the server"):
        load(taobao_csv, max_bytes=2_000_000)


def test_unknown_label_column_lists_columns(criteo_csv):
    with pytest.raises(InvalidDataError, match="'clicked' is not in the table. Columns: label, I1, I2"):
        load(criteo_csv, kind="table", label_column="clicked")


def test_table_without_label_name_asks_for_one(data_dir):
    with pytest.raises(InvalidDataError, match="needs a label column.*--label"):
        load(data_dir / "criteo_sample" / "criteo_1k_raw.tsv", kind="table", header=False)


def test_table_label_with_one_value():
    with pytest.raises(InvalidDataError, match="single value"):
        load(("t.csv", b"a,b,label\n1,x,1\n2,y,1\n3,z,1\n"), kind="table", label_column="label")


def test_missing_path():
    with pytest.raises(InvalidDataError, match="no file or folder"):
        load("/nonexistent/events.csv")


def test_folder_with_mixed_layouts(tmp_path, taobao_csv, retailrocket_csv):
    (tmp_path / "a.csv").write_bytes(taobao_csv.read_bytes())
    (tmp_path / "b.csv").write_bytes(retailrocket_csv.read_bytes())
    with pytest.raises(InvalidDataError, match="same columns"):
        load(tmp_path)


def test_invalid_parameters(taobao_csv):
    with pytest.raises(InvalidParameterError, match="kind"):
        load(taobao_csv, kind="events")
    with pytest.raises(InvalidParameterError, match="encoding"):
        load(taobao_csv, encoding="no-such-codec")
    with pytest.raises(InvalidParameterError, match="max_bytes"):
        load(taobao_csv, max_bytes=0)


def test_wrong_explicit_encoding():
    with pytest.raises(InvalidDataError, match="not valid ascii"):
        load(("events.csv", "user_id,item_id,behavior,timestamp\n1,2,浏览,1511578835\n".encode("gbk")),
             encoding="ascii")


def test_nested_json_value_in_a_role_column():
    text = ('{"user": {"id": 1}, "item_id": 10, "event": "view", "ts": 1511578835}\n'
            '{"user": {"id": 2}, "item_id": 11, "event": "buy", "ts": 1511578836}\n')
    with pytest.raises(InvalidDataError, match="holds struct.*plain values"):
        load(("events.jsonl", text.encode()), mapping={"user": "user"})


def test_every_row_unreadable_says_why():
    text = "user_id,item_id,behavior,time\n" + "\n".join(
        f"{i},{i * 3},pv,Sat, 25 Nov 2017 10:0{i}:00 +0800" for i in range(5))
    with pytest.raises(InvalidDataError, match="None of the 5 rows.*too many fields \\(5 of 4\\): 5.*quot"):
        load(("events.csv", text.encode()))
