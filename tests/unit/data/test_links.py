"""Dataset ids a link carries: bundled samples by name, other sources through a record in the workspace, and
nothing else (a link cannot name a path)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from recexp.data.links import remember_source, resolve_source, source_id
from recexp.data.samples import SAMPLES, sample_source
from recexp.data.source import DataSource, save_upload, workspace
from recexp.errors import InvalidDataError, InvalidParameterError


@pytest.mark.parametrize("name", list(SAMPLES))
def test_a_bundled_sample_is_named_by_its_name_and_leaves_no_record(name):
    assert remember_source(sample_source(name)) == name
    assert resolve_source(name) == sample_source(name)
    assert not (workspace() / "sources").exists()


def test_an_upload_resolves_again_through_its_record(retailrocket_csv):
    path = save_upload("events.csv", retailrocket_csv.read_bytes())
    source = DataSource(str(path), kind="log", mapping={"item": "itemid"})
    sid = remember_source(source)
    assert len(sid) == 16 and int(sid, 16) >= 0 and sid == source_id(source)
    assert resolve_source(sid) == source
    assert resolve_source(sid).load().report.rows_kept == 2_771
    record = json.loads((workspace() / "sources" / f"{sid}.json").read_text())
    assert record["path"] == str(path)


def test_a_changed_mapping_is_another_dataset(retailrocket_csv):
    source = DataSource(str(save_upload("events.csv", retailrocket_csv.read_bytes())))
    assert remember_source(source) != remember_source(replace(source, mapping={"item": "transactionid"}))
    assert source_id(replace(sample_source("taobao"), mapping={"category": None})) not in SAMPLES


@pytest.mark.parametrize("sid", ["../../etc/passwd", "/etc/passwd", "0123456789abcdef", "TAOBAO", ""])
def test_an_id_that_is_not_a_sample_or_a_record_is_refused_with_a_sentence(sid):
    with pytest.raises(InvalidParameterError, match="neither a bundled sample .* Open the file on the Data page"):
        resolve_source(sid)


def test_a_server_file_resolves_only_while_it_lies_under_the_data_folders(taobao_csv, tmp_path, monkeypatch):
    inside = workspace() / "data" / "events.csv"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(taobao_csv.read_bytes())
    source = DataSource(str(inside), kind="log")
    assert resolve_source(remember_source(source)) == source
    outside = DataSource(str(tmp_path / "elsewhere.csv"), kind="log")
    sid = remember_source(outside)                    # as if recorded before the data folders were narrowed
    with pytest.raises(InvalidDataError, match="outside the data folders"):
        resolve_source(sid)
