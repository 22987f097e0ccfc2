"""The Data page: bundled sample by default, uploads, server paths, mapping, and bad input as sentences."""

import pytest


def _texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def test_default_page_reads_the_bundled_taobao_sample(open_page, app):
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Rows kept"] == "80,106"
    assert metrics["Rows dropped"] == "1"                 # the truncated last line is reported, not hidden
    assert any("outside" in w or "window" in w for w in _texts(app.warning))  # 34 early timestamps
    assert app.dataframe, "the preview table must be shown"
    assert len(app.dataframe[0].value) == 200 and "The first 200 of 80,106 rows." in _texts(app.caption)


def test_a_dataset_past_the_memory_setting_is_warned_before_it_is_built(monkeypatch):
    """The build's estimated memory (the same estimate the caption states) against RECEXP_MEMORY_LIMIT: the
    bundled sample fits the default, and is warned about under a 1 MB setting."""
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    def memory_warnings(at):
        return [w for w in _texts(at.warning) if "over the memory setting" in w]

    at = AppTest.from_file(str(APP), default_timeout=180).run()
    assert not at.exception and memory_warnings(at) == []
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", "1MB")
    at.run()
    assert not at.exception
    assert len(memory_warnings(at)) == 1 and "RECEXP_MEMORY_LIMIT" in memory_warnings(at)[0]


def test_uploaded_log_becomes_the_active_dataset(open_page, app, retailrocket_csv):
    app.segmented_control(key="data_origin").set_value("Upload a file").run()
    app.file_uploader(key="data_upload").set_value(
        ("events.csv", retailrocket_csv.read_bytes(), "text/csv")).run()
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Rows kept"] == "2,771"
    # the size of what "Use this dataset" builds, stated before it is built (one sample per event)
    assert any(c.startswith("This dataset: 2,771 samples, about 0.00 GB in memory") for c in _texts(app.caption))
    app.selectbox(key="data_split_method").set_value("stratified")
    app.button(key="data_use").click().run()
    assert not app.exception
    assert any("Active: " in s for s in _texts(app.success))
    at = open_page(app, "imbalance")
    assert {m.label: m.value for m in at.metric}["Classes"] == "3"   # view, cart, buy
    assert at.get("plotly_chart")


@pytest.mark.parametrize("content, expected", [
    (b"", "empty"),
    (bytes(range(256)) * 40, "does not look like a data file"),
])
def test_bad_upload_shows_a_sentence_not_a_traceback(open_page, app, content, expected):
    app.segmented_control(key="data_origin").set_value("Upload a file").run()
    app.file_uploader(key="data_upload").set_value(("bad.csv", content, "text/csv")).run()
    assert not app.exception
    errors = " ".join(_texts(app.error)).lower()
    assert expected in errors and "bad.csv" in errors


def test_missing_server_path_is_reported(open_page, app, tmp_path):
    app.segmented_control(key="data_origin").set_value("File on the server").run()
    app.text_input(key="data_path").set_value(str(tmp_path / "workspace" / "data" / "nope.csv")).run()
    assert not app.exception
    assert any("nope.csv" in e for e in _texts(app.error))


def test_single_behaviour_log_cannot_make_the_behaviour_task(open_page, app, tmp_path):
    path = tmp_path / "workspace" / "data" / "views.csv"     # the workspace's data folder is a data root
    path.parent.mkdir(parents=True)
    path.write_text("user_id,item_id,behavior_type,timestamp\n"
                    + "".join(f"{u},{i},pv,{1511544070 + 60 * i}\n" for u in range(5) for i in range(20)))
    app.segmented_control(key="data_origin").set_value("File on the server").run()
    app.text_input(key="data_path").set_value(str(path)).run()
    assert not app.exception
    assert any("at least two behaviours" in e for e in _texts(app.error))


def test_mapping_override_is_applied(open_page, app, taobao_csv):
    app.segmented_control(key="data_origin").set_value("File on the server").run()
    app.text_input(key="data_path").set_value(str(taobao_csv)).run()
    assert app.selectbox(key="data_map_category").value == "c2"        # inferred from values, no header
    app.selectbox(key="data_map_category").set_value("(none)")
    app.button(key="data_apply_mapping").click().run()
    assert not app.exception and not app.error
    assert app.selectbox(key="data_map_category").value == "(none)"
    assert "category_id" not in app.dataframe[0].value.columns


def test_bad_mapping_says_why_and_can_be_reset(open_page, app, retailrocket_csv):
    app.segmented_control(key="data_origin").set_value("File on the server").run()
    app.text_input(key="data_path").set_value(str(retailrocket_csv)).run()
    assert app.selectbox(key="data_map_item").value == "itemid"
    app.selectbox(key="data_map_item").set_value("transactionid")
    app.button(key="data_apply_mapping").click().run()
    assert not app.exception
    assert any("single value" in e for e in _texts(app.error))   # only the 14 transactions have one
    app.button(key="data_reset_mapping").click().run()
    assert not app.exception and not app.error
    assert app.selectbox(key="data_map_item").value == "itemid"


