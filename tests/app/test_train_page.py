"""The Train page under AppTest: launch a run in the background and see it finish."""

from streamlit.testing.v1 import AppTest

from recexp.jobs import JobRunner
from recexp.runs import SQLiteRunStore
from tests.app.conftest import APP, rerun_until


def _open_train_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _runs_table(at: AppTest):
    tables = [d.value for d in at.dataframe if "status" in d.value.columns]
    return tables[0] if tables else None


def test_train_page_renders_its_controls():
    at = _open_train_page()
    assert at.title[0].value == "Train"
    assert at.multiselect(key="train_strategies").value == ["none"]
    assert at.selectbox(key="train_model").value == "mlp"
    assert at.button(key="train_launch")
    assert any("No runs yet" in i.value for i in at.info)


def test_launch_a_run_and_see_it_finish_with_its_device():
    at = _open_train_page()
    at.selectbox(key="train_model").set_value("logreg")
    at.number_input(key="train_seeds").set_value(1)
    at.number_input(key="train_epochs").set_value(1)
    at.selectbox(key="train_device").set_value("cpu")
    at.button(key="train_launch").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    rerun_until(at, lambda a: (table := _runs_table(a)) is not None and table["status"].str.contains("finished").all())
    table = _runs_table(at)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["strategy"] == "none" and row["model"] == "logreg" and row["device"].startswith("cpu")
    assert 0 < row["balanced_accuracy"] <= 1 and row["epochs"] == "1/1"
    assert any("1 finished" in m.value for m in at.markdown)
    assert any("Device used: cpu" in c.value for c in at.caption)
    charts = at.get("plotly_chart")
    assert len(charts) == 2                                   # training curves + final scores


def test_settings_with_too_few_optimiser_steps_are_flagged_before_launch():
    at = _open_train_page()
    assert not any("optimiser steps" in w.value for w in at.warning)          # 57,676 rows, batch 512: plenty
    at.number_input(key="train_batch_size").set_value(65536)
    at.number_input(key="train_epochs").set_value(2)
    at.run()
    assert not at.exception, at.exception
    assert any("only 2 optimiser steps" in w.value and "lower the batch size" in w.value for w in at.warning)


def test_a_lightgbm_run_launches_from_the_page_and_finishes_on_the_cpu():
    at = _open_train_page()
    at.selectbox(key="train_model").set_value("lightgbm")
    at.run()
    assert not at.exception, at.exception
    at.number_input(key="train_LightGBM_num_leaves").set_value(15)          # its spec's widgets
    at.number_input(key="train_seeds").set_value(1)
    at.number_input(key="train_epochs").set_value(2)
    at.button(key="train_launch").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    rerun_until(at, lambda a: (table := _runs_table(a)) is not None and table["status"].str.contains("finished").all())
    row = _runs_table(at).iloc[0]
    assert row["model"] == "lightgbm" and row["device"].startswith("cpu") and row["epochs"] == "2/2"
    assert 0.25 < row["balanced_accuracy"] <= 1
    (run,) = SQLiteRunStore.open().list_runs()
    assert run.spec["model_params"]["num_leaves"] == 15


def test_primary_score_and_a_a_arm_are_declared_before_launch():
    at = _open_train_page()
    assert at.selectbox(key="train_primary").value == "balanced_accuracy"     # four behaviour classes
    at.selectbox(key="train_primary").set_value("f1_macro")
    at.checkbox(key="train_aa").check()
    at.selectbox(key="train_model").set_value("logreg")
    at.number_input(key="train_seeds").set_value(2)
    at.number_input(key="train_epochs").set_value(1)
    at.run()
    assert any("Compare shows no verdict: it needs at least 3 paired seeds" in i.value for i in at.info)
    at.button(key="train_launch").click()
    at.run()
    assert not at.exception, at.exception
    store = SQLiteRunStore.open()
    experiment = store.list_experiments()[-1]
    assert experiment.settings == {"primary": "f1_macro", "aa": True}
    specs = sorted((r.spec["strategy"], r.spec.get("aa", False), r.spec["seed"]) for r in store.list_runs(experiment.id))
    assert specs == [("none", False, 0), ("none", False, 1), ("none", True, 10000), ("none", True, 10001)]
    at.run()
    assert set(_runs_table(at)["strategy"]) == {"none", "none (A/A)"}
    canceller = JobRunner(store)                         # no worker outlives the test
    for run in store.list_runs(experiment.id):
        canceller.cancel(run.id)
    rerun_until(at, lambda a: not any(r.is_active for r in store.list_runs(experiment.id)), timeout=60)
