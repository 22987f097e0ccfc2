"""Formats, compression, encodings, folders, uploads and header detection round-trip to the same log."""

import gzip
import io
import zipfile

import pandas as pd
import pytest

from recexp.data import load

COLUMNS = ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]
CHINESE = {"pv": "浏览", "cart": "加购", "fav": "收藏", "buy": "购买"}


@pytest.fixture(scope="module")
def reference(taobao_csv):
    return load(taobao_csv)


@pytest.fixture(scope="module")
def taobao_frame(taobao_csv):
    return pd.read_csv(taobao_csv, header=None, names=COLUMNS).dropna().astype({"timestamp": "int64"})


def _same_log(log, reference, *, compare_frames=False):
    assert log.report.rows_kept == reference.report.rows_kept
    assert log.mapping == dict(zip(["user", "item", "category", "behavior", "timestamp"], COLUMNS))
    assert log.frame.dtypes.astype(str).tolist() == reference.frame.dtypes.astype(str).tolist()
    assert log.fingerprint == reference.fingerprint     # content hash of columns, dtypes and values
    if compare_frames:                                  # slow on 80k categorical rows: once is enough
        pd.testing.assert_frame_equal(log.frame, reference.frame)


def test_tsv_gz(tmp_path, taobao_frame, reference):
    path = tmp_path / "taobao.tsv.gz"
    taobao_frame.to_csv(path, sep="\t", index=False, compression="gzip")
    log = load(path)
    _same_log(log, reference, compare_frames=True)
    assert log.report.read_as.startswith("TSV (gzip)") and "tab-separated" in log.report.read_as


def test_parquet(tmp_path, taobao_frame, reference):
    path = tmp_path / "taobao.parquet"
    taobao_frame.to_parquet(path)
    log = load(path)
    _same_log(log, reference)
    assert log.report.read_as.startswith("Parquet")


def test_jsonl_zip(tmp_path, taobao_frame, reference):
    path = tmp_path / "taobao.jsonl.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("taobao.jsonl", taobao_frame.to_json(orient="records", lines=True))
    log = load(path)
    _same_log(log, reference)
    assert log.report.read_as.startswith("JSON")