def test_feature_table_sample_offers_only_the_table_task(open_page, app):
    app.selectbox(key="data_sample").set_value("criteo").run()
    assert not app.exception
    task = app.selectbox(key="data_task")
    assert task.value == "table" and len(task.options) == 1
    app.button(key="data_use").click().run()
    assert not app.exception
    assert any("criteo_sample.csv" in s for s in _texts(app.success))


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_chinese_export_gets_its_roles_with_confidence(open_page, app, chinese_export, encoding):
    """用户ID, 商品ID, 商品类目ID, 行为类型, 时间戳 take their roles; 商品类别 (category words) and 商品名称
    (product names) take none; each role shows how sure inference is."""
    path = chinese_export(encoding, rows=200)
    app.segmented_control(key="data_origin").set_value("Upload a file").run()
    app.file_uploader(key="data_upload").set_value((path.name, path.read_bytes(), "text/csv")).run()
    assert not app.exception and not app.error
    chosen = {role: app.selectbox(key=f"data_map_{role}").value for role in
              ("user", "item", "category", "behavior", "timestamp")}
    assert chosen == {"user": "用户ID", "item": "商品ID", "category": "商品类目ID", "behavior": "行为类型",
                      "timestamp": "时间戳"}
    captions = _texts(app.caption)
    assert sum("95% sure: header name" in c for c in captions) == 5 and not any("a guess" in c for c in captions)
    preview = app.dataframe[0].value
    assert preview["user_id"].astype(str).str.isdigit().all()              # ids, not 电子产品
    assert {m.label: m.value for m in app.metric}["Duplicate events"] == "0"
    assert not any("guess" in w for w in _texts(app.warning))


def test_guessed_roles_are_warned_and_the_mapping_opens(open_page, app, chinese_export, tmp_path):
    """Headers nobody knows: roles come from values, and each guess is said in a warning and marked in the
    (opened) mapping panel."""
    import pandas as pd

    frame = pd.read_csv(chinese_export(rows=200)).set_axis(list("ABCDEFG"), axis=1)
    path = tmp_path / "workspace" / "data" / "export.csv"     # the workspace's data folder is a data root
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    app.segmented_control(key="data_origin").set_value("File on the server").run()
    app.text_input(key="data_path").set_value(str(path)).run()
    assert not app.exception and not app.error
    assert app.selectbox(key="data_map_user").value == "A"
    assert any(w.startswith("The user role is a guess: column 'A'") for w in _texts(app.warning))
    assert any(c.startswith(":warning: a guess") for c in _texts(app.caption))
    panel = next(e for e in app.expander if e.label.startswith("Column mapping"))
    assert panel.proto.expanded


def test_feature_table_read_as_a_log_offers_the_switch(open_page, app, criteo_csv):
    """A feature table uploaded as a behaviour log: the status ends (not 'Reading ...'), the error says it
    looks like a table, and one click reads it as a table with its label column."""
    app.segmented_control(key="data_origin").set_value("Upload a file").run()
    app.file_uploader(key="data_upload").set_value(("criteo.csv", criteo_csv.read_bytes(), "text/csv")).run()
    assert not app.exception
    assert [s.state for s in app.status] == ["error"] and app.status[0].label == "Could not read criteo.csv"
    assert any("looks like a feature table" in e and "'label'" in e for e in _texts(app.error))
    app.button(key="data_as_table").click().run()
    assert not app.exception and not app.error
    assert app.radio(key="data_kind").value == "table" and app.text_input(key="data_label").value == "label"
    assert [s.state for s in app.status] == ["complete"]
    assert {m.label: m.value for m in app.metric}["Rows kept"] == "200"
    assert app.selectbox(key="data_task").value == "table"


def test_missing_role_error_points_to_the_mapping_panel_shown(open_page, app, retailrocket_csv, tmp_path):
    """Times in a form inference does not recognise: the error names the Column mapping panel, the panel
    is there (open), and mapping the timestamp in it reads the log."""
    import pandas as pd

    frame = pd.read_csv(retailrocket_csv).drop(columns=["transactionid"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms").dt.strftime("%d/%m/%Y %H:%M")
    path = tmp_path / "workspace" / "data" / "events.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.rename(columns={"timestamp": "when"}).to_csv(path, index=False)
    app.segmented_control(key="data_origin").set_value("File on the server").run()
    app.text_input(key="data_path").set_value(str(path)).run()
    assert not app.exception
    assert any("timestamp" in e and "Column mapping panel" in e for e in _texts(app.error))
    assert [s.state for s in app.status] == ["error"]
    assert next(e for e in app.expander if e.label.startswith("Column mapping")).proto.expanded
    assert app.selectbox(key="data_map_timestamp").value == "(none)"
    app.selectbox(key="data_map_timestamp").set_value("when")
    app.button(key="data_apply_mapping").click().run()
    assert not app.exception and not app.error
    assert {m.label: m.value for m in app.metric}["Rows kept"] == "2,771"


def test_sidebar_names_the_dataset_in_the_run_that_made_it_active(open_page, app):
    """The sidebar's dataset line is drawn before the page runs; 'Use this dataset' redraws it at once,
    not one click later."""
    def sidebar_line() -> str:
        return next(c.value for c in app.sidebar.caption if c.value.startswith("Dataset: "))

    assert sidebar_line().startswith("Dataset: **UserBehavior_sample.csv**") and "task: **behavior**" in sidebar_line()
    app.selectbox(key="data_sample").set_value("yeast_me2").run()
    app.button(key="data_use").click().run()                       # one run: the click
    assert not app.exception
    assert sidebar_line().startswith("Dataset: **yeast_me2") and "task: **table**" in sidebar_line()
    assert sum(c.value.startswith("Dataset: ") for c in app.sidebar.caption) == 1
