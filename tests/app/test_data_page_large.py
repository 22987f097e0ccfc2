"""A log larger than memory on the dashboard (issue #22): the Data page never loads it, builds its dataset on
disk in a background process with live progress, a Cancel and a sentence on failure; a reload finds the
build again; the Imbalance page reads class counts from the dataset's metadata (raw and sampled mix); the
Train page puts the sampling into the run spec (and out_of_core "yes": the run reuses the dataset built on
disk); a page that needs every row in memory says so instead of loading it.

The memory setting is 1 MB, so a synthetic log of a few thousand events takes the large-log path."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from recexp.data.synthetic import generate_log
from recexp.diskbuild import build_state
from recexp.outofcore import open_on_disk
from recexp.runs import SQLiteRunStore
from tests.app.conftest import APP, rerun_until
from tests.app.test_i18n_pages import open_in


@pytest.fixture
def large_log(tmp_path, monkeypatch):
    """A 12,000-event synthetic log in the workspace's data folder, with a 1 MB memory setting."""
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", "1MB")
    path = tmp_path / "workspace" / "data" / "big.csv"
    path.parent.mkdir(parents=True)
    generate_log(12_000, seed=0).to_csv(path, index=False)
    return path


def _open_large(app: AppTest, path) -> AppTest:
    app.segmented_control(key="data_origin").set_value("File on the server").run()
    app.text_input(key="data_path").set_value(str(path)).run()
    assert not app.exception, app.exception
    return app


def _texts(elements) -> list[str]:
    return [e.value for e in elements]


def _build_folders(tmp_path):
    return sorted((tmp_path / "workspace" / "builds").glob("*"))


def test_a_large_log_is_not_loaded_and_is_built_on_disk(app, open_page, large_log, tmp_path):
    at = _open_large(app, large_log)
    warning = " ".join(_texts(at.warning))
    assert "big.csv is too large to load here" in warning and "over the memory setting of 1.0 MB" in warning
    assert "Validation report" not in [s.value for s in at.subheader]          # the whole log was not read
    assert any(c.value.startswith("The first 200 rows of the file") for c in at.caption)
    assert [o.split(":")[0] for o in at.selectbox(key="data_task").options] == ["behavior", "purchase"]
    at.number_input(key="data_negative_rate").set_value(0.5).run()
    at.button(key="data_build_disk").click().run()
    assert not at.exception, at.exception
    rerun_until(at, lambda a: any(s.value.startswith("Built on disk") for s in a.success), timeout=120)

    state = build_state(_build_folders(tmp_path)[0])
    disk = open_on_disk(state.dataset)
    assert state.status == "finished" and state.peak_memory > 0 and state.elapsed > 0
    counts = next(d.value for d in at.dataframe if list(d.value.columns) == ["train", "validation", "test"])
    assert counts.to_dict() == {"train": disk.counts["train"], "validation": disk.counts["valid"],
                                "test": disk.counts["test"]}
    head = next(d.value for d in at.dataframe if "label" in d.value.columns)
    assert len(head) == 200 and {"label", "sample_weight"} <= set(head.columns)
    assert disk.sampling == {"users": 1.0, "negative_rate": 0.5}

    at.button(key="data_use").click().run()
    assert not at.exception, at.exception
    params = at.query_params
    assert params["task"] == "behavior" and params["split"] == "temporal"
    assert params["sample.negative_rate"] == "0.5"
    assert any(s.value.startswith("Active: big.csv") for s in at.success)

    # a reload (a new session with the URL) reopens the same file, settings and finished build
    fresh = AppTest.from_file(str(APP), default_timeout=180)
    fresh.query_params = dict(params)
    fresh.run()
    assert not fresh.exception, fresh.exception
    assert fresh.text_input(key="data_path").value == str(large_log)
    assert fresh.number_input(key="data_negative_rate").value == 0.5
    assert any(s.value.startswith("Built on disk") for s in fresh.success)
    assert any(s.value.startswith("Active: big.csv") for s in fresh.success)
    assert len(_build_folders(tmp_path)) == 1                          # found again, not built again

    # Imbalance: counts from the metadata, the raw mix weighted back beside the sampled one
    imb = open_page(fresh, "imbalance")
    mix = next(t.value for t in imb.table if list(t.value.columns) == ["raw (weighted)", "sampled"])
    sampled = disk.class_counts()
    assert mix["sampled"].to_dict() == sampled
    majority = [c for c in sampled if mix.loc[c, "raw (weighted)"] != mix.loc[c, "sampled"]]
    assert majority == ["view"] and mix.loc["view", "raw (weighted)"] == 2 * sampled["view"]
    per_split = next(t.value for t in imb.table if list(t.value.columns) == ["train", "validation", "test"])
    assert per_split["test"].to_dict() == disk.counts["test"]
    assert any("not shown for a dataset built on disk" in i.value for i in imb.info)

    lab = open_page(fresh, "strategy_lab")                          # needs every row: says so, loads nothing
    assert any("this page needs every row in memory" in i.value for i in lab.info)

    # Train: the run spec carries the sampling and out_of_core "yes" (the run reuses the dataset built on disk)
    train = open_page(fresh, "train")
    assert any("larger than memory" in i.value for i in train.info)
    shown = next(c.value for c in train.caption if c.value.startswith("Data: **big.csv**"))
    assert f"{disk.rows['train']:,} train" in shown
    train.button(key="train_launch").click().run()
    assert not train.exception, train.exception
    store = SQLiteRunStore.open()
    spec = store.list_runs()[0].spec
    for run in store.list_runs():
        store.finish(run.id, "cancelled", error="test")               # the run side is not this test's business
    assert spec["source"]["path"] == str(large_log) and spec["out_of_core"] == "yes"
    assert spec["sampling"] == {"negative_rate": 0.5} and spec["split"]["method"] == "temporal"
    assert spec["fingerprint"] == disk.fingerprint


