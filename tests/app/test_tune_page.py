"""The Tune page: the space from the specs, a study started from the page on real data (yeast_me2, logistic
regression, 1 epoch) as jobs of the job runner, its live table (the trials read once per rerun) and Optuna figures,
the best trials sent to the Train grid; a study cancelled from the page and continued; a study read in 简体中文."""

import json
import re

import pytest
from optuna.storages._cached_storage import _CachedStorage
from streamlit.testing.v1 import AppTest

from recexp.spec import RunSpec
from recexp.tune import STOPPED, TuneSpec, run_study
from tests.app.conftest import APP, rerun_until

DEADLINE = 300


def _trials(at: AppTest):
    """The live trial table (the one after the space), or None before there is a study."""
    tables = at.dataframe
    return tables[1].value if len(tables) > 1 else None


def _workers_ended(at: AppTest) -> bool:
    """The study's worker processes ended: the page offers to continue it."""
    return "tune_continue" in _keys(at)


def _keys(at: AppTest) -> set[str]:
    """The keys of the page's buttons."""
    return {b.key for b in at.button}


@pytest.fixture
def tune_page(tmp_path, monkeypatch):
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path))
    monkeypatch.delenv("RECEXP_OPTUNA_STORAGE", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.query_params.update({"dataset": "yeast_me2", "task": "table", "split": "stratified"})
    at.run()
    at.switch_page("pages/tune.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_space_comes_from_the_specs_and_a_bad_one_is_a_sentence(tune_page):
    at = tune_page
    table = at.dataframe(key="tune_space").value
    assert "smote.k_neighbors" in list(table["dimension"])
    assert list(table.loc[table["dimension"] == "smote.k_neighbors", ["low", "high"]].iloc[0]) == [1, 20]
    assert any("No study yet" in i.value for i in at.info)
    at.multiselect(key="tune_strategies").set_value(["none"]).run()
    assert not at.exception
    assert any("nothing to search" in w.value for w in at.warning)
    assert at.button(key="tune_start").disabled


def test_a_study_runs_from_the_page_and_its_best_go_to_the_train_grid(tune_page):
    at = tune_page
    at.selectbox(key="tune_model").set_value("logreg")
    at.number_input(key="tune_trials").set_value(2)
    at.number_input(key="tune_epochs").set_value(1)
    at.number_input(key="tune_workers").set_value(1)
    at.text_input(key="tune_name").set_value("page-study")
    at.button(key="tune_start").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert "tune_cancel" in _keys(at)                              # a job of the runner, running or waiting
    assert any(c.value.startswith("Worker processes: ") for c in at.caption)
    rerun_until(at, _workers_ended, timeout=DEADLINE)
    assert at.selectbox(key="tune_study").value == "page-study"
    table = _trials(at)
    assert list(table["state"]) == ["complete", "complete"]
    assert at.metric and at.metric[0].label.startswith("Best validation pr_auc[1]")
    assert len(at.get("plotly_chart")) >= 2                      # history, intermediate values, slices...
    at.button(key="tune_send").click().run()
    assert not at.exception, at.exception
    grid = at.session_state["strategy_grid"]
    assert set(grid) == {"none", "smote"}
    assert 1 <= grid["smote"]["k_neighbors"] <= 20


def test_a_rerun_reads_the_trials_from_the_storage_once(tune_page, monkeypatch):
    base = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified"}, model="logreg",
                   train={"epochs": 1})
    run_study(TuneSpec(base, ("smote",)), "read-once", n_trials=3)
    reads = []
    original = _CachedStorage._read_trials_from_remote_storage

    def counting(self, study_id):
        reads.append(study_id)
        return original(self, study_id)

    monkeypatch.setattr(_CachedStorage, "_read_trials_from_remote_storage", counting)
    tune_page.run()
    assert not tune_page.exception, tune_page.exception
    assert len(_trials(tune_page)) == 3 and len(tune_page.get("plotly_chart")) >= 3    # table, figures, best...
    assert len(reads) == 1


def test_a_study_cancelled_from_the_page_keeps_its_finished_trials_and_continues(tune_page):
    at = tune_page
    at.selectbox(key="tune_model").set_value("logreg")
    at.number_input(key="tune_trials").set_value(40)
    at.number_input(key="tune_epochs").set_value(30)                # trials of a few seconds
    at.number_input(key="tune_workers").set_value(1)
    at.text_input(key="tune_name").set_value("cancelled")
    at.button(key="tune_start").click().run()
    assert not at.exception, at.exception
    rerun_until(at, lambda at: _trials(at) is not None and "complete" in set(_trials(at)["state"])
                and "running" in set(_trials(at)["state"]), timeout=DEADLINE)
    at.button(key="tune_cancel").click().run()
    assert not at.exception, at.exception
    rerun_until(at, _workers_ended, timeout=60)
    table = _trials(at)
    assert "running" not in set(table["state"])
    failed = table[table["state"] == "fail"]
    assert len(failed) == 1 and (failed["error"].iloc[0] == STOPPED
                                 or failed["error"].iloc[0].startswith("Cancelled by the user."))
    finished = list(table.loc[table["state"] == "complete", "number"])
    assert finished and len(table) < 40
    at.number_input(key="tune_trials").set_value(1)
    at.button(key="tune_continue").click().run()                    # the stored settings, one more trial
    assert not at.exception, at.exception
    rerun_until(at, lambda at: _workers_ended(at) and len(_trials(at)) == len(table) + 1, timeout=DEADLINE)
    again = _trials(at)
    assert list(again["number"])[:len(table)] == list(table["number"])
    assert list(again.loc[again["state"] == "complete", "number"])[:len(finished)] == finished
    assert again["state"].iloc[-1] == "complete"


def test_a_study_reads_in_chinese(tmp_path, monkeypatch):
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path))
    monkeypatch.delenv("RECEXP_OPTUNA_STORAGE", raising=False)
    base = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified"}, model="logreg",
                   train={"epochs": 1})
    run_study(TuneSpec(base, ("smote",)), "zh-study", n_trials=2)
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.query_params.update({"lang": "zh", "dataset": "yeast_me2", "task": "table", "split": "stratified"})
    at.run()
    at.switch_page("pages/tune.py")
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "调参" and [s.value for s in at.subheader][:3] == ["空间", "预算", "最佳配置"]
    assert at.metric[0].label.startswith("最佳验证集 ")
    helps = [h for h in at.dataframe(key="tune_space").value["help"] if h]          # the specs' help texts
    assert helps and all(re.search("[\u4e00-\u9fff]", h) for h in helps), helps
    assert any(m.value.startswith("**2 次试验**：2 已完成 · 最大化验证集 ") for m in at.markdown)
    assert {"**优化历史**", "**切片**"} <= {m.value for m in at.markdown}           # the Optuna figures' titles
    assert any(c.value.startswith("参数重要性：待 3 次试验完成后绘制") for c in at.caption), [c.value for c in at.caption]
    columns = json.loads(at.dataframe[1].proto.columns)                      # the live trial table (after the space)
    assert {columns[c]["label"] for c in ("number", "value", "params")} == {"试验", "验证集得分", "参数"}
