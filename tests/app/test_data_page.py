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


def test_uploaded_log_becomes_the_active_dataset(open_page, app, retailrocket_csv):
    app.segmented_control(key="data_origin").set_value("Upload a file").run()
    app.file_uploader(key="data_upload").set_value(
        ("events.csv", retailrocket_csv.read_bytes(), "text/csv")).run()
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Rows kept"] == "2,771"
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
