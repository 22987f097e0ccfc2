"""recexp.data.limits: the data roots a server path must lie under, and the caps on unpacking."""

from __future__ import annotations

import gzip
import zipfile

import pytest

from recexp.data import load
from recexp.data.limits import confine, read_limits
from recexp.data.samples import DATA_DIR
from recexp.data.source import save_upload
from recexp.errors import InvalidDataError, InvalidParameterError


def test_default_roots_are_the_workspace_data_folder_and_the_samples(tmp_path):
    assert read_limits().data_roots == ((tmp_path / "workspace" / "data").resolve(), DATA_DIR.resolve())
    sample = DATA_DIR / "taobao_userbehavior" / "UserBehavior_sample.csv"
    assert confine(str(sample)) == sample.resolve()


def test_paths_outside_the_roots_are_refused_without_saying_whether_they_exist(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "a.csv").write_text("a,b\n1,2\n")
    outside = tmp_path / "secret.csv"
    outside.write_text("password,hunter2\n")
    (root / "logs" / "link.csv").symlink_to(outside)
    monkeypatch.setenv("RECEXP_DATA_ROOT", str(root))
    assert confine("logs/a.csv") == root / "logs" / "a.csv"          # relative: from the first root
    assert confine(f"{root}/logs/../logs/a.csv") == root / "logs" / "a.csv"
    for typed in (str(outside), str(tmp_path / "missing.csv"), "../secret.csv", str(root / "logs" / "link.csv")):
        with pytest.raises(InvalidDataError, match="outside the data folders this server reads from") as caught:
            confine(typed)
        assert "hunter2" not in str(caught.value) and "There is no file" not in str(caught.value)
    with pytest.raises(InvalidDataError, match="'link.csv' in the folder 'logs' links outside"):
        confine("logs")                                              # a folder holding a link out


def test_system_folders_are_refused_even_under_a_root_of_everything(monkeypatch):
    monkeypatch.setenv("RECEXP_DATA_ROOT", "/")
    assert confine("/etc/hostname") == confine("etc/hostname")
    for typed in ("/proc/self/environ", "/dev/zero", "/sys/kernel"):
        with pytest.raises(InvalidDataError, match="outside the data folders"):
            confine(typed)


def test_uploads_are_not_confined_but_other_uploads_are_not_a_server_path(taobao_csv):
    saved = save_upload("events.csv", taobao_csv.read_bytes()[:300_000])
    assert load(saved).report.rows_kept > 5_000                      # this session's upload opens
    with pytest.raises(InvalidDataError, match="outside the data folders"):
        confine(str(saved))                                          # but is not readable by typing its path


@pytest.mark.parametrize("variable, value", [
    ("RECEXP_MAX_DECOMPRESSED_MB", "lots"), ("RECEXP_MAX_DECOMPRESSED_MB", "0"),
    ("RECEXP_MAX_COMPRESSION_RATIO", "-3"), ("RECEXP_MAX_COMPRESSION_RATIO", "inf"),
])
def test_bad_settings_are_named_in_a_sentence(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidParameterError, match=f"{variable} must be a positive number, but is '{value}'"):
        read_limits()


@pytest.mark.parametrize("value", [":", " : :"])
def test_a_data_root_setting_that_names_no_folder_is_a_sentence(monkeypatch, value):
    monkeypatch.setenv("RECEXP_DATA_ROOT", value)                    # was IndexError from confine
    with pytest.raises(InvalidParameterError, match="RECEXP_DATA_ROOT names no folder"):
        confine("good.csv")


def test_a_path_with_a_nul_character_is_a_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("RECEXP_DATA_ROOT", str(tmp_path))
    with pytest.raises(InvalidDataError, match="'bad\x00name.csv' cannot be resolved"):   # was ValueError
        confine("bad\x00name.csv")


def test_caps_follow_the_environment(monkeypatch, taobao_csv):
    text = taobao_csv.read_bytes()
    text = text[:text.rfind(b"\n") + 1]                              # 3.6 MB of the real log
    packed = gzip.compress(text)
    assert load(("events.csv.gz", packed)).report.rows_kept == 80_106
    monkeypatch.setenv("RECEXP_MAX_DECOMPRESSED_MB", "2")
    with pytest.raises(InvalidDataError, match="'events.csv.gz' unpacks to more than 2 MB"):
        load(("events.csv.gz", packed))
    monkeypatch.setenv("RECEXP_MAX_DECOMPRESSED_MB", "100")
    monkeypatch.setenv("RECEXP_MAX_COMPRESSION_RATIO", "1.5")       # past 16 MB only: a small file passes
    assert load(("events.csv.gz", packed)).report.rows_kept == 80_106


def test_zip_members_are_streamed_and_capped(monkeypatch, tmp_path, taobao_csv):
    text = taobao_csv.read_bytes()
    text = text[:text.rfind(b"\n") + 1]
    archive = tmp_path / "logs.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("part1.csv", text[:2_000_000][:text[:2_000_000].rfind(b"\n") + 1])
        zipped.writestr("part2.csv", text[text[:2_000_000].rfind(b"\n") + 1:])
    assert load(archive).report.rows_kept == 80_106
    monkeypatch.setenv("RECEXP_MAX_DECOMPRESSED_MB", "1")
    with pytest.raises(InvalidDataError, match="'logs.zip:part1.csv' unpacks to more than 1 MB"):
        load(archive)


def test_zip_of_too_many_files_is_refused(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for i in range(1001):
            zipped.writestr(f"part{i}.csv", "user_id,item_id,behavior_type,timestamp\n1,2,pv,1511544070\n")
    with pytest.raises(InvalidDataError, match="holds 1,001 files, more than the 1,000 recexp reads from one archive"):
        load(archive)


@pytest.mark.parametrize("where", ["disk", "upload", "json-lines"])
def test_a_row_past_the_block_is_refused_before_pyarrow_reads(tmp_path, where):
    """pyarrow's own refusal of such a row can leave its reader threads running, and the process may
    abort as it exits; recexp refuses the row first, with its line number, on disk and in memory."""
    if where == "json-lines":
        good = b"".join(b'{"user_id": %d, "item_id": 2, "behavior_type": "pv", "timestamp": 1511544070}\n' % u
                        for u in range(40))
        data = good + b'{"user_id": 1, "item_id": "' + b"8" * (5 << 20) + b'"}\n' + good
    else:
        data = (b"user_id,item_id,behavior_type,timestamp\n" + b"1,2,pv,1511544070\n" * 40
                + b"1,2,pv," + b"9" * (5 << 20) + b"\n" + b"3,4,buy,1511544071\n" * 40)
    path = tmp_path / "long_row.csv"
    path.write_bytes(data)
    source = ("long_row.csv", data) if where == "upload" else path
    line = 41 if where == "json-lines" else 42
    with pytest.raises(InvalidDataError, match=f"Line {line} of 'long_row.csv' is too long to read: recexp reads "
                                               "rows of up to 4 MB"):
        load(source)