def test_gbk_csv_with_chinese_text(tmp_path, taobao_frame, reference):
    frame = taobao_frame.assign(behavior_type=taobao_frame["behavior_type"].map(CHINESE), 商品名称="连衣裙 夏季")
    path = tmp_path / "taobao_gbk.csv"
    frame.to_csv(path, index=False, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")   # really not UTF-8
    log = load(path)
    assert "gb18030" in log.report.read_as
    assert log.report.behavior_values == {"浏览": 71_898, "加购": 4_307, "收藏": 2_228, "购买": 1_673}
    assert log.report.unused_columns == ["商品名称"]
    assert log.fingerprint == reference.fingerprint   # Chinese behaviour names map to the same funnel
    assert load(path, encoding="gbk").fingerprint == reference.fingerprint


def test_gbk_detected_even_when_first_megabyte_is_ascii(tmp_path, taobao_frame):
    frame = pd.concat([taobao_frame.head(40_000), taobao_frame.tail(10).assign(behavior_type="收藏")])
    path = tmp_path / "late_gbk.csv"
    frame.to_csv(path, index=False, encoding="gbk")
    assert path.stat().st_size > (1 << 20)
    log = load(path)
    assert "gb18030" in log.report.read_as and log.report.behavior_values["收藏"] == 10


def test_upload_bytes_with_misleading_extension(taobao_csv, reference):
    packed = gzip.compress(taobao_csv.read_bytes())
    log = load(("events.csv", packed))        # gzip detected from the bytes, not the name
    assert log.fingerprint == reference.fingerprint
    assert log.report.dropped == {"truncated row (4 of 5 fields)": 1}


def test_folder_of_files_is_concatenated(tmp_path, taobao_frame, reference):
    folder = tmp_path / "parts"
    folder.mkdir()
    for number, part in enumerate([taobao_frame.iloc[:30_000], taobao_frame.iloc[30_000:60_000],
                                   taobao_frame.iloc[60_000:]]):
        part.to_csv(folder / f"part-{number}.csv", index=False)
    (folder / "README.md").write_text("not data")
    (folder / "_SUCCESS").write_text("")
    log = load(folder)
    _same_log(log, reference)
    assert "3 files concatenated" in log.report.read_as


def test_zip_with_several_members_is_concatenated(tmp_path, taobao_frame, reference):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", taobao_frame.iloc[:50_000].to_csv(index=False))
        archive.writestr("b.csv", taobao_frame.iloc[50_000:].to_csv(index=False))
    _same_log(load(("export.zip", buffer.getvalue())), reference)


def test_semicolon_and_pipe_delimiters(tmp_path, taobao_frame, reference):
    for delimiter in (";", "|"):
        path = tmp_path / "events.txt"
        taobao_frame.to_csv(path, sep=delimiter, index=False)
        _same_log(load(path), reference)


def test_header_detection_and_override(retailrocket_csv, taobao_csv):
    assert load(taobao_csv).report.read_as.count("no header row") == 1
    assert "header row" in load(retailrocket_csv).report.read_as
    # Forcing header=False turns the name row into a data row whose timestamp does not parse.
    forced = load(retailrocket_csv, header=False)
    assert forced.mapping["timestamp"] == "c0"
    assert forced.report.dropped == {"timestamp does not parse": 1}
    assert forced.report.rows_kept == 2_771


def test_date_time_strings_become_utc(tmp_path):
    text = ("uid,sku,btag,time\n"
            "1,10,pv,2017-11-25 08:00:00+08:00\n"
            "2,11,buy,2017-11-25T01:00:00Z\n"
            "1,12,cart,2017-11-25 02:30:00\n")
    log = load(("dates.csv", text.encode()))
    assert log.mapping == {"user": "uid", "item": "sku", "behavior": "btag", "timestamp": "time"}
    assert log.frame["timestamp"].tolist() == [pd.Timestamp("2017-11-25T00:00:00Z"),
                                               pd.Timestamp("2017-11-25T01:00:00Z"),
                                               pd.Timestamp("2017-11-25T02:30:00Z")]
    assert log.frame["behavior"].tolist() == ["view", "buy", "cart"]


def test_unparseable_timestamps_dropped_and_reported_when_few(tmp_path, retailrocket_csv):
    lines = retailrocket_csv.read_text().splitlines()
    lines[5] = "not-a-time," + lines[5].split(",", 1)[1]
    log = load(("rr.csv", "\n".join(lines).encode()))
    assert log.report.dropped == {"timestamp does not parse": 1}
    assert log.report.rows_kept == 2_770
    assert any("not-a-time" in w for w in log.report.warnings)


def test_missing_ids_dropped_with_reasons():
    text = ("user_id,item_id,behavior,timestamp\n1,2,pv,1511578835\n,3,pv,1511578836\n4,,buy,1511578837\n"
            "5,6,buy,\n7,8,cart,1511578839\n")
    log = load(("gaps.csv", text.encode()))
    assert log.report.dropped == {"missing user id": 1, "missing item id": 1, "missing timestamp": 1}
    assert log.report.rows_read == 5 and log.report.rows_kept == 2
    assert log.report.nulls == {"user_id": 1, "item_id": 1, "behavior": 0, "timestamp": 1}


def test_too_many_fields_dropped():
    text = "1,2,3,pv,1511578835\n1,2,3,buy,1511578836,extra\n1,5,3,cart,1511578837\n"
    log = load(("wide.csv", text.encode()))
    assert log.report.dropped == {"row with too many fields (6 of 5)": 1}


def test_progress_is_reported_in_order(taobao_csv):
    seen = []
    load(taobao_csv, progress=lambda fraction, message: seen.append((fraction, message)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert "80,106 rows kept" in seen[-1][1]


def test_quoted_values_with_delimiters_and_line_breaks():
    text = ('user_id,item_id,title,behavior,timestamp\n'
            '1,10,"red, large",pv,1511578835\n'
            '2,11,"two\nlines",buy,1511578836\n'
            '3,12,plain,cart,1511578837\n')
    log = load(("quoted.csv", text.encode()))
    assert log.report.rows_kept == 3 and log.report.unused_columns == ["title"]


def test_utf8_bom_and_chinese_utf8(tmp_path):
    text = "\ufeffuser_id,item_id,behavior,timestamp,标题\n1,10,浏览,1511578835,连衣裙\n2,11,购买,1511578836,裙子\n"
    log = load(("bom.csv", text.encode("utf-8")))
    assert log.mapping["user"] == "user_id"           # the BOM is not part of the first name
    assert "utf-8" in log.report.read_as and log.report.unused_columns == ["标题"]
    assert log.frame["behavior"].tolist() == ["view", "buy"]


def test_type_change_after_the_first_block_falls_back_to_text(monkeypatch, taobao_csv):
    """A column that looks numeric in the first block but holds text later is re-read as text."""
    from recexp.data import readers

    monkeypatch.setattr(readers, "BLOCK_SIZE", 1 << 14)
    lines = taobao_csv.read_text().splitlines()[:3_000]
    lines[2_500] = "u-42" + lines[2_500][lines[2_500].index(","):]
    log = load(("late_text.csv", ("\n".join(lines) + "\n").encode()))
    assert log.report.rows_kept == 3_000
    assert "u-42" in log.frame["user_id"].cat.categories
    assert "1000186" in log.frame["user_id"].cat.categories   # the other ids are kept, now as text


def test_malformed_json_lines_are_dropped_and_counted():
    text = ('{"user_id": 1, "item_id": 10, "event": "view", "ts": 1511578835}\n'
            '{"user_id": 2, "item_id": 11, "event": "buy", "ts": 1511578836\n'
            '[1, 2]\n'
            '{"user_id": 3, "item_id": 12, "event": "buy", "ts": 1511578837}\n')
    log = load(("events.jsonl", text.encode()))
    assert log.report.rows_read == 4 and log.report.rows_kept == 2
    assert log.report.dropped == {"line is not valid JSON": 1, "line is not a JSON object": 1}
