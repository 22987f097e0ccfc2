"""The Data page on hostile and malformed input: the server-path box reads only under the data roots, and
every bad file, typed or uploaded, ends in one sentence (no exception, no preview of what was refused,
no file content on the page), with the run store's earlier runs still listed. Cases: tests/fault_cases.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from recexp.runs import SQLiteRunStore

PASSWD_CONTENT = ("root:", "/bin/", "nologin")


@pytest.fixture
def earlier_runs() -> list[str]:
    store = SQLiteRunStore.open()
    experiment = store.create_experiment("earlier work")
    return sorted(store.create_run(experiment.id, {"task": "behavior", "seed": s}).id for s in range(2))


def _page_text(at) -> str:
    return " ".join(str(e.value) for kind in ("error", "warning", "info", "success", "markdown", "caption")
                    for e in getattr(at, kind))


def _refused(at, expected: str) -> None:
    """One error sentence saying ``expected``; no exception, no preview table, nothing of the file shown."""
    assert not at.exception, at.exception
    errors = [str(e.value) for e in at.error]
    assert len(errors) == 1 and expected in errors[0], errors
    assert "\n" not in errors[0].strip() and "Traceback" not in errors[0]
    assert not at.dataframe, "nothing of a refused file may be previewed"
    assert not any(content in _page_text(at) for content in PASSWD_CONTENT)


@pytest.mark.parametrize("path, expected", [
    ("/etc/passwd", "is outside the data folders this server reads from"),
    (str(Path.home() / ".ssh" / "id_rsa"), "is outside the data folders this server reads from"),
    ("{inputs}/link_to_passwd.csv", "is outside the data folders"),       # a symlink in the root leading out
    ("{inputs}/../../..", "is outside the data folders"),                    # climbing out of the root
    ("{home}/uploads", "is outside the data folders"),                       # other sessions' uploads
    ("/proc/self/environ", "is outside the data folders"),
    ("{inputs}/pipe.csv", "is a named pipe (FIFO), not a regular file"),
    ("{inputs}/gzip_bomb.csv.gz", "unpacks to more than 200 MB"),
    ("{inputs}/zip_bomb.zip", "unpacks to more than 200 MB"),
    ("{inputs}/mixed_utf8_gbk.csv", "mixes text encodings: 100 lines (lines 2, 3, 4, 5, 6, ...) are UTF-8"),
    ("{inputs}/utf8_latin1.csv", "a single-byte encoding such as Latin-1"),
    ("{inputs}/row_20mb.csv", "is too long to read"),
    ("{inputs}/png_image.csv", "it is a PNG image"),
])
def test_server_path_box_refuses_in_one_sentence(app, bad_inputs, monkeypatch, tmp_path, earlier_runs, path,
                                                 expected):
    inputs = bad_inputs["pipe.csv"].parent
    monkeypatch.setenv("RECEXP_DATA_ROOT", str(inputs))
    app.segmented_control(key="data_origin").set_value("File on the server").run()
    app.text_input(key="data_path").set_value(path.format(inputs=inputs, home=tmp_path / "workspace")).run()
    _refused(app, expected)
    assert sorted(run.id for run in SQLiteRunStore.open().list_runs()) == earlier_runs


def test_proc_is_refused_even_when_the_root_is_everything(app, monkeypatch):
    monkeypatch.setenv("RECEXP_DATA_ROOT", "/")
    app.segmented_control(key="data_origin").set_value("File on the server").run()
    app.text_input(key="data_path").set_value("/proc/self/environ").run()
    _refused(app, "is outside the data folders")


def test_default_roots_open_the_workspace_data_folder_and_the_samples(app, tmp_path, taobao_csv):
    folder = tmp_path / "workspace" / "data"
    folder.mkdir(parents=True)
    (folder / "events.csv").write_bytes(taobao_csv.read_bytes()[:400_000])
    app.segmented_control(key="data_origin").set_value("File on the server").run()
    app.text_input(key="data_path").set_value("events.csv").run()         # relative: from the first root
    assert not app.exception and not app.error
    assert app.dataframe
    app.text_input(key="data_path").set_value(str(taobao_csv)).run()      # the bundled samples
    assert not app.exception and not app.error
    assert {m.label: m.value for m in app.metric}["Rows kept"] == "80,106"


@pytest.mark.parametrize("case, expected", [
    ("gzip_bomb.csv.gz", "unpacks to more than 200 MB"),
    ("zip_of_gzip_bomb.zip", "unpacks to more than"),
    ("mixed_utf8_gbk.csv", "are GBK; read as either one, the other's text would be garbled"),
    ("utf8_latin1.csv", "neither UTF-8 nor GBK"),
    ("png_image.csv", "it is a PNG image"),
    ("damaged.csv.gz", "damaged or cut short"),
])
def test_bad_upload_is_refused_in_one_sentence(app, bad_inputs, earlier_runs, case, expected):
    app.segmented_control(key="data_origin").set_value("Upload a file").run()
    app.file_uploader(key="data_upload").set_value((case, bad_inputs[case].read_bytes(), "text/csv")).run()
    _refused(app, expected)
    assert sorted(run.id for run in SQLiteRunStore.open().list_runs()) == earlier_runs


def test_upload_with_a_200kb_field_is_read(app, bad_inputs):
    app.segmented_control(key="data_origin").set_value("Upload a file").run()
    app.file_uploader(key="data_upload").set_value(
        ("notes.csv", bad_inputs["field_200kb.csv"].read_bytes(), "text/csv")).run()
    assert not app.exception and not app.error
    assert {m.label: m.value for m in app.metric}["Rows kept"] == "301"


def test_a_misconfigured_limit_is_a_sentence(app, monkeypatch, taobao_csv):
    monkeypatch.setenv("RECEXP_MAX_COMPRESSION_RATIO", "lots")
    app.segmented_control(key="data_origin").set_value("File on the server").run()
    app.text_input(key="data_path").set_value(str(taobao_csv)).run()
    _refused(app, "RECEXP_MAX_COMPRESSION_RATIO must be a positive number, but is 'lots'")