def test_cancel_stops_the_build_and_keeps_nothing(app, large_log, tmp_path):
    at = _open_large(app, large_log)
    at.button(key="data_build_disk").click().run()
    assert not at.exception, at.exception
    at.button(key="data_build_cancel").click().run()
    assert not at.exception, at.exception
    assert any("cancelled; nothing of it was kept" in i.value for i in at.info)
    assert at.button(key="data_build_disk")                           # it can be built again
    folder = _build_folders(tmp_path)[0]
    assert build_state(folder).status == "cancelled"
    datasets = tmp_path / "workspace" / "datasets"
    assert not datasets.exists() or not any(datasets.iterdir())       # no dataset, no staging folder


@pytest.fixture
def no_buy_log(tmp_path, monkeypatch):
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", "1MB")
    frame = generate_log(12_000, seed=1)
    path = tmp_path / "workspace" / "data" / "nobuy.csv"
    path.parent.mkdir(parents=True)
    frame[frame["behavior_type"].astype(str) != "buy"].to_csv(path, index=False)
    return path


def test_a_failed_build_says_why_in_a_sentence(app, no_buy_log):
    """The purchase task on a log without purchases: the build process fails with build_on_disk's sentence."""
    at = _open_large(app, no_buy_log)
    at.selectbox(key="data_task").set_value("purchase").run()
    assert any("too large to load here" in w.value for w in at.warning)
    at.button(key="data_build_disk").click().run()
    rerun_until(at, lambda a: bool(a.error), timeout=120)
    error = at.error[0].value
    assert error.startswith("The build failed: The log has no 'buy' events") and "Traceback" not in error
    assert at.button(key="data_build_disk")


def test_a_chinese_session_sees_the_large_log_page_and_the_failure_in_chinese(no_buy_log):
    at = open_in("zh", "data")
    at = _open_large(at, no_buy_log)
    assert any("太大，无法在此加载" in w.value for w in at.warning)
    at.selectbox(key="data_task").set_value("purchase").run()
    at.button(key="data_build_disk").click().run()
    rerun_until(at, lambda a: bool(a.error), timeout=120)
    assert at.error[0].value.startswith("构建失败：日志中没有 'buy' 事件")         # the process's sentence, in Chinese


def test_a_task_that_cannot_be_built_on_disk_falls_back_to_behaviour(app, large_log):
    """next_item chosen on the sample, then a large log opened: the page offers the tasks it can build on disk."""
    app.selectbox(key="data_task").set_value("next_item").run()
    at = _open_large(app, large_log)
    assert at.selectbox(key="data_task").value == "behavior"
    assert any("the behavior task would need" in w.value for w in at.warning)
